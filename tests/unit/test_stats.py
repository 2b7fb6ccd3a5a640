"""The stats endpoint against hostile clients (issue 13), in process: slow, garbage, oversized,
half-sent, and more connections than it may hold. Its bounds are small here so the tests are
quick; the flood against every variant in its container is tests/integration/test_stats_port.py.
"""

import contextlib
import http.client
import io
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from echolab_server import stats
from echolab_server.log import Log
from echolab_server.stats import StatsEndpoint
from prometheus_client.parser import text_string_to_metric_families

from ..stats_clients import REQUEST, send_a_byte_a_second
from .inprocess import DEADLINE

SNAPSHOT = {
    "variant": "poll",
    "messages": 3,
    "bytes_received": 36,
    "bytes_sent": 36,
    "connections_total": 3,
    "connections_current": 0,
    "connections_refused": 0,
    "uptime_s": 1.5,
}
MAX_OPEN = 8
HALF_SENT = REQUEST[:21]  # the request line, then nothing: the attack


class Endpoint:
    """A started endpoint, its log, and a way to wait for what it does by itself."""

    def __init__(self, deadline: float) -> None:
        self.out = io.StringIO()
        self.ready = threading.Event()
        self.ready.set()
        self.endpoint = StatsEndpoint(
            "127.0.0.1",
            0,
            lambda: dict(SNAPSHOT),
            self.ready,
            Log(self.out),
            max_open=MAX_OPEN,
            deadline=deadline,
        )
        self.port = self.endpoint.port

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()

    def connect(self, first: bytes = b"") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        if first:
            sock.sendall(first)
        return sock

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, answer.read().decode()
        finally:
            conn.close()

    def wait_for(self, condition, what: str) -> None:
        end = time.monotonic() + DEADLINE
        while not condition():
            if time.monotonic() > end:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.005)


@pytest.fixture
def make_endpoint() -> Iterator:
    started: list[Endpoint] = []

    def make(deadline: float = 30.0) -> Endpoint:
        endpoint = Endpoint(deadline)
        endpoint.endpoint.start()
        started.append(endpoint)
        return endpoint

    yield make
    for endpoint in started:
        endpoint.endpoint.close()
        assert "Traceback" not in endpoint.out.getvalue()


def read_until_closed(sock: socket.socket) -> bytes:
    """What the server sent before it closed (a reset counts as closed)."""
    sock.settimeout(DEADLINE)
    received = bytearray()
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return bytes(received)


def test_answers_stats_metrics_health_and_nothing_else(make_endpoint) -> None:
    lab = make_endpoint()
    status, body = lab.get("/stats")
    assert (status, json.loads(body)) == (200, SNAPSHOT | {"stats_connections": 1})
    status, body = lab.get("/metrics")
    assert status == 200
    assert 'echolab_messages_total{variant="poll"} 3' in body.splitlines()
    assert lab.get("/health") == (200, "ok\n")
    assert lab.get("/nope")[0] == 404
    lab.ready.clear()
    assert lab.get("/health") == (503, "starting\n")
    with lab.connect(b"POST /stats HTTP/1.0\r\n\r\n") as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.0 405 ")
    # The compose healthcheck's exact request: bash, HTTP/1.0, bare LF line ends too.
    lab.ready.set()
    for request in (b"GET /health HTTP/1.0\r\n\r\n", b"GET /health HTTP/1.0\n\n"):
        with lab.connect(request) as sock:
            assert b" 200 " in read_until_closed(sock).split(b"\r\n")[0]
    assert lab.lines() == []


def test_a_client_sending_a_byte_a_second_is_closed_at_the_deadline(make_endpoint) -> None:
    deadline = 2.0
    lab = make_endpoint(deadline)
    with lab.connect() as slow:
        closed, sent, took = send_a_byte_a_second(slow)
    print(f"byte-a-second client closed after {took:.2f} s, {sent} bytes sent")
    assert closed, "the whole request went in a byte a second, never cut off"
    assert deadline - 0.1 <= took < deadline + 1.5
    assert lab.lines() == ["Stats port: closed 1 connection not done within 2 s"]
    assert lab.get("/health")[0] == 200


