"""``docker compose``, which has no SDK: the one place the host side runs a Docker command line.

A failure is one line (the command and its last words), never a traceback.
"""

import json
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import DockerError

ROOT = Path(__file__).resolve().parents[2]  # compose.yaml's folder, the repository
DEADLINE_S = 120.0  # seconds any one command may take unless told otherwise


class ComposeError(DockerError):
    """A command failed or ran past its deadline; the message is one line."""


class ComposeTimeout(ComposeError):
    """A command ran past its deadline (a caller may clean up after it: a named container)."""


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEADLINE_S,
    stdin: str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """``argv``'s result, text; ``env`` adds to this process's environment. With ``check``, a
    non-zero exit is a ComposeError naming the command and its last line."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
        )
    except FileNotFoundError:
        raise ComposeError(
            f"{argv[0]} not found: `make setup` installs Docker and Compose v2"
        ) from None
    except subprocess.TimeoutExpired:
        raise ComposeTimeout(f"no answer in {timeout:g} s: {shlex.join(argv[:8])} ...") from None
    if check and done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise ComposeError(f"{shlex.join(argv[:8])} ... failed: {last[0]}")
    return done


@dataclass(frozen=True)
class Compose:
    """One compose project of the lab's compose.yaml (``project`` None: compose's own choice,
    $COMPOSE_PROJECT_NAME or the folder's name), with extra files, profiles and variables."""

    project: str | None = None
    files: Sequence[str | Path] = ()
    profiles: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    root: Path = ROOT

    def command(self, *args: str) -> list[str]:
        argv = ["docker", "compose"]
        if self.project:
            argv += ["-p", self.project]
        if self.files:
            argv += ["-f", "compose.yaml"]
            for path in self.files:
                argv += ["-f", str(path)]
        for profile in self.profiles:
            argv += ["--profile", profile]
        return [*argv, *args]

    def run(
        self,
        *args: str,
        timeout: float = DEADLINE_S,
        stdin: str | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose ... args``; ``env`` adds variables compose.yaml interpolates."""
        return run(
            self.command(*args),
            timeout=timeout,
            stdin=stdin,
            check=check,
            env={**self.env, **(env or {})},
            cwd=self.root,
        )

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        """``docker compose ... args`` in the background (pipes and the like from ``kwargs``)."""
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env={**os.environ, **self.env},
            text=True,
            **kwargs,
        )

    def config(self, *args: str) -> dict[str, Any]:
        """compose.yaml as Compose reads it: anchors merged, variables filled in, as JSON."""
        return json.loads(self.run(*args, "config", "--format", "json").stdout)
