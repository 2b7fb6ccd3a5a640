"""The processes family: a parent that supervises worker processes, and the counts they share.

What prefork needs around its lesson (workers on one port, counting in the same memory) and
what is no lesson itself lives here: allocating that shared memory and its lock, the workers'
log lines, waiting until every worker listens, replacing one that dies, stopping them all.

Workers never print: each sends its lines to the parent through one pipe, as one message per
line under the shared lock, and the parent prints them, so lines never splice and the totals
come out in counting order. On SIGTERM or SIGINT the parent stops the workers (SIGTERM: each
stops as any server does and closes its connections), prints their last lines, reaps them
and prints the summed final totals. Workers are started with ``spawn``: fresh interpreters
that inherit no threads or locks from the parent.

A worker that dies (``kill -9``, a crash) is replaced, as gunicorn's and nginx's masters do:
the parent logs it, takes the connections the dead worker held off the open count (each
worker keeps its own tally for this), and starts a new worker in its place; every other
client goes on being served, and the totals stay exact. Only if workers keep dying (more than
``_DEATHS_ALLOWED`` within ``_DEATH_WINDOW_S`` seconds), or one died holding the shared lock,
does the server stop, with a non-zero exit status.
"""

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import socket
import time
from abc import abstractmethod
from collections import deque
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import RLock, Semaphore

from .counters import MessageCounter, Traffic
from .log import Log
from .server import EchoServer, ServerFailed, ShutdownRequested, stop_on_signals
from .settings import Settings

SPAWN = multiprocessing.get_context("spawn")
_START_DEADLINE = 60.0  # seconds for every worker to be listening (interpreters start slowly)
_STOP_DEADLINE = 2.0  # seconds for the workers to stop before they are killed
_DEATHS_ALLOWED = 5  # worker deaths replaced within _DEATH_WINDOW_S; one more stops the server
_DEATH_WINDOW_S = 60.0
_LOCK_DEADLINE = 2.0  # seconds to take the shared lock after a death: longer, a corpse holds it


class SharedCounts:
    """The whole server's counts, in memory that every process of it maps, and their lock.

    Made once by the parent and handed to every worker it starts: ``cells`` for each counting
    class, and ``open_by_worker``, the connections each worker's slot holds now (what a dead
    worker took with it).
    """

    def __init__(self, workers: int) -> None:
        self.lock = SPAWN.RLock()
        self.cells = {
            counting: SPAWN.RawArray("q", len(counting.FIELDS))
            for counting in (Traffic, MessageCounter)
        }
        self.open_by_worker = SPAWN.RawArray("q", workers)


class RelayedLog(Log):
    """A worker's log: each line goes to the parent as one message, under the shared lock."""

    def __init__(self, pipe: Connection, lock: RLock, *, quiet: bool) -> None:
        super().__init__(quiet=quiet)
        self._pipe = pipe
        self._shared_lock = lock

    def line(self, text: str) -> None:
        with self._shared_lock:
            self._pipe.send_bytes(text.encode())


def run_worker(
    worker_class: type,
    settings: Settings,
    shared: SharedCounts,
    slot: int,
    log_pipe: Connection,
    listening: Semaphore,
) -> None:
    """A worker process's life: build ``worker_class`` in ``slot``, say it is listening, serve
    until SIGTERM, then close every connection, without a word of its own."""
    log = RelayedLog(log_pipe, shared.lock, quiet=settings.quiet)
    worker = worker_class(settings, log, shared, slot)
    with stop_on_signals(worker.stop):
        listening.release()
        try:
            worker.serve()
        except ShutdownRequested:
            pass
        finally:
            worker.listener.close()
            worker.close_connections()


