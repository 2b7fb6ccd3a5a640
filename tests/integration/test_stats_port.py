"""The stats port against hostile clients, in containers (issue 13): a flood of idle and
half-sent connections, a byte-a-second client, garbage, a 1 MiB request line and a request
closed halfway, against every variant, while the echo port must not notice.

The flood comes from its own process (so its work never delays the test's own echo probes) and
goes to the container's address on the lab's network: ``ECHOLAB_STATS_FLOOD`` connections
(default 2,000; the issue's measurement used 5,000), every other one half-sent, each one the
server closes opened again. The server's threads (every process of it) are counted in the host's
/proc before, during and after. ``pytest -s`` prints the figures. Timings are asserted only
as the stats endpoint's own deadline: the slow client is cut off at it, and /health answers
before it once the flood stops, so it answered the flood's closing and was never merely freed
by its time-outs. The issue's "within a second" is a figure to read on a quiet machine (a busy
CI machine once took 1.02 s), not a test.
"""

import contextlib
import multiprocessing
import os
import re
import selectors
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from echolab_host import engine
from echolab_server.settings import Settings
from echolab_server.stats import DEADLINE, MAX_OPEN, PROBLEM_WINDOW
from echolab_server.variants import registry

from ..stats_clients import REQUEST, send_a_byte_a_second
from .lab import VARIANTS, Lab

FLOOD = int(os.environ.get("ECHOLAB_STATS_FLOOD", "2000"))
AT_ONCE = 4  # variants sieged at the same time: the host's open-file limit is 20,000 here
PROBES = 20  # normal echo exchanges alone, and again during the flood
HALF_SENT = REQUEST[:21]  # the attack: the request line, then nothing
TIMEOUT = 10.0  # seconds any single exchange may take on a busy host
STATS_LINE = re.compile(
    r"Stats port: (closed \d+ connections? (at once: \d+ open|not done within [\d.]+ s)"
    r"|answered \d+ bad requests? with 400"
    r"|cannot accept \(.+\), \d+ times?: pausing [\d.]+ s each time)"
)
_SPAWN = multiprocessing.get_context("spawn")


def flood(address: tuple[str, int], count: int, stop, opened) -> None:
    """Keep ``count`` connections open on ``address`` until ``stop`` is set; every other one
    sends half a request. Each one the far end closes is opened again; ``opened`` counts them."""
    selector = selectors.DefaultSelector()
    while not stop.is_set():
        while len(selector.get_map()) < count and not stop.is_set():
            try:
                sock = socket.create_connection(address, timeout=TIMEOUT)
                if opened.value % 2:
                    sock.sendall(HALF_SENT)
            except OSError:
                break  # closed under us already: reap, then go on
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            opened.value += 1
        for key, _ in selector.select(timeout=0.05):  # readable: EOF or reset, closed by them
            selector.unregister(key.fileobj)
            key.fileobj.close()
    for key in list(selector.get_map().values()):
        key.fileobj.close()


def server_pid(container: str) -> int:
    """The host's process id of the container's PID 1: the server."""
    return int(engine().containers.get(container).attrs["State"]["Pid"])


