"""One server under grading: a student's file or a lab variant, in a container compose starts.

Everything goes through compose.yaml (services ``student``, ``server-<variant>``, ``grade-probe``,
``grade-netcat``), so the hardening is written once, there. The grader only names containers:
``docker compose run -d --name`` for the server, and probes that join its network namespace.
Compose goes through echolab_host.Compose; the containers it made, through the Docker SDK.
"""

import contextlib
import json
import re
import select
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container
from echolab_host import Compose, ComposeTimeout, engine, speaking
from requests.exceptions import RequestException

ROOT = Path(__file__).resolve().parents[2]
# The tutorial prints `Total messages received: N`; a colon-less or spaced variant is the same line.
TOTAL = re.compile(r"^Total messages received:?\s*(\d+)\s*$", re.M)
LOG_LAG = 10.0  # seconds a line the server printed may take to reach `docker logs` (busy: 5+)
# The lines of a server's log the grader reads at most: a checked server prints a few hundred, a
# flooding one millions, which the grader must not spend the machine's time reading again and again.
LOG_TAIL = 5000
POLL_EXIT = 5.0  # seconds between looks at whether a server under a long check is still running
QUIET = 2.0  # seconds to wait for stderr from a server that may have written nothing there
SHOWN = 12  # the last lines it printed, shown beside a check it failed (its traceback)
TRACEBACK, IN_THREAD = "Traceback (most recent call last):", "Exception in thread"
WHERE = re.compile(r'File "/student/server\.py", line (\d+)')


def last_total(log: str) -> int | None:
    """The last ``Total messages received: N`` in a log, as the tutorial reads it."""
    totals = TOTAL.findall(log)
    return int(totals[-1]) if totals else None


# Compose creates the project's network on the first run; two first runs at once race to create
# it and one fails. So a project's first server starts alone, and the others wait for it.
STARTING = threading.Lock()
NETWORKS: set[str] = set()  # projects whose network a successful start has made


class ProbeTimeout(Exception):
    """A probe ran past its deadline: the server hung, or the machine is far too busy."""