def _ending(process: BaseProcess) -> str:
    """'exited with code 1' or 'killed by SIGKILL'."""
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class WorkerSupervisor(EchoServer):
    """The parent: starts the workers (``start_worker``), relays their lines, serves /stats,
    replaces a worker that dies, and stops and reaps them all at the end.

    A subclass provides ``shared`` (a SharedCounts with a slot per worker) and
    ``start_worker``; the workers get ``worker_settings``, ``log_out`` and ``listening``.
    """

    family = "processes"

    def __init__(self, settings: Settings, log: Log | None = None) -> None:
        super().__init__(settings, log)
        self._log_in, self.log_out = SPAWN.Pipe(duplex=False)
        self._wake_in, self._wake_out = socket.socketpair()
        # Each worker releases it once listening (start() waits for all). Kept for the server's
        # life: a semaphore's name goes with the object, and a worker starts by opening it.
        self.listening = SPAWN.Semaphore(0)
        # The workers listen on the port the parent has bound (and reserved: it never listens).
        self.worker_settings = dataclasses.replace(settings, port=self.port, stats_port=None)
        self.workers: list[BaseProcess] = []  # the one in each slot, from start() on
        self._deaths: deque[float] = deque()

    @property
    @abstractmethod
    def shared(self) -> SharedCounts:
        """The counts every process maps, with a slot per worker."""

    @abstractmethod
    def start_worker(self, slot: int) -> BaseProcess:
        """Start the worker process for ``slot`` and return it."""

    def processes(self) -> list[int]:
        """The parent and its started workers (one that ended is skipped where it is counted)."""
        return [os.getpid(), *(worker.pid for worker in self.workers if worker.pid is not None)]

    def start(self) -> None:
        """Start every worker and wait until each is listening; fail if one dies first, or if
        they are not all listening by the deadline."""
        for slot in range(len(self.shared.open_by_worker)):
            self.workers.append(self.start_worker(slot))
        deadline = time.monotonic() + _START_DEADLINE
        for started in range(len(self.workers)):
            while not self.listening.acquire(timeout=0.05):
                dead = [worker for worker in self.workers if worker.exitcode is not None]
                if dead or time.monotonic() > deadline:
                    why = _ending(dead[0]) if dead else f"within {_START_DEADLINE:.0f} s"
                    raise ServerFailed(
                        f"{self.variant}: only {started} of {len(self.workers)} workers were "
                        f"listening on port {self.port} ({why})"
                    )

    def serve(self) -> None:
        """Relay the workers' lines and replace any that dies, until stop()."""
        while True:
            sentinels = {worker.sentinel: slot for slot, worker in enumerate(self.workers)}
            for ready in wait([self._wake_in, self._log_in, *sentinels]):
                if ready is self._log_in:
                    self._relay(timeout=0)
                elif ready is self._wake_in:
                    self._relay(timeout=0)  # what happened before the signal is printed first
                    raise ShutdownRequested
                elif not self.stopping:  # stopping: the workers may have had the signal too
                    assert isinstance(ready, int)  # neither pipe: a worker's sentinel
                    self._replace(sentinels[ready])

    def _replace(self, slot: int) -> None:
        """A worker died: count its connections closed, and start another in its slot."""
        dead = self.workers[slot]
        dead.join()
        self._relay(timeout=0)  # the lines it sent before it died come first
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths[0] < now - _DEATH_WINDOW_S:
            self._deaths.popleft()
        deadline = now + _LOCK_DEADLINE
        while not self.shared.lock.acquire(timeout=0.05):
            self._relay(timeout=0)  # a worker holding the lock may be waiting for the pipe
            if time.monotonic() > deadline:
                raise ServerFailed(
                    f"{self.variant}: worker {dead.pid} {_ending(dead)} holding the shared lock; "
                    "the totals can no longer be kept"
                )
        try:
            lost = self.shared.open_by_worker[slot]
            self.traffic.connections_current -= lost
            self.shared.open_by_worker[slot] = 0
        finally:
            self.shared.lock.release()
        self.log.line(
            f"Worker {dead.pid} {_ending(dead)}, dropping its {lost} connections; starting another"
        )
        if len(self._deaths) > _DEATHS_ALLOWED:
            raise ServerFailed(
                f"{self.variant}: workers keep dying ({len(self._deaths)} in "
                f"{_DEATH_WINDOW_S:.0f} s, more than {_DEATHS_ALLOWED}); stopping"
            )
        self.workers[slot] = self.start_worker(slot)

    def stop(self) -> None:
        """Wake serve(); safe from any thread."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self._wake_out.send(b"\0")

    def close_connections(self) -> None:
        """The workers hold the connections: stop them (each closes its own) and reap them."""
        self._stop_workers()
        for end in (self._log_in, self._wake_in, self._wake_out):
            end.close()

    def _stop_workers(self) -> None:
        self.log_out.close()  # no worker starts now: EOF comes once every started one has ended
        for worker in self.workers:
            if worker.exitcode is None:
                worker.terminate()  # SIGTERM: the worker stops as a server does
        deadline = time.monotonic() + _STOP_DEADLINE
        self._relay(timeout=_STOP_DEADLINE)  # their last lines, until every worker has ended
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.exitcode is None:
                worker.kill()
                worker.join()

    def _relay(self, timeout: float) -> None:
        """Print the lines the workers have sent; with a timeout, wait for more until EOF."""
        deadline = time.monotonic() + timeout
        while self._log_in.poll(max(0.0, deadline - time.monotonic())):
            try:
                self.log.line(self._log_in.recv_bytes().decode())
            except EOFError:  # every worker has ended
                return
