"""The bench's C ruler (bench/c/echo_epoll.c, compose service ``ruler``) keeps the lab's contract.

It is built as compose builds it (Debian's gcc in the image build) and run by hand on ephemeral
host ports, hardened like the lab's servers, so that neither the lab nor another test's stack is
touched. What the bench relies on: exact echoes, even when the client does not read for a while;
a reset costs only that connection; /stats counts every recv() with data and every byte.
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


# Last: it stops the module's ruler.
def test_sigterm_ends_it_with_the_tutorials_total(ruler) -> None:
    container, _, stats = ruler
    total = read_stats(stats)["messages"]
    container.stop(timeout=5)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    logs = container.logs(stderr=False).decode()
    assert logs.splitlines()[-1] == f"Total messages received: {total}"
