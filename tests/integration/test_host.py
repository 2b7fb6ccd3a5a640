"""echolab_host against the real engine: it answers, and an engine that is not there is one line
from the tools that use it, never a traceback."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from echolab_host import engine

from .lab import ROOT


def test_the_engine_answers() -> None:
    assert engine().ping()
    assert engine().version()["Version"]


def test_no_engine_is_one_line_from_the_bench(tmp_path: Path) -> None:
    argv = ["--quick", "--variants", "simple", "--no-c", "--project", "echolab-test-no-engine"]
    done = subprocess.run(
        [sys.executable, "-m", "echolab_bench", *argv, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:9"},  # the discard port: refused
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("bench: no Docker engine reachable: "), done.stderr
    assert not Path(tempfile.gettempdir(), f"{argv[-1]}-override.yaml").exists(), "left behind"
