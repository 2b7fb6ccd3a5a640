"""What the server counts: the tutorial's message counter, and exact traffic totals."""

import contextlib
import threading
import time
from contextlib import AbstractContextManager

from .log import Log


class MessageCounter:
    """The tutorial's ``messageCounter``: read, simulated work, write, then print the total.

    The three steps are one atomic update only if ``guard`` makes them so. Without a guard,
    two threads can read the same value and one of the two increments is lost: the race the
    threads variant shows on purpose. Single-threaded variants need no guard at all.

    The total is printed inside the guard, so that with a lock the lines come out in the
    order the messages were counted.
    """

    # Counts start from class defaults, not from assignments in __init__, so that a subclass can
    # keep them elsewhere (prefork: in memory shared by its processes) without resetting them.
    value = 0

    def __init__(
        self,
        log: Log,
        *,
        work_delay: float = 0.0,
        guard: AbstractContextManager[object] | None = None,
    ) -> None:
        self._log = log
        self._work_delay = work_delay
        self._guard = guard if guard is not None else contextlib.nullcontext()

    def add_one(self) -> int:
        with self._guard:
            next_count = self.value + 1
            if self._work_delay:
                # The tutorial's threading.Event().wait(0.1): "simulate some network latency".
                time.sleep(self._work_delay)
            self.value = next_count
            self.counted(next_count)
            return next_count

    def counted(self, total: int) -> None:
        """Report a new total; called inside the guard."""
        self._log.per_message(f"Total messages received: {total}")


class Traffic:
    """Exact totals of bytes and connections, shared by every variant (always under a lock)."""

    bytes_received = 0  # class defaults, as MessageCounter.value
    bytes_sent = 0
    connections_total = 0
    connections_current = 0
    connections_refused = 0

    def __init__(self, lock: AbstractContextManager[object] | None = None) -> None:
        self._lock = lock if lock is not None else threading.Lock()

    def received(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_received += nbytes

    def sent(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_sent += nbytes

    def opened(self) -> None:
        with self._lock:
            self.connections_total += 1
            self.connections_current += 1

    def closed(self) -> None:
        with self._lock:
            self.connections_current -= 1

    def refused(self) -> None:
        with self._lock:
            self.connections_refused += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "bytes_received": self.bytes_received,
                "bytes_sent": self.bytes_sent,
                "connections_total": self.connections_total,
                "connections_current": self.connections_current,
                "connections_refused": self.connections_refused,
            }