@dataclass
class Target:
    """``name`` is what the report calls it; ``service`` and ``env`` say how compose runs it."""

    name: str
    service: str
    project: str
    number: int  # its place in this run: container names stay unique whatever the names are
    env: dict[str, str] = field(default_factory=dict)
    session: subprocess.Popen[str] | None = field(default=None, repr=False)

    @classmethod
    def student(cls, name: str, path: Path, project: str, number: int) -> "Target":
        return cls(name, "student", project, number, {"ECHOLAB_STUDENT": str(path.resolve())})

    @classmethod
    def variant(cls, variant: str, project: str, number: int) -> "Target":
        return cls(variant, f"server-{variant}", project, number)

    @property
    def container(self) -> str:
        slug = re.sub(r"[^a-zA-Z0-9_.-]", "-", self.name)[:40]
        return f"{self.project}-{self.number:02d}-{slug}"

    def compose(self, **env: str) -> Compose:
        """Compose on the grader's project, with the target's variables and ``env``."""
        return Compose(self.project, env={**self.env, **env})

    def found(self) -> Container | None:
        """The server's container as the engine sees it now; None once it is gone."""
        with speaking(f"container {self.container}"), contextlib.suppress(NotFound):
            return engine().containers.get(self.container)
        return None

    def start(self) -> str | None:
        """Start the server; None, or why compose could not start it."""
        self.remove()
        run = ("run", "--detach", "--no-deps", "--name", self.container, self.service)
        with STARTING:
            done = None
            if self.project not in NETWORKS:
                done = self.compose().run(*run, timeout=120, check=False)
            if done is not None and done.returncode == 0:
                NETWORKS.add(self.project)
        done = done or self.compose().run(*run, timeout=120, check=False)
        return None if done.returncode == 0 else last_line(done.stderr)

    def restart(self) -> None:
        """Start the server's container again; its probe must rejoin the new namespace."""
        self.close_session()
        # A refusal shows as before: the server is not running at the next check.
        with contextlib.suppress(APIError):
            if container := self.found():
                container.start()

    def state(self) -> dict[str, Any]:
        container = self.found()
        return container.attrs["State"] if container else {}

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def exited(self) -> str:
        """How the server ended: its exit code, its last log line, and the line of its file that
        the traceback points at (a SyntaxError's, say)."""
        state = self.state()
        code = state.get("ExitCode")
        if state.get("OOMKilled"):
            return f"was killed (code {code}): out of memory, past its {self.memory()}"
        log = "\n".join(self.settled("both"))
        where = WHERE.findall(log)
        at = f" (server.py, line {where[-1]})" if where else ""
        return f"exited with code {code}: {last_line(log) or '(no output)'}{at}"

    def memory(self) -> str:
        container = self.found()
        return f"{(container.attrs['HostConfig']['Memory'] if container else 0) >> 20} MiB"

    def logs(self, stream: str = "both", since: float | None = None) -> str:
        """What the server printed since it last started (a restart begins a new count), or
        since ``since`` (a Unix time); its last LOG_TAIL lines at most, stdout then stderr."""
        container = self.found()
        if container is None:
            return ""
        started = container.attrs["State"].get("StartedAt")
        since = since or (unix_time(started) if started else 0.0)
        streams = {"stdout": ("stdout",), "stderr": ("stderr",), "both": ("stdout", "stderr")}
        with speaking(f"the log of {self.container}"):
            return "".join(
                container.logs(
                    stdout=name == "stdout",
                    stderr=name == "stderr",
                    tail=LOG_TAIL,
                    since=since if since > 0 else None,  # a container never started: all
                ).decode(errors="replace")
                for name in streams[stream]
            )

    def settled(self, stream: str, since: float | None = None) -> list[str]:
        """The non-blank lines of ``stream`` (as ``logs``), once they have settled: a line
        reaches `docker logs` a moment after the server wrote it, even after the server has
        exited. So wait until the last line is not inside a traceback (LOG_LAG at most), or
        QUIET seconds if nothing comes at all."""
        started = time.monotonic()
        while True:
            lines = [line.rstrip() for line in self.logs(stream, since).splitlines()]
            lines = [line for line in lines if line.strip()]
            waited = time.monotonic() - started
            if whole(lines) or waited > LOG_LAG or (not lines and waited > QUIET):
                return lines
            time.sleep(0.1)

    def printed(self, since: float) -> list[str]:
        """What the server wrote to stderr since ``since`` (a Unix time), where Python puts a
        traceback: from the last traceback's first line, SHOWN lines at most (the last ones)."""
        lines = self.settled("stderr", since)
        starts = [n for n, line in enumerate(lines) if line.startswith(TRACEBACK)]
        start = starts[-1] if starts else 0
        if start and lines[start - 1].startswith(IN_THREAD):  # whose traceback: the thread's
            start -= 1
        return lines[start:][-SHOWN:]

    def stdout_once(self, arrived: Callable[[str], bool]) -> str:
        """What the server printed, once ``arrived`` holds for it or LOG_LAG seconds have passed.

        Docker copies a container's output to its log a moment after the server writes it, so the
        lines for an echo just received may not be there yet; a busy machine makes it longer.
        """
        ends = time.monotonic() + LOG_LAG
        while not arrived(log := self.logs("stdout")) and time.monotonic() < ends:
            time.sleep(0.1)
        return log

    @property
    def prober(self) -> str:
        return f"{self.container}-probe"

    def probe(self, check: str, deadline: float) -> dict:
        """Run one of probe.py's checks in the server's network namespace."""
        if not self.running():
            return {"passed": False, "saw": f"the server was not running: it {self.exited()}"}
        session = self.session = self.session or self.open_session()
        assert session.stdin and session.stdout, "open_session gives it both pipes"
        session.stdin.write(check + "\n")
        session.stdin.flush()
        ends = time.monotonic() + deadline
        while not (ready := select.select([session.stdout], [], [], POLL_EXIT)[0]):
            if time.monotonic() > ends:
                break
            if not self.running():  # no need to wait out the deadline of a server that is gone
                self.close_session()
                return {"passed": False, "saw": f"the server ended meanwhile: it {self.exited()}"}
        line = session.stdout.readline() if ready else ""
        if not line:
            self.close_session()
            if not ready:
                raise ProbeTimeout(f"no result within {deadline:g} s")
            return {"passed": False, "saw": "the probe ended without a result"}
        return json.loads(line)

    def open_session(self) -> subprocess.Popen[str]:
        """The probe container in the server's namespace, running ``probe --serve``: one check
        a line on its stdin, one result a line on its stdout."""
        return self.compose(ECHOLAB_GRADE_TARGET=self.container).popen(
            *("run", "--rm", "-T", "--no-deps", "--name", self.prober, "grade-probe", "--serve"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def close_session(self) -> None:
        """End the probe (its container too): after a hang, or when the server restarts."""
        self.discard(self.prober)
        if self.session is not None:
            self.session.kill()
            self.session.wait()
            self.session = None

    def netcat(self, text: str, deadline: float) -> subprocess.CompletedProcess[str]:
        """``nc -N 127.0.0.1 12345`` in the lab's netcat image, in the server's namespace."""
        name = f"{self.container}-nc"
        nc = ("run", "--rm", "-T", "--name", name, "grade-netcat", "-N", "127.0.0.1", "12345")
        try:
            return self.compose(ECHOLAB_GRADE_TARGET=self.container).run(
                *nc, timeout=deadline, stdin=text, check=False
            )
        except ComposeTimeout:
            self.discard(name)
            raise ProbeTimeout(f"nc got no whole echo and EOF within {deadline:g} s") from None

    def terminate(self, within: float) -> tuple[bool, str]:
        """Send SIGTERM: whether the server ended within ``within`` seconds, and what it did."""
        container = self.found()
        if container is None:
            return False, "the server's container was gone"
        with speaking(f"SIGTERM to {self.container}"):
            container.kill(signal="SIGTERM")
        # The engine has delivered the signal when the call returns; an engine slow to answer
        # on a busy machine must not count against the server.
        sent = time.time()
        code = self.wait_exit(within + 5)
        if code is None:
            return False, f"still running {within + 5:g} s after SIGTERM"
        took = unix_time(self.state()["FinishedAt"]) - sent
        return took <= within, f"ended {max(took, 0):.1f} s after SIGTERM, exit code {code}"

    def wait_exit(self, within: float) -> int | None:
        """Until the container has exited, or ``within`` seconds have passed: its exit code,
        None if it still runs."""
        container = self.found()
        if container is None:
            return None
        try:
            return int(container.wait(timeout=within)["StatusCode"])
        except (RequestException, APIError):  # no answer by the deadline, or removed meanwhile
            return None

    def remove(self) -> None:
        self.close_session()
        self.discard(self.container)

    @staticmethod
    def discard(name: str) -> None:
        """Remove a container, running or not, if it is there (``docker rm -f``)."""
        with contextlib.suppress(APIError):
            engine().containers.get(name).remove(force=True)


def unix_time(stamp: str) -> float:
    """An engine's time stamp (RFC 3339, nanoseconds) as a Unix time, to the microsecond below."""
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def whole(lines: list[str]) -> bool:
    """Whether stderr ends in a finished line of its own: not inside a traceback (whose lines
    after the first are indented, until the exception's own line)."""
    return bool(lines) and not lines[-1].startswith((" ", "\t", TRACEBACK, IN_THREAD))


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
