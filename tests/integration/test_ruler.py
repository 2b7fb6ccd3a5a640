"""The bench's C ruler (bench/c/echo_epoll.c, compose service ``ruler``) keeps the lab's contract.

It is built as compose builds it (Debian's gcc in the image build) and run by hand on ephemeral
host ports, hardened like the lab's servers, so that neither the lab nor another test's stack is
touched. What the bench relies on: exact echoes, even when the client does not read for a while;
a reset costs only that connection; /stats counts every recv() with data and every byte.

The same image holds the latency ladder's C load generator (bench/c/echo_load.c, compose service
``loadgen-c``): run here in the ruler's network namespace, it sends on its fixed schedule what
the ruler counts, checks every echo, and says so when an echo is wrong.
"""

import contextlib
import json
import socket
import struct
import threading
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from docker.models.containers import Container
from echolab_common.wait import Timeout, until
from echolab_host import Compose, engine

DEADLINE = 30.0  # seconds for the container to answer /health
HELPER_PORT = 12399  # where a MISBEHAVING server listens, in the ruler's network namespace
# Echo servers that misbehave in one way each, on 127.0.0.1:PORT, for the generator to catch.
# {serve} is the body of serve(conn): it echoes what conn sends, its own way.
MISBEHAVING = """
import socket, threading, time
server = socket.create_server(("127.0.0.1", PORT))
print("listening", flush=True)
def serve(conn):
{serve}
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""
# Every message's first byte wrong.
MANGLER = """
    while data := conn.recv(65536):
        conn.sendall(bytes([data[0] ^ 0xFF]) + data[1:])
"""
# Slow to take a new connection on: 0.2 s before it serves one, then it echoes at once.
SLOW_TO_SERVE = """
    time.sleep(0.2)
    while data := conn.recv(65536):
        conn.sendall(data)
"""
# Echoes a connection's first message at once (the generator's, before its clock starts), then
# holds the second 0.2 s, then echoes at once.
STALLER = """
    conn.sendall(conn.recv(65536))
    data = conn.recv(65536)
    time.sleep(0.2)
    conn.sendall(data)
    while data := conn.recv(65536):
        conn.sendall(data)
