"""Log lines as the tutorial prints them, each written in one piece and flushed at once."""

import sys
import threading
from typing import TextIO


class Log:
    """Writes whole lines under a lock.

    A bare ``print(a, b)`` writes its parts separately, so two threads printing at once can
    splice their lines ("Total messages received: 3" + "7" reads as a wrong total). One write
    per line, under one lock, makes every line arrive whole; the flush makes it visible in
    ``docker compose logs`` as it happens.
    """

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()
        self.quiet = quiet

    def line(self, text: str) -> None:
        """Write a line that is always shown: connections, totals at the end, shutdown."""
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def per_message(self, text: str) -> None:
        """Write a line printed for every message, which ``quiet`` drops (benchmarks need that)."""
        if not self.quiet:
            self.line(text)
