"""The variants beyond the tutorial: what each adds to the shared contract."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import echo_once, run_server

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
