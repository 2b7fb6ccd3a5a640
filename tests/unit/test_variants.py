"""Every tutorial variant, in process: echoes, totals, the lessons each one teaches, shutdown."""

import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from echolab_server.variants import registry, variant_names

from .inprocess import (
    DEADLINE,
    closed_by_server,
    connect,
    echo_once,
    eventually,
    recv_exactly,
    run_server,
)


def test_echoes_and_logs_like_the_tutorial(variant: str) -> None:
    run = run_server(variant, lambda server: echo_once(server), work_delay=0)

    assert run.result == b"Hello, world"
    lines = run.lines()
    assert lines[0] == f"Starting server on '127.0.0.1' port {run.server.port}"
    assert re.fullmatch(r"Received new connection from  \('127\.0\.0\.1', \d+\)", lines[1])
    assert lines[2:4] == ["Received: b'Hello, world'", "Total messages received: 1"]
    assert lines[-2:] == [
        "Shutting down gracefully...",
        "Final totals: 1 messages, 12 bytes received, 12 bytes sent, 1 connections, 0 refused",
    ]


def _two_loops(count: int):
    """The tutorial's experiment: two shells, each running the client ``count`` times."""

    def drive(server):
        with ThreadPoolExecutor(2) as loops:
            runs = [loops.submit(lambda: [echo_once(server) for _ in range(count)]) for _ in "ab"]
            echoes = [echo for run in runs for echo in run.result(timeout=60)]
        assert echoes == [b"Hello, world"] * (2 * count)
        assert eventually(lambda: server.traffic.connections_current == 0)
        return server.snapshot()

    return drive


@pytest.mark.parametrize("variant", variant_names(lambda server: server.counts_exactly))
def test_exact_variants_count_every_message(variant: str) -> None:
    run = run_server(variant, _two_loops(20), work_delay=0.002)

    stats = run.result
    assert stats["messages"] == 40
    assert stats["bytes_received"] == stats["bytes_sent"] == 40 * 12
    assert stats["connections_total"] == 40
    assert stats["connections_current"] == 0
    totals = [int(line.rsplit(" ", 1)[1]) for line in run.lines() if line.startswith("Total ")]
    assert totals == list(range(1, 41)), "totals must print whole and in counting order"


@pytest.mark.parametrize("variant", variant_names(lambda server: not server.counts_exactly))
def test_the_racy_variant_loses_updates(variant: str) -> None:
    run = run_server(variant, _two_loops(20), work_delay=0.05)

    stats = run.result
    assert stats["bytes_received"] == 40 * 12, "every message did arrive"
    assert stats["connections_total"] == 40
    lost = 40 - stats["messages"]
    print(f"{variant}: sent 40, counted {stats['messages']}, lost updates {lost}")
    assert lost > 0, "two overlapping clients must lose increments: the tutorial's race"


def _assert_no_echo_yet(sock: socket.socket) -> None:
    """Nothing comes back for a moment: the server has not taken this connection up. (A check
    that something does not happen can only wait a while; the echo that must follow has the
    full deadline again.)"""
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(100)
    sock.settimeout(DEADLINE)


def test_simple_serves_one_connection_at_a_time() -> None:
    def drive(server):
        with connect(server) as first:
            first.sendall(b"Hello\n")
            assert recv_exactly(first, 6) == b"Hello\n"
            second = connect(server)
            second.sendall(b"Hello, world")
            _assert_no_echo_yet(second)  # the server is still busy in the first client's loop
            first.sendall(b"Still here!\n")
            assert recv_exactly(first, 12) == b"Still here!\n"
        with second:
            return recv_exactly(second, 12)  # served once the first client left

    assert run_server("simple", drive).result == b"Hello, world"


def test_pool_serves_at_most_its_workers_at_once() -> None:
    assert registry()["pool"].serves_at_once == 10, "the tutorial's pool has 10 workers"

    def drive(server):
        held = [connect(server) for _ in range(4)]
        for sock in held:  # an echo proves a worker is serving that connection
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
        waiting = connect(server)
        waiting.sendall(b"Hello, world")
        _assert_no_echo_yet(waiting)
        held.pop().close()  # frees a worker
        echo = recv_exactly(waiting, 12)
        for sock in [*held, waiting]:
            sock.close()
        return echo

    assert run_server("pool", drive, workers=4).result == b"Hello, world"


def test_condition_announces_the_milestone_once_right_after_it() -> None:
    run = run_server("condition", _two_loops(10), work_delay=0.002, milestone=7)

    lines = run.lines()
    announcement = "*** 7 messages received ***"
    assert lines.count(announcement) == 1
    totals_and_announcement = [
        line for line in lines if line.startswith("Total ") or line == announcement
    ]
    position = totals_and_announcement.index(announcement)
    assert totals_and_announcement[position - 1] == "Total messages received: 7"
    assert totals_and_announcement[position + 1] == "Total messages received: 8"


