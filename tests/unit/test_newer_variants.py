"""The variants beyond the tutorial: what each adds to the shared contract."""

import io
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from echolab_server import processes
from echolab_server.__main__ import main
from echolab_server.log import Log
from echolab_server.server import ServerFailed
from echolab_server.settings import Settings
from echolab_server.variants import prefork, protocol, server_class

from .inprocess import (
    DEADLINE,
    START_DEADLINE,
    connect,
    echo_once,
    eventually,
    recv_exactly,
    run_server,
)

SERVER = Path(__file__).resolve().parents[2] / "server"


def test_uvloop_missing_is_one_line_and_exit_1() -> None:
    hide_uvloop = (
        "import sys; sys.modules['uvloop'] = None; "  # makes `import uvloop` fail
        "from echolab_server.__main__ import main; sys.exit(main())"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide_uvloop, "--variant", "uvloop"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("echolab_server: the uvloop variant needs the uvloop package")
    assert "make wheels" in lines[0]


def test_uvloop_runs_on_uvloops_loop() -> None:
    def drive(server):
        assert echo_once(server) == b"Hello, world"  # the loop is running by now
        return type(server._loop).__module__

    assert run_server("uvloop", drive).result.startswith("uvloop")


def test_protocol_runs_on_uvloop_where_installed_and_says_so() -> None:
    def drive(server):
        assert echo_once(server) == b"Hello, world"
        return type(server._loop).__module__, server.snapshot()["event_loop"]

    assert run_server("protocol", drive).result == ("uvloop", "uvloop")


def test_protocol_falls_back_to_asyncios_loop_without_uvloop(monkeypatch) -> None:
    """Without uvloop the variant still serves, on asyncio's loop, and its stats say so."""
    monkeypatch.setattr(protocol, "uvloop", None)

    def drive(server):
        assert echo_once(server) == b"Hello, world"
        return type(server._loop).__module__, server.snapshot()["event_loop"]

    module, named = run_server("protocol", drive).result
    assert module.startswith("asyncio") and named == "asyncio"


def test_protocol_counts_pieces_of_at_most_recv_size_bytes() -> None:
    """A counted message is at most --recv-size bytes, as in every variant."""
    message = bytes(range(64))

    def drive(server):
        return echo_once(server, message), server.messages.value

    run = run_server("protocol", drive, recv_size=16, work_delay=0, quiet=True)
    echo, messages = run.result
    assert echo == message
    assert messages >= len(message) // 16


def test_prefork_replaces_a_killed_worker_and_keeps_exact_totals() -> None:
    """kill -9 of a worker: the parent logs it, starts another, and serves on; the connections
    the dead one held leave the open count, and every count stays exact."""

    def drive(server):
        assert echo_once(server) == b"Hello, world"
        held = [connect(server) for _ in range(6)]  # spread over both workers by the kernel
        for sock in held:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
        # Each echo is counted just after it is sent: a worker killed in between loses its count.
        assert eventually(lambda: server.traffic.bytes_sent == 18)
        victim = server.workers[0]
        os.kill(victim.pid, signal.SIGKILL)
        assert eventually(lambda: server.workers[0] is not victim), "no worker replaced it"
        echoes = [echo_once(server) for _ in range(20)]
        for sock in held:
            sock.close()
        assert eventually(lambda: server.traffic.connections_current == 0)
        return victim.pid, echoes

    run = run_server("prefork", drive, processes=2, work_delay=0)
    pid, echoes = run.result
    assert echoes == [b"Hello, world"] * 20
    [death] = [line for line in run.lines() if line.startswith("Worker ")]  # no other worker
    assert death.startswith(f"Worker {pid} killed by SIGKILL, dropping its ")
    assert run.lines()[-1] == (
        "Final totals: 27 messages, 258 bytes received, 258 bytes sent, 27 connections, 0 refused"
    )


def _prefork(**overrides) -> prefork.PreforkServer:
    settings = Settings(variant="prefork", host="127.0.0.1", port=0, stats_port=None)
    return server_class("prefork")(replace(settings, **overrides), Log(io.StringIO()))


def test_prefork_stops_with_an_error_when_workers_keep_dying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "_DEATHS_ALLOWED", 1)
    server = _prefork(processes=1)

    def kill_twice() -> None:
        try:
            assert server.ready.wait(START_DEADLINE)
            victim = server.workers[0]
            os.kill(victim.pid, signal.SIGKILL)
            assert eventually(lambda: server.workers[0] is not victim)
            os.kill(server.workers[0].pid, signal.SIGKILL)
            eventually(lambda: not server.ready.is_set())
        finally:
            server.stop()  # only if the server did not give up by itself: the test fails then

    killer = threading.Thread(target=kill_twice)
    killer.start()
    with pytest.raises(ServerFailed, match=r"workers keep dying \(2 in 60 s, more than 1\)"):
        server.serve_until_signalled()
    killer.join(DEADLINE)
    assert all(worker.exitcode is not None for worker in server.workers)


def test_prefork_start_failure_says_so_and_closes_the_listener_and_stats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "_START_DEADLINE", 0.0)  # no worker can be listening in time
    server = _prefork(processes=2, stats_port=0)
    with pytest.raises(ServerFailed, match=r"prefork: only [01] of 2 workers were listening on"):
        server.serve_until_signalled()
    assert server.listener.fileno() == -1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.stats.port), timeout=DEADLINE).close()
    assert all(worker.exitcode is not None for worker in server.workers)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_prefork_start_failure_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not 'cannot listen on ...': the workers are what failed, and the line says so."""
    monkeypatch.setattr(processes, "_START_DEADLINE", 0.0)
    ports = ["--port", str(_free_port()), "--stats-port", str(_free_port())]
    code = main(["--variant", "prefork", "--host", "127.0.0.1", *ports, "--processes", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("echolab_server: prefork: only "), err
    assert "Starting server" not in out and "Final totals" not in out