"""


def host_port(container: Container, port: str) -> int:
    """Where the host reaches a published port of the container (ephemeral, on 127.0.0.1)."""
    container.reload()
    return int(container.ports[port][0]["HostPort"])


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def ruler() -> Iterator[tuple[Container, int, int]]:
    compose = Compose(profiles=("ruler",))
    compose.run("build", "--quiet", "ruler", timeout=1800)
    image = compose.config()["services"]["ruler"]["image"]
    container = engine().containers.run(
        image,
        detach=True,
        name=f"echolab-test-ruler-{uuid.uuid4().hex[:8]}",
        read_only=True,
        cap_drop=["ALL"],
        ports={"12345/tcp": ("127.0.0.1",), "8080/tcp": ("127.0.0.1",)},
    )
    try:
        echo, stats = host_port(container, "12345/tcp"), host_port(container, "8080/tcp")
        try:
            until(lambda: healthy(stats), "the ruler answering /health", DEADLINE, interval=0.1)
        except Timeout as exc:
            pytest.fail(str(exc))
        yield container, echo, stats
    finally:
        container.remove(force=True)


def read_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        return json.loads(response.read())


def receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def test_it_echoes_exactly_even_what_the_client_reads_late(ruler) -> None:
    _, echo, _ = ruler
    payload = bytes(range(256)) * 8192  # 2 MiB: more than the kernel's buffers hold at once
    with socket.create_connection(("127.0.0.1", echo), timeout=10) as sock:
        sock.sendall(b"Hello, world")
        assert receive(sock, 12) == b"Hello, world"
        sender = sock.dup()
        # Write all of it before reading any: the ruler must stop reading and keep the rest.
        writer = threading.Thread(target=sender.sendall, args=(payload,))
        writer.start()
        assert receive(sock, len(payload)) == payload
        writer.join()
        sender.close()


def test_a_client_that_resets_costs_only_its_own_connection(ruler) -> None:
    _, echo, stats = ruler
    with socket.create_connection(("127.0.0.1", echo), timeout=5) as other:
        for _ in range(20):
            rude = socket.create_connection(("127.0.0.1", echo), timeout=5)
            rude.sendall(b"x" * 100_000)  # unread echoes pile up, then the client resets
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()
        other.sendall(b"still here")
        assert receive(other, 10) == b"still here"
    until(
        lambda: read_stats(stats)["connections_current"] == 0,
        "the reset connections closed",
        DEADLINE,
        interval=0.05,
    )


def test_it_counts_every_message_and_byte(ruler) -> None:
    _, echo, stats = ruler
    before = read_stats(stats)
    socks = [socket.create_connection(("127.0.0.1", echo), timeout=5) for _ in range(5)]
    for i in range(200):
        sock = socks[i % len(socks)]
        message = i.to_bytes(2, "big") * 32  # 64 B, each different
        sock.sendall(message)
        assert receive(sock, 64) == message
    for sock in socks:
        sock.close()
    after = read_stats(stats)
    assert after["messages"] - before["messages"] == 200
    assert after["bytes_received"] - before["bytes_received"] == 200 * 64
    assert after["bytes_sent"] - before["bytes_sent"] == 200 * 64
    assert after["connections_total"] - before["connections_total"] == 5
    assert after["variant"] == "c-epoll" and after["log_per_message"] is False


def test_silent_stats_clients_are_closed_and_stats_answer_again(ruler) -> None:
    _, _, stats = ruler
    silent = [socket.create_connection(("127.0.0.1", stats), timeout=10) for _ in range(70)]
    try:
        for sock in silent:  # each closed by the ruler: at once past 64, else at its deadline
            with contextlib.suppress(ConnectionResetError):  # a reset closes it too
                assert sock.recv(1) == b""
    finally:
        for sock in silent:
            sock.close()
    assert read_stats(stats)["variant"] == "c-epoll"


def beside(ruler: Container, entrypoint: str, *args: str) -> Container:
    """A container of the ruler's image in the ruler's network namespace, hardened alike."""
    return engine().containers.run(
        ruler.image.id,
        list(args),
        entrypoint=entrypoint,
        network_mode=f"container:{ruler.id}",
        read_only=True,
        cap_drop=["ALL"],
        detach=True,
    )


def generator(ruler: Container, *args: str) -> tuple[int, str, str]:
    """The C load generator, run once beside the ruler: its exit code, stdout and stderr."""
    run = beside(ruler, "echo_load", *args)
    try:
        code = run.wait(timeout=120)["StatusCode"]
        return code, run.logs(stderr=False).decode(), run.logs(stdout=False).decode()
    finally:
        run.remove(force=True)


def generator_against(ruler: Container, serve: str, *args: str) -> tuple[int, str, str]:
    """The C load generator, run once against one of the MISBEHAVING servers (started beside
    the ruler for it, on HELPER_PORT): its exit code, stdout and stderr."""
    script = MISBEHAVING.replace("PORT", str(HELPER_PORT)).format(serve=serve)
    server = beside(ruler, "python3", "-c", script)
    try:
        until(lambda: b"listening" in server.logs(), "the helper server listens", DEADLINE)
        return generator(ruler, "--target", "127.0.0.1", "--port", str(HELPER_PORT), *args)
    finally:
        server.remove(force=True)


def test_the_generator_sends_its_schedule_and_the_ruler_counts_every_message(ruler) -> None:
    container, _, stats = ruler
    before = read_stats(stats)
    code, out, err = generator(
        *(container, "--target", "127.0.0.1", "--connections", "10", "--rate", "2000"),
        *("--duration", "1", "--warmup", "0.2"),
    )
    after = read_stats(stats)
    assert code == 0 and out.count("\n") == 1, err
    report = json.loads(out)
    # The schedule is fixed in advance: 2,000 messages due in the measured second, 400 before,
    # and before those one message a connection, so the server had served all 10 first.
    assert report["sent"] == report["echoed"] == 2000
    assert report["mismatched"] == report["missing"] == report["errors"] == 0
    assert after["messages"] - before["messages"] == 10 + 400 + 2000
    assert after["connections_total"] - before["connections_total"] == 10
    latency = report["latency_us"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["p999"] <= latency["max"]
    assert report["cgroup_cpu_s"] > 0, "its container's cgroup CPU counter was read"


def test_the_generator_counts_every_wrong_echo(ruler) -> None:
    container, _, _ = ruler
    code, out, err = generator_against(
        container, MANGLER, "--connections", "2", "--rate", "200", "--duration", "0.5"
    )
    assert code == 1, err
    report = json.loads(out)
    # Every wrong echo counts, the two sent before the clock (one a connection) among them.
    assert report["sent"] == 100 and report["mismatched"] == 2 + 100
    assert report["echoed"] == report["missing"] == report["errors"] == 0


def test_the_generator_charges_a_stall_to_every_message_it_delayed(ruler) -> None:
    container, _, _ = ruler
    code, out, err = generator_against(
        container, STALLER, "--connections", "1", "--rate", "100", "--duration", "1"
    )
    assert code == 0, err
    report = json.loads(out)
    # Messages due every 10 ms: the first 20 wait for the stall, 200 ms down to 10 ms, counted
    # from when each was due. Timed from their sends, only the first would show it.
    assert report["sent"] == report["echoed"] == 100
    assert report["latency_us"]["p90"] >= 50_000
    assert report["latency_us"]["max"] >= 150_000


def test_the_generator_starts_its_clock_once_the_server_serves_every_connection(ruler) -> None:
    container, _, _ = ruler
    code, out, err = generator_against(
        container, SLOW_TO_SERVE, "--connections", "20", "--rate", "100", "--duration", "1"
    )
    assert code == 0, err
    report = json.loads(out)
    # Five messages a connection: its first echo waited 0.2 s before the clock, so none did.
    assert report["sent"] == report["echoed"] == 100 and report["served"] == 20
    assert report["latency_us"]["max"] < 100_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "ruler", "--connections", "0"], "--connections 0: expected a number"),
        (["--target", "ruler", "--rate", "fast"], "--rate fast: expected a number"),
        (["--connections", "10"], "--target HOST is required"),
        (["--target", "ruler", "--bogus"], "unknown option --bogus"),
    ],
)
def test_a_bad_argument_to_the_generator_is_one_line_and_exit_2(
    ruler, args: list[str], message: str
) -> None:
    code, out, err = generator(ruler[0], *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"echo_load: {message}")


# Last: it stops the module's ruler.
def test_sigterm_ends_it_with_the_tutorials_total(ruler) -> None:
    container, _, stats = ruler
    total = read_stats(stats)["messages"]
    container.stop(timeout=5)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    logs = container.logs(stderr=False).decode()
    assert logs.splitlines()[-1] == f"Total messages received: {total}"
