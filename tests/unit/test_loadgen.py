"""loadgen against in-test echo servers on loopback: counting, verification, failures, the CLI.

Each server listens before its thread starts, so the kernel queues connections from the first
moment and no test waits for readiness.  Misbehaving servers (one that corrupts a byte, one that
hangs up, one with a lossy counter) prove that loadgen notices what it claims to notice.
"""

import http.server
import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from echolab_loadgen.__main__ import main
from echolab_loadgen.engine import MAX_SIZE
from echolab_loadgen.histogram import FLUSH_AT, LatencyRecorder
from echolab_loadgen.report import SustainedReport, read_report
from prometheus_client.parser import text_string_to_metric_families

DOCUMENTED_KEYS = {
    "sent", "echoed", "mismatched", "errors", "server_counted", "lost_updates", "msgs_per_s",
    "mib_per_s", "duration_s", "connections", "size", "latency_us",
}  # fmt: skip
LATENCY_KEYS = {"p50", "p90", "p99", "p999", "max"}
LOADGEN = Path(__file__).resolve().parents[2] / "loadgen"


class EchoServer:
    """A selectors echo server in a thread, counting recv() calls as the tutorial does.

    corrupt_at: flip the byte at this offset of every connection's stream.
    hang_up_after: close each connection once it has echoed this many bytes.
    count_every: count only every n-th message (a racy counter that loses updates).
    serve_only: answer only the first n connections; later ones stay in the backlog unserved.
    stall_first: seconds to hold back the very first echo (a server that stalls once).
    """

    def __init__(
        self, corrupt_at=None, hang_up_after=None, count_every=1, serve_only=None, stall_first=0
    ):
        self.corrupt_at = corrupt_at
        self.hang_up_after = hang_up_after
        self.count_every = count_every
        self.serve_only = serve_only
        self.stall_first = stall_first
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.recvs = 0
        self.counted = 0
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        echoed = {}
        while not self.stopping.is_set():
            for key, _ in sel.select(0.05):
                if key.fileobj is self.listener:
                    if self.serve_only is not None and self.accepted >= self.serve_only:
                        sel.unregister(self.listener)  # leave the rest in the backlog
                        continue
                    conn, _ = self.listener.accept()
                    self.accepted += 1
                    echoed[conn] = 0
                    sel.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                data = conn.recv(65536)
                if not data:
                    sel.unregister(conn)
                    conn.close()
                    continue
                self.recvs += 1
                if self.recvs % self.count_every == 0:
                    self.counted += 1
                if self.stall_first and self.recvs == 1:
                    time.sleep(self.stall_first)
                offset = echoed[conn]
                if self.corrupt_at is not None and offset <= self.corrupt_at < offset + len(data):
                    i = self.corrupt_at - offset
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
                conn.setblocking(True)
                conn.sendall(data)
                echoed[conn] = offset + len(data)
                if self.hang_up_after is not None and echoed[conn] >= self.hang_up_after:
                    sel.unregister(conn)
                    conn.close()
        for key in list(sel.get_map().values()):
            key.fileobj.close()

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.listener.close()


