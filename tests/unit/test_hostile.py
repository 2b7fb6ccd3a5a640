"""Clients that misbehave, against every variant in process (issue 4; docs/reference/hostile.md,
"Hostile clients, faults and hardening").

Each case checks that the misbehaving client's own bytes come back exact (where it reads at
all) and that the server goes on serving everyone else. Timings are printed, never asserted:
``pytest -s -k hostile`` shows them.
"""

import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from echolab_server.variants import registry, variant_names
from echolab_server.variants.threads import ThreadsServer

from .inprocess import DEADLINE, closed_by_server, connect, echo_once, recv_exactly, run_server

MIB = 1 << 20
EVERY_BYTE = bytes(range(256))


def send_and_read(sock: socket.socket, payload: bytes, *, half_close: bool = False) -> bytes:
    """Send ``payload`` in one sendall from a helper thread while reading its echo here.

    A client that sends a large message without reading would deadlock a blocking server
    (both sides' buffers full): reading at the same time is what a correct client does.
    With ``half_close`` the sender then shuts down its side, and the echo must end in EOF.
    """

    def send() -> None:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)

    with ThreadPoolExecutor(1) as sender:
        sending = sender.submit(send)
        echo = recv_exactly(sock, len(payload))
        sending.result(DEADLINE)
    if half_close:
        assert sock.recv(1) == b"", "after the whole echo the server must close: EOF"
    return echo


