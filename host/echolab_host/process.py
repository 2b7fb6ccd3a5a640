"""A process started in a running container through the engine (``docker exec``), with the
deadlines the SDK's exec lacks."""

import queue
import shlex
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from docker.errors import DockerException
from echolab_common.wait import until
from requests.exceptions import RequestException

from .engine import API_TIMEOUT_S, DockerError, engine, speaking


class Exec:
    """``argv`` in ``container``, its stdout read line by line as it comes.

    The engine's output stream has no deadline of its own (a silent process blocks a read for
    ever), so a thread reads it into a queue and every read here has one. With ``stderr``, what
    the process writes there passes on to ours (a long-running one's complaints); without, it
    is dropped.
    """

    def __init__(self, container: str, argv: Sequence[str], stderr: bool = False) -> None:
        self.what = f"{shlex.join(argv[:5])} ... in {container}"
        self.api = engine().api
        with speaking(self.what):
            self.id = self.api.exec_create(container, list(argv), stderr=stderr)["Id"]
            frames = self.api.exec_start(self.id, stream=True, demux=True)
        self.lines: queue.Queue[str | None] = queue.Queue()  # None: the output has ended
        threading.Thread(target=self._read, args=(frames,), daemon=True).start()

    def _read(self, frames: Iterator[tuple[bytes | None, bytes | None]]) -> None:
        pending = b""
        try:
            for out, err in frames:
                if err:
                    sys.stderr.buffer.write(err)
                    sys.stderr.flush()
                *whole, pending = (pending + (out or b"")).split(b"\n")
                for line in whole:
                    self.lines.put(line.decode(errors="replace") + "\n")
        except (DockerException, RequestException, OSError):
            pass  # the engine let go of the stream: for the reader, the output has ended
        finally:
            if pending:
                self.lines.put(pending.decode(errors="replace"))
            self.lines.put(None)

    def readline(self, seconds: float) -> str:
        """The next line it prints ("" once it has ended); DockerError after ``seconds``."""
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            raise DockerError(f"{self.what}: printed no line within {seconds:g} s") from None
        if line is None:
            self.lines.put(None)  # the end stays the end for the next reader
        return line or ""

    def output(self, seconds: float) -> str:
        """Everything it prints from here on, once it has ended; DockerError after ``seconds``."""
        ends = time.monotonic() + seconds
        lines = []
        while line := self.readline(max(ends - time.monotonic(), 0)):
            lines.append(line)
        return "".join(lines)

    def state(self) -> dict[str, Any]:
        """The engine's view: ``Running``, ``ExitCode`` (None while it runs), ``Pid``."""
        with speaking(self.what):
            return dict(self.api.exec_inspect(self.id))

    def exit_code(self, seconds: float = API_TIMEOUT_S) -> int:
        """Its exit code, once the engine has seen it end (a moment after its output ends)."""

        def ended() -> dict[str, Any]:
            state = self.state()
            return {} if state["Running"] else state  # {}: not yet

        return int(until(ended, f"{self.what} ending", seconds, interval=0.05)["ExitCode"])


def exec_output(container: str, argv: Sequence[str], check: bool = True) -> str:
    """What a short command (a counter read, a version) printed in a running container; with
    ``check``, a non-zero exit is a DockerError."""
    process = Exec(container, argv)
    out = process.output(API_TIMEOUT_S)
    if check and (code := process.exit_code()) != 0:
        raise DockerError(f"{process.what} failed (exit {code})")
    return out