def _live_threads(pid: int | str) -> int:
    """A process's threads from the host's /proc; 0 once it has ended or is a zombie."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
    except FileNotFoundError:
        return 0
    return 0 if fields["State"].split()[0] == "Z" else int(fields["Threads"])


def threads(pid: int) -> int:
    """Threads of the server and of its live children (prefork's workers), read in the host's
    /proc, so nothing is started in the container to count them. Zombies do not count: a
    healthcheck that times out leaves its grep to the server (PID 1), which never reaps it."""
    children: list[str] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/children") as f:
            children += f.read().split()
    return _live_threads(pid) + sum(_live_threads(child) for child in children)


def container_address(lab: Lab, container: str, port: int) -> tuple[str, int]:
    """The container's own address on the lab's network, as another container reaches it."""
    networks = engine().containers.get(container).attrs["NetworkSettings"]["Networks"]
    return networks[lab.network()]["IPAddress"], port


def echo_ms(address: tuple[str, int]) -> float:
    """One tutorial exchange on its own connection, checked; milliseconds."""
    started = time.perf_counter()
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(b"Hello, world")
        echo = b""
        while len(echo) < 12 and (chunk := sock.recv(12)):
            echo += chunk
    assert echo == b"Hello, world"
    return (time.perf_counter() - started) * 1000


def read_until_closed(sock: socket.socket) -> bytes:
    """What the far end sent before it closed (a reset counts as closed)."""
    sock.settimeout(TIMEOUT)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def health_within(address: tuple[str, int], seconds: float) -> float:
    """Seconds until GET /health answers 200, trying for at most ``seconds``."""
    started = time.monotonic()
    while (waited := time.monotonic() - started) < seconds:
        try:
            with socket.create_connection(address, timeout=seconds - waited) as sock:
                sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                if read_until_closed(sock).startswith(b"HTTP/1.0 200 "):
                    return time.monotonic() - started
        except OSError:
            continue
    pytest.fail(f"/health did not answer within {seconds} s")


@dataclass
class Siege:
    """What one variant went through: latency alone and beside the flood, threads, health."""

    alone_ms: list[float]
    beside_ms: list[float]
    threads_before: int
    threads_during: list[int]
    threads_after: int
    flood_opened: int
    health_s: float
    slow_closed_after_s: float
    slow_bytes_sent: int
    garbage_answer: bytes
    long_line_answer: bytes
    halfway_then_stats: bytes
    log: str
    seconds: float

    def report(self, variant: str) -> str:
        def ms(values: list[float]) -> str:
            return f"{statistics.median(values):.1f}/{max(values):.1f}"

        return (
            f"{variant}: echo median/max {ms(self.alone_ms)} ms alone, {ms(self.beside_ms)} ms "
            f"beside a flood of {FLOOD} ({self.flood_opened} connections made); threads "
            f"{self.threads_before} before, {max(self.threads_during)} at most during, "
            f"{self.threads_after} after; /health {self.health_s * 1000:.0f} ms after it"
        )


def besiege(lab: Lab, service: str) -> Siege:
    began = time.monotonic()
    container = lab.container(service)
    pid = server_pid(container)
    echo = lab.address(service)
    stats = lab.address(service, 8080)
    # The flood goes to the container's own address, as from a container on the lab's network:
    # through the published port, docker-proxy would throttle it before the server saw it.
    target = container_address(lab, container, 8080)
    # A pool's worth of clients at once first: the pool variant starts its worker threads only
    # as connections come, and they stay; the count the flood must leave alone is this one.
    with contextlib.ExitStack() as held:
        at_once = registry()[service.removeprefix("server-")].serves_at_once
        for _ in range(at_once or Settings.workers):
            sock = held.enter_context(socket.create_connection(echo, timeout=TIMEOUT))
            sock.sendall(b"Hello, world")
            assert sock.recv(12), "no echo from a client of the warm-up"
    alone = [echo_ms(echo) for _ in range(PROBES)]
    before = threads(pid)

    stop, opened = _SPAWN.Event(), _SPAWN.RawValue("q", 0)
    flooding = _SPAWN.Process(target=flood, args=(target, FLOOD, stop, opened), daemon=True)
    flooding.start()
    try:
        lab.wait_for(lambda: opened.value >= FLOOD, f"{FLOOD} connections on {service}", 120)
        beside, during = [], []
        for _ in range(PROBES // 4):  # threads counted between probes, the flood going on all along
            beside += [echo_ms(echo) for _ in range(4)]
            during.append(threads(pid))
    finally:
        stop.set()
        flooding.join(TIMEOUT)
        flooding.kill()
    health_s = health_within(stats, DEADLINE)
    lab.wait_for(lambda: threads(pid) <= before, f"{service}'s threads back to {before}", 60)
    after = threads(pid)

    # One hostile client at a time, once the flood's last connections have run out their time.
    lab.wait_for(
        lambda: lab.stats(service)["stats_connections"] == 1,
        f"{service}'s stats port to hold only the asking connection",
        DEADLINE + 5,
    )
    with socket.create_connection(stats, timeout=TIMEOUT) as slow:
        closed, sent, slow_s = send_a_byte_a_second(slow)
    slow_s = slow_s if closed else float("inf")
    with socket.create_connection(stats, timeout=TIMEOUT) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        garbage = read_until_closed(sock)
    with socket.create_connection(stats, timeout=TIMEOUT) as sock, ThreadPoolExecutor(1) as tx:

        def send_long_line() -> None:
            with contextlib.suppress(OSError):  # cut off while sending: as intended
                sock.sendall(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.0\r\n\r\n")

        sending = tx.submit(send_long_line)
        long_line = read_until_closed(sock)
        sending.result(TIMEOUT)
    with socket.create_connection(stats, timeout=TIMEOUT) as sock:
        sock.sendall(REQUEST[:9])
    with socket.create_connection(stats, timeout=TIMEOUT) as sock:
        sock.sendall(REQUEST)
        halfway_then_stats = read_until_closed(sock)
    return Siege(
        alone, beside, before, during, after, opened.value, health_s, slow_s, sent, garbage,
        long_line, halfway_then_stats, lab.logs(service), time.monotonic() - began,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sieges(lab: Lab) -> dict[str, Siege]:
    with ThreadPoolExecutor(AT_ONCE) as pool:
        done = pool.map(lambda variant: besiege(lab, f"server-{variant}"), VARIANTS)
        return dict(zip(VARIANTS, done, strict=True))


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_stats_flood_leaves_the_echo_port_and_the_task_count_alone(
    sieges: dict[str, Siege], variant: str
) -> None:
    siege = sieges[variant]
    print(siege.report(variant))
    assert siege.flood_opened >= FLOOD
    assert len(siege.beside_ms) == PROBES, "every echo during the flood came back exact"
    # The bound: the stats endpoint is one thread whatever comes, so the container gains no
    # task during the flood (one allowed for the handler of the probe's own echo connection
    # in the thread-per-connection variants, which may still be ending).
    assert max(siege.threads_during) <= siege.threads_before + 1, siege.threads_during
    assert siege.threads_after <= siege.threads_before
    assert siege.health_s < DEADLINE


@pytest.mark.parametrize("variant", VARIANTS)
def test_slow_garbage_oversized_and_halfway_clients_are_cut_off(
    sieges: dict[str, Siege], variant: str
) -> None:
    siege = sieges[variant]
    print(
        f"{variant}: byte-a-second client closed after {siege.slow_closed_after_s:.2f} s, "
        f"{siege.slow_bytes_sent} bytes sent"
    )
    assert DEADLINE - 1 <= siege.slow_closed_after_s < DEADLINE + 3
    assert siege.slow_bytes_sent < len(REQUEST)
    assert siege.garbage_answer.startswith(b"HTTP/1.0 400 ")
    assert siege.long_line_answer == b"" or siege.long_line_answer.startswith(b"HTTP/1.0 400 ")
    assert siege.halfway_then_stats.startswith(b"HTTP/1.0 200 ")


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_stats_port_logs_one_whole_line_per_kind_of_problem(
    sieges: dict[str, Siege], variant: str
) -> None:
    log = sieges[variant].log
    assert "Traceback" not in log
    assert "Exception occurred" not in log
    lines = [line for line in log.splitlines() if "Stats port" in line]
    for line in lines:
        assert STATS_LINE.fullmatch(line), line
    # Thousands of problems, a handful of lines: per kind (four), one line per window at most.
    windows = sieges[variant].seconds / PROBLEM_WINDOW + 1
    assert 1 <= len(lines) <= 4 * windows, lines
    assert f"at once: {MAX_OPEN} open" in log