def pattern(size: int) -> bytes:
    """``size`` bytes cycling through every byte value, so a lost or moved byte shows."""
    return (EVERY_BYTE * (size // 256 + 1))[:size]


@pytest.mark.parametrize("size", [MIB, 16 * MIB], ids=["1MiB", "16MiB"])
def test_a_large_message_in_one_sendall_comes_back_exact(variant: str, size: int) -> None:
    payload = pattern(size)

    def drive(server):
        with connect(server) as sock:
            assert send_and_read(sock, payload) == payload

    run = run_server(variant, drive, work_delay=0, quiet=True)
    totals = run.server.traffic
    assert totals.bytes_received == totals.bytes_sent == size


@pytest.mark.parametrize("payload", [EVERY_BYTE, b"\0"], ids=["0-255", "NUL"])
def test_binary_data_comes_back_exact(variant: str, payload: bytes) -> None:
    run = run_server(variant, lambda server: echo_once(server, payload), work_delay=0)
    assert run.result == payload


@pytest.mark.parametrize("size", [12, 4 * MIB], ids=["12B", "4MiB"])
def test_half_close_still_gets_the_whole_echo_then_eof(variant: str, size: int) -> None:
    payload = pattern(size)

    def drive(server):
        with connect(server) as sock:
            echo = send_and_read(sock, payload, half_close=True)
        return echo, echo_once(server)

    run = run_server(variant, drive, work_delay=0, quiet=True)
    assert run.result == (payload, b"Hello, world")


CHUNK = pattern(64 * 1024)
NEVER_READS_LIMIT = 64 * MIB  # a server without backpressure would take all of it, and more


def _fill_until_stalled(sock: socket.socket) -> int:
    """Send CHUNKs without reading until the server stops taking them; return bytes sent."""
    sock.settimeout(0.5)  # no progress for this long: every buffer on the way is full
    sent = 0
    while sent < NEVER_READS_LIMIT:
        try:
            sent += sock.send(CHUNK)
        except TimeoutError:
            return sent
    pytest.fail(f"the server took {sent} bytes from a client that never reads, and still takes")


def test_a_client_that_never_reads_is_held_back_and_others_are_served(variant: str) -> None:
    cap = 256 * 1024

    one_at_a_time = registry()[variant].serves_at_once == 1

    def drive(server):
        with connect(server) as hog:
            sent = _fill_until_stalled(hog)
            # Echo the server has taken in and not yet handed to the kernel (asyncio's and
            # uvloop's transports included): what the cap bounds, the same for every variant.
            held = server.unsent_bytes()
            # While the hog is stalled, everyone else is served (one at a time: the hog's place).
            others = [] if one_at_a_time else [echo_once(server) for _ in range(5)]
            still_held = server.unsent_bytes()
            hog.settimeout(DEADLINE)
            echo = recv_exactly(hog, sent)  # it reads at last: every byte, in order
        return sent, held, still_held, others, echo

    run = run_server(variant, drive, work_delay=0, quiet=True, output_cap=cap)
    sent, held, still_held, others, echo = run.result
    print(f"{variant}: never-reading client stalled after {sent} bytes; server held {held}")
    limit = cap + run.server.settings.recv_size
    assert held <= limit, f"{held} bytes of echo held in the server, cap {cap}"
    assert still_held <= limit
    assert others == ([] if one_at_a_time else [b"Hello, world"] * 5)
    assert echo == (CHUNK * (sent // len(CHUNK) + 1))[:sent]


def _latencies(server, count: int) -> list[float]:
    """Milliseconds for ``count`` tutorial exchanges, one connection each; every echo checked."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert echo_once(server) == b"Hello, world"
        times.append((time.perf_counter() - started) * 1000)
    return times


def _report(variant: str, case: str, alone: list[float], beside: list[float]) -> None:
    print(
        f"{variant}: echo latency median/max {statistics.median(alone):.2f}/{max(alone):.2f} ms "
        f"alone, {statistics.median(beside):.2f}/{max(beside):.2f} ms beside {case}"
    )


def test_a_slow_client_gets_its_echo_and_others_are_served(variant: str) -> None:
    slow_bytes = pattern(20)  # one byte every 100 ms for 2 s (the bench runs the 10 s)

    def drive(server):
        alone = _latencies(server, 20)
        with connect(server) as slow, ThreadPoolExecutor(1) as others:
            # One at a time (simple) serves the slow client first, then the others: by design.
            beside = others.submit(_latencies, server, 20)
            for byte in slow_bytes:
                slow.sendall(bytes([byte]))
                time.sleep(0.1)  # the pacing of a slow client, not a wait for readiness
            slow.shutdown(socket.SHUT_WR)
            echo = recv_exactly(slow, len(slow_bytes))
            _report(variant, "a slow client", alone, beside.result(DEADLINE + 5))
        return echo

    run = run_server(variant, drive, work_delay=0, quiet=True)
    assert run.result == slow_bytes


# Not where the design fixes how many are served at once (simple, pool): an idle connection
# holds one of those places for as long as it stays open.
@pytest.mark.parametrize("variant", variant_names(lambda server: server.serves_at_once is None))
def test_200_idle_connections_do_not_stop_others_being_served(variant: str) -> None:
    def drive(server):
        alone = _latencies(server, 50)
        idle = [connect(server) for _ in range(200)]
        try:
            beside = _latencies(server, 50)
            # The idle connections are still there and still served when they do speak.
            for sock in idle[::40]:
                sock.sendall(b"late")
                assert recv_exactly(sock, 4) == b"late"
        finally:
            for sock in idle:
                sock.close()
        _report(variant, "200 idle connections", alone, beside)
        return server.traffic.connections_total

    assert run_server(variant, drive, work_delay=0, quiet=True).result == 300


def test_select_refuses_a_descriptor_past_fd_setsize_and_keeps_serving() -> None:
    def drive(server):
        held = connect(server)
        held.sendall(b"a")
        assert recv_exactly(held, 1) == b"a"
        # Take every descriptor below 1024, so the server's next accept() returns one above.
        fillers = []
        try:
            while not fillers or fillers[-1] < 1024:
                fillers.append(os.dup(0))
            with connect(server) as refused:
                closed = closed_by_server(refused)
        finally:
            for fd in fillers:
                os.close(fd)
        echo = echo_once(server)
        held.sendall(b"b")
        assert recv_exactly(held, 1) == b"b", "the connection it already had is still served"
        held.close()
        return closed, echo

    run = run_server("select", drive, work_delay=0)
    assert run.result == (True, b"Hello, world")
    refusals = [line for line in run.lines() if line.startswith("Refusing connection from")]
    assert len(refusals) == 1
    assert "past select()'s FD_SETSIZE ceiling (1024)" in refusals[0]
    assert run.server.traffic.connections_refused == 1


@contextlib.contextmanager
def no_descriptors_left(spare: socket.socket):
    """Lower this process's soft open-file limit to its lowest free descriptor, so that no new
    one can be opened (EMFILE), the in-process server's accept() included; restored on exit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(spare.fileno())
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# The loops that serve every client in one thread; the blocking family accepts in a thread of
# its own, where a pause stalls nobody (prefork's workers are the epoll loop).
@pytest.mark.parametrize(
    "variant", variant_names(lambda server: server.family in ("event loop", "coroutines"))
)
def test_out_of_descriptors_pauses_accepting_and_serves_the_others(variant: str) -> None:
    """EMFILE with connections waiting: the loop must stop watching the listener for a while,
    not sleep in it. Sleeping would cost every echo of the client it has one failed accept
    (and 0.1 s); a pause costs one failed accept per 0.1 s, whatever the traffic."""
    echoes = 100

    def drive(server):
        held = connect(server)
        held.sendall(b"a")
        assert recv_exactly(held, 1) == b"a"
        waiting = [socket.socket() for _ in range(3)]  # their descriptors exist before the limit
        with no_descriptors_left(held):
            for sock in waiting:
                sock.settimeout(DEADLINE)
                sock.connect(("127.0.0.1", server.port))  # queued; accept() gets EMFILE
            for _ in range(echoes):
                held.sendall(b"b")
                assert recv_exactly(held, 1) == b"b"
        for sock in [*waiting, held]:  # descriptors free again: the waiting ones are served
            with sock:
                sock.sendall(b"c")
                assert recv_exactly(sock, 1) == b"c"

    run = run_server(variant, drive, work_delay=0, quiet=True)
    failures = [line for line in run.lines() if line.startswith("Cannot accept a connection:")]
    print(f"{variant}: {len(failures)} failed accepts during {echoes} echoes out of descriptors")
    assert failures, "the server never ran out of descriptors"
    assert "Too many open files" in failures[0]
    assert len(failures) < echoes / 2, "accepting is retried on every turn of the loop"
    assert run.server.traffic.connections_total == 4


@pytest.mark.parametrize("variant", variant_names(lambda server: issubclass(server, ThreadsServer)))
def test_out_of_threads_refuses_the_newcomer_and_keeps_serving(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread per connection meets the container's pids_limit (4096) before its file limit:
    the connection that gets no thread is refused with a log line, and the server goes on."""
    exhausted = threading.Event()

    class LimitedThread(threading.Thread):
        def start(self) -> None:
            if exhausted.is_set() and self.name.startswith("client-"):
                raise RuntimeError("can't start new thread")
            super().start()

    monkeypatch.setattr(threading, "Thread", LimitedThread)

    def drive(server):
        with connect(server) as held:
            held.sendall(b"a")
            assert recv_exactly(held, 1) == b"a"
            exhausted.set()
            with connect(server) as refused:
                closed = closed_by_server(refused)
            exhausted.clear()
            held.sendall(b"b")
            assert recv_exactly(held, 1) == b"b"
        return closed, echo_once(server)

    run = run_server(variant, drive, work_delay=0)
    assert run.result == (True, b"Hello, world")
    refusals = [line for line in run.lines() if line.startswith("Refusing connection from")]
    assert len(refusals) == 1
    assert refusals[0].endswith(": cannot start a thread for it (can't start new thread)")
    assert run.server.traffic.connections_refused == 1
    assert run.server.traffic.connections_current == 0


def test_a_storm_of_short_connections_counts_exactly(variant: str) -> None:
    """The in-process storm: 4 loops of 250 connect-send-close cycles (the 5,000 run in
    containers is tests/integration/test_faults.py)."""

    def drive(server):
        def loop():
            for _ in range(250):
                with connect(server) as sock:
                    sock.sendall(b"Hello, world")
                    assert recv_exactly(sock, 12) == b"Hello, world"

        with ThreadPoolExecutor(4) as loops:
            for future in [loops.submit(loop) for _ in range(4)]:
                future.result(60)

    run = run_server(variant, drive, work_delay=0, quiet=True)
    totals = run.server.traffic
    assert totals.connections_total == 1000
    assert totals.bytes_received == totals.bytes_sent == 12000
    if registry()[variant].counts_exactly:  # else losing updates is the lesson
        assert run.server.messages.value == 1000
    assert "Traceback" not in run.log


ROOT = Path(__file__).resolve().parents[2]


def one_line_error(program: str, args: list[str], env: dict[str, str] | None = None) -> str:
    """Run ``python -m program args`` (``env`` added to ours); it must exit 2 with nothing on
    stdout and one line on stderr, which is returned."""
    result = subprocess.run(
        [sys.executable, "-m", program, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("program", "args", "complaint"),
    [
        ("echolab_server", ["--variant", "nope"], "unknown variant 'nope'"),
        ("echolab_server", [], "choose a variant with --variant"),
        ("echolab_server", ["--variant", "poll", "--port", "0"], "not a port from 1 to 65535"),
        ("echolab_server", ["--variant", "poll", "--port", "70000"], "not a port from 1"),
        ("echolab_server", ["--variant", "poll", "--host"], "expected one argument"),
        ("echolab_loadgen", ["--port", "0"], "argument --port"),
        ("echolab_loadgen", ["--port", "70000"], "argument --port"),
        ("echolab_loadgen", ["--repeat", "-1"], "argument --repeat"),
        ("echolab_loadgen", ["--target"], "expected one argument"),
    ],
)
def test_bad_command_lines_are_one_line_and_exit_2(
    program: str, args: list[str], complaint: str
) -> None:
    """The issue's bad command lines for the server and loadgen, as real processes (the
    client's are in test_client.py)."""
    assert complaint in one_line_error(program, args)


@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("work-delay", "nan", "not a finite number: 'nan'"),
        ("work-delay", "inf", "not a finite number: 'inf'"),
        ("work-delay", "-inf", "not a finite number: '-inf'"),
        ("work-delay", "61", "must be at most 60: '61'"),
        ("output-cap", str(1 << 40), f"must be at most {1 << 30}: '{1 << 40}'"),
    ],
)
@pytest.mark.parametrize("given_as", ["option", "environment"])
def test_server_numbers_out_of_reach_are_one_line_and_exit_2(
    option: str, value: str, complaint: str, given_as: str
) -> None:
    """nan and inf parse as floats; either, on the command line or in the environment
    compose passes on, must stop the server at once with one line."""
    if given_as == "option":
        err = one_line_error("echolab_server", ["--variant", "poll", f"--{option}={value}"])
    else:
        variable = "ECHOLAB_" + option.replace("-", "_").upper()
        err = one_line_error("echolab_server", ["--variant", "poll"], {variable: value})
        assert f"error: {variable}: " in err
    assert complaint in err
