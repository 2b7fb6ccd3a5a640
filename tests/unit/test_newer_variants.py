"""The variants beyond the tutorial: what each adds to the shared contract."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import echo_once, run_server
from echolab_server.variants import protocol

SERVER = Path(__file__).resolve().parents[2] / "server"


def test_uvloop_missing_is_one_line_and_exit_1() -> None:
    hide_uvloop = (
        "import sys; sys.modules['uvloop'] = None; "  # makes `import uvloop` fail
        "from echolab_server.__main__ import main; sys.exit(main())"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide_uvloop, "--variant", "uvloop"],
        env={**os.environ, "PYTHONPATH": str(SERVER)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("echolab_server: the uvloop variant needs the uvloop package")
    assert "server/fetch-wheels" in lines[0]


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