@pytest.mark.parametrize(
    "garbage",
    [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"hello\n\n", b"GET\r\n\r\n"],
    ids=["tls-hello", "words", "no-path"],
)
def test_garbage_gets_a_400_and_one_log_line(make_endpoint, garbage: bytes) -> None:
    lab = make_endpoint()
    for _ in range(3):
        with lab.connect(garbage) as sock:
            assert read_until_closed(sock).startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert lab.get("/stats")[0] == 200
    # Three bad requests, one line: the next comes only when the window has passed.
    assert lab.lines() == ["Stats port: answered 1 bad request with 400"]


def test_problems_of_one_kind_make_one_line_per_window_with_their_count(
    make_endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "PROBLEM_WINDOW", 0.5)
    lab = make_endpoint()
    for _ in range(3):
        with lab.connect(b"hello\n\n") as sock:
            read_until_closed(sock)
    lab.wait_for(lambda: len(lab.lines()) == 2, "the second line, at the window's end")
    assert lab.lines() == [
        "Stats port: answered 1 bad request with 400",
        "Stats port: answered 2 bad requests with 400",
    ]


def test_a_1_mib_request_line_is_cut_off_and_the_endpoint_goes_on(make_endpoint) -> None:
    lab = make_endpoint()
    with lab.connect() as sock, ThreadPoolExecutor(1) as sender:

        def send() -> None:
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # cut off: fine
                sock.sendall(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.0\r\n\r\n")

        sending = sender.submit(send)
        answer = read_until_closed(sock)
        sending.result(DEADLINE)
    # A 400, unless the reset for the unread rest overtook it: closed either way.
    assert answer == b"" or answer.startswith(b"HTTP/1.0 400 ")
    assert lab.get("/stats")[0] == 200
    assert lab.lines() == ["Stats port: answered 1 bad request with 400"]


def test_a_request_closed_halfway_frees_its_place_at_once(make_endpoint) -> None:
    lab = make_endpoint(deadline=30.0)
    halves = [lab.connect(HALF_SENT) for _ in range(MAX_OPEN)]
    lab.wait_for(lambda: lab.endpoint.connections == MAX_OPEN, "every half-sent request held")
    for sock in halves:
        sock.close()
    lab.wait_for(lambda: lab.endpoint.connections == 0, "the places freed, long before 30 s")
    assert lab.get("/stats")[0] == 200
    assert lab.lines() == []


def test_past_the_bound_connections_are_reset_at_once_and_a_get_is_answered(
    make_endpoint,
) -> None:
    lab = make_endpoint(deadline=30.0)
    threads_before = threading.active_count()
    held = [lab.connect(HALF_SENT) for _ in range(MAX_OPEN)]
    lab.wait_for(lambda: lab.endpoint.connections == MAX_OPEN, "the first ones held")
    try:
        for _ in range(50):
            with lab.connect(HALF_SENT) as extra:
                started = time.monotonic()
                assert read_until_closed(extra) == b""
                assert time.monotonic() - started < 1.0, "closed at once, not at the deadline"
            assert lab.endpoint.connections == MAX_OPEN
        status, body = lab.get("/stats")  # whole on arrival: answered, even now
        assert (status, json.loads(body)) == (200, SNAPSHOT | {"stats_connections": MAX_OPEN + 1})
        assert threading.active_count() == threads_before, "no thread per connection"
    finally:
        for sock in held:
            sock.close()
    assert lab.lines() == [f"Stats port: closed 1 connection at once: {MAX_OPEN} open"]


def test_a_normal_get_is_answered_during_a_flood_of_idle_connections(make_endpoint) -> None:
    lab = make_endpoint(deadline=1.0)
    idle = [lab.connect() for _ in range(300)]
    try:
        for _ in range(20):
            assert lab.get("/health") == (200, "ok\n")
        # Idle connections are closed by the server itself: the client never has to.
        for sock in idle:
            assert read_until_closed(sock) == b""
    finally:
        for sock in idle:
            sock.close()
    assert lab.endpoint.connections == 0


def _cpu_seconds(stat_fd: int) -> float:
    """utime + stime from an open /proc/.../stat (read in place: no descriptor needed)."""
    fields = os.pread(stat_fd, 4096, 0).decode().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_pauses_accepting_without_spinning(make_endpoint) -> None:
    lab = make_endpoint()
    (thread,) = [t for t in threading.enumerate() if t.name == "stats"]
    stat_fd = os.open(f"/proc/self/task/{thread.native_id}/stat", os.O_RDONLY)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    waiting = socket.socket()
    waiting.settimeout(DEADLINE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    cpu_before = _cpu_seconds(stat_fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # accept() gets EMFILE
    try:
        waiting.connect(("127.0.0.1", lab.port))
        waiting.sendall(REQUEST)
        lab.wait_for(lambda: lab.lines(), "the log line about accept")
        time.sleep(1.0)  # a second of the condition, to see that the loop does not spin
        spent = _cpu_seconds(stat_fd) - cpu_before
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        os.close(stat_fd)
    with waiting:
        answer = read_until_closed(waiting)  # accepted once descriptors are free again
    assert answer.startswith(b"HTTP/1.0 200 ")
    assert spent < 0.3, f"the stats thread spent {spent:.2f} s of CPU while it could not accept"
    assert lab.lines() == [
        "Stats port: cannot accept (Too many open files), 1 time: pausing 0.1 s each time"
    ]


def test_close_is_prompt_with_connections_held() -> None:
    lab = Endpoint(deadline=30.0)
    lab.endpoint.start()
    held = [lab.connect(HALF_SENT) for _ in range(MAX_OPEN)]
    lab.wait_for(lambda: lab.endpoint.connections == MAX_OPEN, "every half-sent request held")
    started = time.monotonic()
    lab.endpoint.close()
    assert time.monotonic() - started < 1.0
    for sock in held:
        with sock:
            assert read_until_closed(sock) == b""


def test_metrics_parse_with_the_official_parser_and_describe_the_process(make_endpoint) -> None:
    """Every family has HELP and TYPE; the process figures are this test process's own."""
    status, body = make_endpoint().get("/metrics")
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(body)}
    assert all(
        family.documentation and family.type in ("counter", "gauge") for family in families.values()
    )
    value = {sample.name: sample.value for family in families.values() for sample in family.samples}
    assert value["echolab_messages_total"] == SNAPSHOT["messages"]
    assert value["echolab_processes"] >= 1
    assert value["echolab_threads"] >= threading.active_count()
    assert value["echolab_resident_memory_bytes"] > 1 << 20
    assert value["echolab_open_fds"] > 3


def test_process_figures_sum_the_processes_given_and_skip_ended_ones() -> None:
    alone = stats.process_figures([os.getpid()])
    assert alone["processes"] == 1
    assert alone["threads"] == len(os.listdir("/proc/self/task"))
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        both = stats.process_figures([os.getpid(), child.pid])
        assert 1 <= both["processes"] <= 2  # the child may have ended already
        status = Path(f"/proc/{child.pid}/status")
        end = time.monotonic() + DEADLINE
        while "State:\tZ" not in status.read_text():  # ended, not yet reaped
            assert time.monotonic() < end, "the child never ended"
            time.sleep(0.01)
        assert stats.process_figures([child.pid])["processes"] == 0, "a zombie is not counted"
    assert stats.process_figures([child.pid])["processes"] == 0, "nor a process reaped"