class StatsServer:
    """The stats endpoint of an EchoServer: ``GET /stats`` answers its message counter, and
    whether it prints a line per message as the lab's servers say by default."""

    def __init__(self, echo, log_per_message):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                stats = {"messages": echo.counted, "log_per_message": log_per_message}
                body = json.dumps(stats).encode()
                self.send_response(200 if self.path == "/stats" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    """Start EchoServer(**options) with its stats endpoint; returns the base CLI arguments."""
    started = []

    def start(log_per_message=False, **options):
        echo = EchoServer(**options)
        stats = StatsServer(echo, log_per_message)
        started.extend([stats, echo])
        return ["--target", "127.0.0.1", "--port", str(echo.port), "--stats-port", str(stats.port)]

    yield start
    for server in started:
        server.close()


def run_json(capsys, argv):
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_experiment_counts_what_the_server_counted(serve, capsys):
    code, result, _ = run_json(capsys, [*serve(), "--clients", "2", "--repeat", "15"])
    assert code == 0
    assert (result["sent"], result["echoed"], result["mismatched"]) == (30, 30, 0)
    assert (result["server_counted"], result["lost_updates"]) == (30, 0)
    assert result["connections"] == 30


def test_experiment_reports_lost_updates_of_a_racy_counter(serve, capsys):
    code, result, _ = run_json(capsys, [*serve(count_every=3), "--clients", "2", "--repeat", "15"])
    assert code == 0, "lost updates are the server's lesson, not a failed echo"
    assert (result["echoed"], result["server_counted"], result["lost_updates"]) == (30, 10, 20)


def test_sustained_load_verifies_every_message(serve, capsys):
    args = [*serve(), "--connections", "5", "--messages", "40", "--size", "100"]
    code, result, _ = run_json(capsys, args)
    assert code == 0
    assert result.keys() >= DOCUMENTED_KEYS
    assert set(result["latency_us"]) == LATENCY_KEYS
    assert (result["sent"], result["echoed"], result["mismatched"], result["errors"]) == (
        200, 200, 0, 0,
    )  # fmt: skip
    assert result["server_counted"] == 200 and result["lost_updates"] == 0
    assert result["msgs_per_s"] > 0 and result["mib_per_s"] > 0
    assert result["latency_us"]["p50"] <= result["latency_us"]["max"]


def test_large_messages_arrive_in_pieces_and_are_still_checked(serve, capsys):
    args = [*serve(), "--connections", "2", "--messages", "5", "--size", "300000"]
    code, result, _ = run_json(capsys, args)
    assert code == 0
    assert (result["sent"], result["echoed"], result["size"]) == (10, 10, 300000)
    assert result["server_counted"] > 10, "the server counted more recv() calls than messages"
    assert result["lost_updates"] is None, "not comparable when a message spans several recv()"


@pytest.mark.parametrize("size", [64, 300000])
def test_a_corrupted_byte_is_a_mismatch(serve, capsys, size):
    args = [*serve(corrupt_at=size + 7), "--connections", "1", "--messages", "4", "--size"]
    code, result, _ = run_json(capsys, [*args, str(size)])
    assert code == 1
    assert (result["sent"], result["echoed"], result["mismatched"]) == (4, 3, 1)


def test_a_server_hanging_up_is_an_error_and_the_echo_missing(serve, capsys):
    args = [*serve(hang_up_after=64), "--connections", "3", "--messages", "5", "--size", "64"]
    code, result, _ = run_json(capsys, args)
    assert code == 1
    assert result["errors"] == 3
    assert result["echoed"] == 3 and result["sent"] == 6 and result["missing"] == 3
    assert result["first_error"].startswith("Connection")


def test_connections_a_server_never_serves_are_counted_apart(serve, capsys):
    args = [*serve(serve_only=3), "--connections", "5", "--messages", "4", "--timeout", "0.5"]
    code, result, _ = run_json(capsys, args)
    assert code == 1
    assert (result["served"], result["echoed"], result["missing"]) == (3, 12, 2)


def test_echoes_after_the_end_are_verified_but_not_throughput(serve, capsys):
    """The first echo is held 0.5 s, past the 0.2 s run: it is waited for, but not counted."""
    args = [*serve(stall_first=0.5), "--connections", "1", "--duration", "0.2"]
    code, result, _ = run_json(capsys, args)
    assert code == 0
    assert (result["sent"], result["echoed"], result["served"]) == (1, 1, 0)
    assert result["msgs_per_s"] == 0 and result["latency_us"]["max"] >= 500_000


def test_procs_split_the_connections_and_merge_the_results(serve, capsys):
    args = [*serve(), "--connections", "4", "--messages", "25", "--procs", "2"]
    code, result, _ = run_json(capsys, args)
    assert code == 0
    assert (result["sent"], result["echoed"], result["server_counted"]) == (100, 100, 100)
    assert result["procs"] == 2 and result["served"] == 4


def test_cgroup_cpu_only_when_asked(serve, capsys):
    """The bench asks for its container's CPU; by hand it is off (on a host it would be the
    whole machine's root cgroup)."""
    args = [*serve(), "--connections", "2", "--messages", "200", "--procs", "2"]
    code, result, _ = run_json(capsys, args)
    assert code == 0 and "cgroup_cpu_s" not in result
    code, result, _ = run_json(capsys, [*args, "--cgroup-cpu"])
    assert code == 0 and result["cgroup_cpu_s"] > 0


def test_open_loop_counts_latency_from_when_a_message_was_due(serve, capsys):
    """The server holds its first echo 0.3 s; at 100 msgs/s, 30 more messages fall due meanwhile.

    Measured from the actual send (as a closed loop does), only the first would look slow.  From
    the time each was due, the first seven (p90 of 60 is the 7th slowest) waited at least
    0.3 - 0.06 s, less the sketch's 1%.  A lower bound only: a slow machine can make the latencies
    larger, never smaller.
    """
    args = [*serve(stall_first=0.3), "--connections", "1", "--messages", "60", "--rate", "100"]
    code, result, _ = run_json(capsys, args)
    assert code == 0
    assert result["sent"] == 60 and result["rate"] == 100
    assert result["latency_us"]["p90"] >= 240_000 * 0.99


def test_idle_stops_at_the_first_connection_not_served(serve, capsys):
    args = [*serve(serve_only=3), "--idle", "6", "--timeout", "0.5"]
    code, result, _ = run_json(capsys, args)
    assert code == 1
    assert (result["idle_requested"], result["idle_open"]) == (6, 3)
    assert result["idle_failure"] == "connection 4 not served within 0.5 s"


def test_idle_holds_all_it_was_asked_for(serve, capsys):
    code, result, _ = run_json(capsys, [*serve(), "--idle", "50"])
    assert code == 0
    assert (result["idle_open"], result["idle_failure"]) == (50, None)


def unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("mode", [["--connections", "3", "--messages", "2"], ["--repeat", "2"]])
def test_unreachable_server_is_one_line_and_a_failure(capsys, mode):
    code = main(["--target", "127.0.0.1", "--port", str(unused_port()), "--stats-port", "0", *mode])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("loadgen: cannot reach 127.0.0.1:")


@pytest.mark.parametrize(
    "argv",
    [
        ["--connections", "0"],
        ["--size", "big"],
        ["--port", "70000"],
        ["--messages", "3", "--duration", "2"],
        ["--clients", "2", "--connections", "4"],
        ["--rate", "-5"],
        ["--no-such-option"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("loadgen: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--size", "200000000", "--messages", "1"], f"--size: must be at most {MAX_SIZE}"),
        (["--size", str(MAX_SIZE + 1)], f"--size: must be at most {MAX_SIZE}"),
        (["--duration", "nan"], "--duration: not a finite number: 'nan'"),
        (["--duration", "inf"], "--duration: not a finite number: 'inf'"),
        (["--duration", "1e300"], "--duration: must be at most 604800"),
        (["--timeout", "nan"], "--timeout: not a finite number: 'nan'"),
        (["--timeout", "1e12"], "--timeout: must be at most 604800"),
        (["--rate", "inf"], "--rate: not a finite number: 'inf'"),
        (["--rate", "1e-300"], "--rate: must be at least 0.001"),
        (["--idle", "1", "--hold", "nan"], "--hold: not a finite number: 'nan'"),
        (["--idle", "1", "--hold", "-1"], "--hold: must be at least 0"),
    ],
)
def test_sizes_and_seconds_out_of_reach_are_one_line_in_a_real_process(argv, complaint):
    """Each of these once reached a worker (or a sleep) and ended in its traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "echolab_loadgen", "--target", "127.0.0.1", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"loadgen: error: argument {complaint}")


def test_help_states_the_size_limit(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert f"at most {MAX_SIZE} (16 MiB" in " ".join(capsys.readouterr().out.split())


def test_the_largest_size_allowed_is_echoed_and_checked(serve, capsys):
    args = [*serve(), "--connections", "1", "--messages", "1", "--size", str(MAX_SIZE)]
    code, result, _ = run_json(capsys, args)
    assert code == 0
    assert (result["sent"], result["echoed"], result["size"]) == (1, 1, MAX_SIZE)


NOTE = "loadgen: note: 127.0.0.1 prints a line per message"


@pytest.mark.parametrize("length", [["--messages", "3"], ["--duration", "0.2"]])
def test_sustained_runs_say_once_that_the_server_prints_every_message(serve, capsys, length):
    code, result, err = run_json(capsys, [*serve(log_per_message=True), *length])
    assert code == 0 and result["echoed"] > 0
    assert err.count(NOTE) == 1 and "ECHOLAB_QUIET=1" in err
    assert err.count("\n") == 1


def test_no_note_for_a_quiet_server_or_the_experiment(serve, capsys):
    _, _, quiet_err = run_json(capsys, [*serve(), "--messages", "3"])
    _, _, experiment_err = run_json(
        capsys, [*serve(log_per_message=True), "--clients", "1", "--repeat", "2"]
    )
    assert quiet_err == experiment_err == ""


def test_stats_unavailable_leaves_the_count_empty(serve, capsys):
    base = serve()
    base[base.index("--stats-port") + 1] = str(unused_port())
    code, result, err = run_json(capsys, [*base, "--connections", "1", "--messages", "3"])
    assert code == 0
    assert result["server_counted"] is None and result["lost_updates"] is None
    assert err.startswith("loadgen: warning: no stats from 127.0.0.1:")


def test_percentiles_of_known_data_within_the_sketch_error():
    recorder = LatencyRecorder()
    for micros in range(1, 10_001):
        recorder.record(micros)
    summary = recorder.summary()
    for name, exact in (("p50", 5000), ("p90", 9000), ("p99", 9900), ("p999", 9990)):
        assert abs(getattr(summary, name) - exact) <= exact * 0.01 + 1, name
    assert summary.max == 10_000
    assert recorder.count == 10_000


def test_recorders_merge_and_never_hold_more_than_a_buffer_of_samples():
    first, second = LatencyRecorder(), LatencyRecorder()
    for _ in range(FLUSH_AT + 10):
        first.record(100)
    assert len(first.pending) == 10
    second.record(5000)
    first.merge(second)
    assert first.count == FLUSH_AT + 11
    assert first.summary().max == 5000
    assert abs(first.summary().p50 - 100) <= 1


def test_an_empty_recorder_summarizes_to_zeros():
    assert LatencyRecorder().summary().to_json() == dict.fromkeys(LATENCY_KEYS, 0)


def test_a_target_never_reachable_within_the_wait_is_one_line_and_exit_1(capsys):
    argv = ["--target", "127.0.0.1", "--port", str(unused_port()), "--wait", "0.6"]
    assert main([*argv, "--repeat", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loadgen: 127.0.0.1:") and "not reachable after 0.6 s" in err
    assert err.count("\n") == 1


def test_json_reports_carry_their_latency_sketch(serve, capsys):
    _, result, _ = run_json(capsys, [*serve(), "--connections", "2", "--messages", "10"])
    report = read_report(result)
    assert isinstance(report, SustainedReport) and report.latency_sketch is not None
    recorder = LatencyRecorder.from_sketch(report.latency_sketch)
    assert recorder.count == 20 and recorder.summary() == report.latency_us


# Each mode's keys in the order loadgen prints them: the bench's result files and the cluster's
# merge read them, so they are a contract (optional keys: cgroup_cpu_s, latency_sketch).
MEASURED_KEYS = [
    "mode", "target", "sent", "echoed", "mismatched", "missing", "errors", "server_counted",
    "lost_updates", "msgs_per_s", "mib_per_s", "duration_s", "connections", "size", "latency_us",
    "first_error",
]  # fmt: skip
MODE_KEYS = {
    "experiment": [*MEASURED_KEYS, "latency_sketch"],
    "sustained": [
        *MEASURED_KEYS, "served", "loadgen_cpu_percent", "cgroup_cpu_s", "procs", "rate",
        "latency_sketch",
    ],
    "idle": ["mode", "target", "idle_requested", "idle_open", "idle_failure"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "args"),
    [
        ("experiment", ["--clients", "2", "--repeat", "2"]),
        ("sustained", ["--connections", "2", "--messages", "3", "--procs", "2", "--cgroup-cpu"]),
        ("idle", ["--idle", "2"]),
    ],
)
def test_each_modes_report_keeps_its_keys_in_order_and_reads_back_the_same(
    serve, capsys, mode, args
):
    _, result, _ = run_json(capsys, [*serve(), *args])
    expected = MODE_KEYS[mode]
    if "cgroup_cpu_s" not in result:  # no cgroup CPU counter to read here
        expected = [key for key in expected if key != "cgroup_cpu_s"]
    assert list(result) == expected
    report = read_report(result)
    assert report.mode == mode and list(report.to_json().items()) == list(result.items())


@pytest.mark.parametrize(
    ("report", "complaint"),
    [
        ({"mode": "sustained", "target": "x"}, "no key 'sent'"),
        ({"mode": "idle", "target": "x", "idle_requested": 1, "idle_open": 1}, "'idle_failure'"),
        ({"mode": "warp", "target": "x"}, "expected one of 'idle'"),
        (
            {
                "mode": "idle",
                "target": "x",
                "idle_requested": "1",
                "idle_open": 0,
                "idle_failure": None,
            },
            "idle_requested: expected int, got '1'",
        ),
    ],
)
def test_a_report_that_does_not_fit_its_mode_is_one_line(report, complaint):
    with pytest.raises(ValueError, match=complaint) as caught:
        read_report(report)
    assert "\n" not in str(caught.value)


class Pushgateway:
    """A stand-in Pushgateway: keeps the last body PUT to each path, in order of arrival."""

    def __init__(self, status=200):
        pushed = self.pushed = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                pushed[self.path] = body
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def pushed_values(body):
    """metric name -> value, through the official parser (every family with HELP and TYPE)."""
    families = list(text_string_to_metric_families(body))
    assert all(family.documentation and family.type != "unknown" for family in families)
    return {sample.name: sample.value for family in families for sample in family.samples}


@pytest.mark.parametrize("mode", [["--clients", "2", "--repeat", "15"], ["--messages", "20"]])
def test_a_run_pushes_what_it_sent_and_the_servers_count_at_the_start(serve, capsys, mode):
    gateway = Pushgateway()
    try:
        code, result, _ = run_json(
            capsys, [*serve(count_every=3), *mode, "--pushgateway", gateway.address]
        )
    finally:
        gateway.close()
    assert code == 0
    # The stand-in's /stats names no variant, so the group is named by the target.
    values = pushed_values(gateway.pushed["/metrics/job/loadgen/variant/127.0.0.1"])
    assert values == {
        "echolab_loadgen_sent_total": result["sent"],
        "echolab_loadgen_echoed_total": result["echoed"],
        "echolab_loadgen_server_messages_at_start": 0,
    }
    assert result["lost_updates"] > 0


def test_no_pushgateway_is_silent_and_a_broken_one_is_one_line(serve, capsys):
    code, _, err = run_json(
        capsys, [*serve(), "--messages", "3", "--pushgateway", "nowhere.invalid:9091"]
    )
    assert (code, err) == (0, "")
    gateway = Pushgateway(status=500)
    try:
        code, _, err = run_json(
            capsys, [*serve(), "--messages", "3", "--pushgateway", gateway.address]
        )
    finally:
        gateway.close()
    assert code == 0, "watching is optional: the run goes on"
    assert err.startswith("loadgen: warning: not pushing to the Pushgateway at 127.0.0.1:")
    assert len(err.splitlines()) == 1


def test_a_pushgateway_address_must_be_host_and_port(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--pushgateway", "pushgateway"])
    assert exit_info.value.code == 2
    assert "not host:port: 'pushgateway'" in capsys.readouterr().err