def test_quiet_drops_only_the_per_message_lines(variant: str) -> None:
    run = run_server(variant, lambda server: echo_once(server), work_delay=0, quiet=True)

    assert not [line for line in run.lines() if line.startswith(("Received:", "Total "))]
    assert any(line.startswith("Received new connection from  ") for line in run.lines())
    assert run.lines()[-1].startswith("Final totals: 1 messages")


def test_shutdown_is_prompt_with_clients_still_connected(variant: str) -> None:
    def drive(server):
        busy = connect(server)  # first, so that even simple is serving it
        busy.sendall(b"ping")
        assert recv_exactly(busy, 4) == b"ping"
        idle = [connect(server) for _ in range(3)]
        return [busy, *idle]

    run = run_server(variant, drive, work_delay=0)

    assert run.shutdown_seconds < 1.0, f"took {run.shutdown_seconds:.2f} s to stop"
    assert "Shutting down gracefully..." in run.lines()
    for sock in run.result:
        with sock:
            assert closed_by_server(sock)


def test_log_lines_never_splice_under_concurrent_clients() -> None:
    def drive(server):
        def client():
            for _ in range(10):
                assert echo_once(server, b"x" * 50) == b"x" * 50

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)

    run = run_server("threads", drive, work_delay=0)
    per_message = [line for line in run.lines() if line.startswith(("Received:", "Total "))]
    assert len(per_message) == 160
    pattern = re.compile(rf"Received: b'{'x' * 50}'|Total messages received: \d+")
    assert all(pattern.fullmatch(line) for line in per_message)


@pytest.mark.parametrize("variant", variant_names(lambda server: server.serves_at_once is None))
def test_connection_limit_refuses_newcomers_and_keeps_serving(variant: str) -> None:
    def drive(server):
        held = [connect(server) for _ in range(2)]
        for sock in held:
            sock.sendall(b"a")
            assert recv_exactly(sock, 1) == b"a"
        with connect(server) as refused:
            assert closed_by_server(refused)
        held.pop().close()
        assert eventually(lambda: server.traffic.connections_current == 1)
        echo = echo_once(server)
        held[0].close()
        return echo

    run = run_server(variant, drive, work_delay=0, max_connections=2)
    assert run.result == b"Hello, world"
    assert any("Refusing connection from" in line and "limit 2" in line for line in run.lines())
    assert run.server.traffic.connections_refused == 1


def test_stats_endpoint_answers_json_metrics_and_health() -> None:
    import json
    import urllib.request

    def drive(server):
        echo_once(server)
        base = f"http://127.0.0.1:{server.stats.port}"
        stats = json.loads(urllib.request.urlopen(f"{base}/stats", timeout=DEADLINE).read())
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=DEADLINE).read().decode()
        health = urllib.request.urlopen(f"{base}/health", timeout=DEADLINE).status
        return stats, metrics, health

    run = run_server("poll", drive, stats_port=0)
    stats, metrics, health = run.result
    assert health == 200
    assert stats["variant"] == "poll"
    assert stats["host"] == socket.gethostname()
    assert stats["messages"] == 1
    assert stats["bytes_received"] == stats["bytes_sent"] == 12
    assert stats["connections_total"] == 1
    assert 'echolab_messages_total{variant="poll"} 1' in metrics.splitlines()


@pytest.mark.parametrize("quiet", [False, True])
def test_stats_say_whether_the_server_prints_a_line_per_message(quiet: bool) -> None:
    """loadgen reads this to warn that the printing, not the model, bounds a sustained run."""
    run = run_server("poll", lambda server: server.snapshot(), quiet=quiet)
    assert run.result["log_per_message"] is not quiet


def test_a_socket_error_ends_only_that_connection(variant: str) -> None:
    def drive(server):
        doomed = connect(server)
        doomed.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        doomed.sendall(b"x" * 100_000)
        doomed.close()  # RST with its echo still pending
        return echo_once(server)

    assert run_server(variant, drive, work_delay=0).result == b"Hello, world"


def test_sigterm_is_never_missed_while_other_threads_run() -> None:
    """CPython may leave a signal unhandled while a non-main thread runs and the main thread
    sits in accept(); it happened about once in a few hundred stops before the signal watcher.
    Hundreds of stops in a row, each right after a handler thread's echo, must all complete."""
    for _ in range(300):
        run = run_server("threads", lambda server: echo_once(server), work_delay=0, quiet=True)
        assert run.shutdown_seconds < 1.0
