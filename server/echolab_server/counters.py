"""What the server counts: the tutorial's message counter, and exact traffic totals.

Both keep their counts in ``cells``, a sequence of ints they are given: a list in one process,
memory that every process maps in prefork (see ``EchoServer.make_cells``). The code that counts
is the same either way.
"""

import contextlib
import threading
import time
from collections.abc import MutableSequence
from contextlib import AbstractContextManager
from typing import ClassVar, Protocol, Self, overload

from .log import Log

Cells = MutableSequence[int]


class _Counting(Protocol):
    """A class that keeps its counts in ``cells``, one per name in ``FIELDS``."""

    FIELDS: ClassVar[tuple[str, ...]]
    cells: Cells


class _Cell:
    """An int attribute kept in its object's ``cells``, at the place its name has in FIELDS."""

    def __set_name__(self, owner: type[_Counting], name: str) -> None:
        self.index = owner.FIELDS.index(name)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: _Counting, owner: type | None = None) -> int: ...
    def __get__(self, obj: _Counting | None, owner: type | None = None) -> Self | int:
        return self if obj is None else obj.cells[self.index]

    def __set__(self, obj: _Counting, value: int) -> None:
        obj.cells[self.index] = value


class MessageCounter:
    """The tutorial's ``messageCounter``: the total, the simulated work, the total's line.

    How the total is updated is a lesson, so threads, lock and condition write their update
    out in their own modules (``count_message``), from the parts here. Every other variant
    counts with ``add_one``: the same read-work-write, made one atomic step by ``guard`` (a
    lock, or none where one thread does all the counting).
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("value",)
    value = _Cell()

    def __init__(
        self,
        log: Log,
        cells: Cells | None = None,
        *,
        work_delay: float = 0.0,
        guard: AbstractContextManager[object] | None = None,
    ) -> None:
        self._log = log
        self.cells = cells if cells is not None else [0] * len(self.FIELDS)
        self._work_delay = work_delay
        self._guard = guard if guard is not None else contextlib.nullcontext()

    def simulate_work(self) -> None:
        """The tutorial's ``threading.Event().wait(0.1)``: "simulate some network latency"."""
        if self._work_delay:
            time.sleep(self._work_delay)

    def counted(self, total: int) -> None:
        """Print a new total; with a lock, called inside it, so the lines come out in order."""
        self._log.per_message(f"Total messages received: {total}")

    def add_one(self) -> None:
        with self._guard:
            next_count = self.value + 1
            self.simulate_work()
            self.value = next_count
            self.counted(next_count)


class Traffic:
    """Exact totals of bytes and connections, shared by every variant (always under a lock)."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "bytes_received",
        "bytes_sent",
        "connections_total",
        "connections_current",
        "connections_refused",
    )
    bytes_received = _Cell()
    bytes_sent = _Cell()
    connections_total = _Cell()
    connections_current = _Cell()
    connections_refused = _Cell()

    def __init__(
        self, cells: Cells | None = None, lock: AbstractContextManager[object] | None = None
    ) -> None:
        self.cells = cells if cells is not None else [0] * len(self.FIELDS)
        self.lock = lock if lock is not None else threading.Lock()

    def received(self, nbytes: int) -> None:
        with self.lock:
            self.bytes_received += nbytes

    def sent(self, nbytes: int) -> None:
        with self.lock:
            self.bytes_sent += nbytes

    def opened(self) -> None:
        with self.lock:
            self.connections_total += 1
            self.connections_current += 1

    def closed(self) -> None:
        with self.lock:
            self.connections_current -= 1

    def refused(self) -> None:
        with self.lock:
            self.connections_refused += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(zip(self.FIELDS, self.cells, strict=True))
