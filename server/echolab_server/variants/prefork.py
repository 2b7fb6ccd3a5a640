"""prefork: N worker processes on one port (SO_REUSEPORT), each an epoll event loop.

One Python process runs Python code on one core at a time (the GIL), whatever its model. To
use every core, run several processes: the parent starts ``--processes`` workers (default one
per core it may run on), and each opens its own listening socket on the same port with
``SO_REUSEPORT``; the kernel spreads new connections over them by a hash of the addresses.
Each worker is the epoll event loop (``eventloop.EventLoopServer``), unchanged.

Totals stay exact across processes through shared memory: every process counts in the same
arrays (``multiprocessing.RawArray``, handed out by the core's ``make_cells`` hook), under one
process-shared lock (``make_lock``). The core's counting code runs unchanged on them: so
``Total messages received: N`` counts for the whole server, ``/stats`` (served by the parent)
reads the live sums, and the connection limit holds for the whole server too (a worker checks
and counts a newcomer under the lock). The price is that lock, taken a few times per message
by every worker: the part of the work that does not get faster with more cores.

Workers never print: each sends its lines to the parent through one pipe, as one message per
line under the same lock, and the parent prints them, so lines never splice and the totals
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
import functools
import multiprocessing
import os
import signal
import socket
import time
from collections import deque
from multiprocessing.connection import Connection, wait

from ..counters import Cells, MessageCounter, Traffic
from ..eventloop import EpollReadiness, EventLoopServer
from ..log import Log
from ..server import EchoServer, ServerFailed, ShutdownRequested, stop_on_signals
from ..settings import Settings

_SPAWN = multiprocessing.get_context("spawn")
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
        self.lock = _SPAWN.RLock()
        self.cells = {
            counting: _SPAWN.RawArray("q", len(counting.FIELDS))
            for counting in (Traffic, MessageCounter)
        }
        self.open_by_worker = _SPAWN.RawArray("q", workers)


class _CountingShared:
    """Parent and workers alike count in the SharedCounts they have (the core's hooks)."""

    shared: SharedCounts

    def make_cells(self, counting: type[MessageCounter | Traffic]) -> Cells:
        return self.shared.cells[counting]

    def make_lock(self):
        return self.shared.lock

    def make_counter(self, cells: Cells) -> MessageCounter:
        return MessageCounter(self.log, cells, work_delay=self.work_delay, guard=self.shared.lock)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class RelayedLog(Log):
    """A worker's log: each line goes to the parent as one message, under the shared lock."""

    def __init__(self, pipe: Connection, lock, *, quiet: bool) -> None:
        super().__init__(quiet=quiet)
        self._pipe = pipe
        self._shared_lock = lock

    def line(self, text: str) -> None:
        with self._shared_lock:
            self._pipe.send_bytes(text.encode())


class PreforkWorker(_CountingShared, EventLoopServer):
    """One worker: the epoll event loop on its own SO_REUSEPORT listener, in slot ``slot``."""

    def __init__(self, settings: Settings, log: Log, shared: SharedCounts, slot: int) -> None:
        self.shared = shared  # read by the counting hooks during EchoServer.__init__
        self.slot = slot
        super().__init__(settings, log)

    def make_readiness(self) -> EpollReadiness:
        return EpollReadiness()

    def open_listener(self) -> socket.socket:
        listener = _reuse_port_socket(self.settings.host, self.settings.port)
        listener.listen(self.settings.backlog)
        return listener

    def admit(self, conn: socket.socket, addr: tuple) -> bool:
        with self.shared.lock:  # check the limit and count in one step, across workers
            admitted = super().admit(conn, addr)
            self.shared.open_by_worker[self.slot] += admitted
            return admitted

    def release(self, conn: socket.socket) -> None:
        with self.shared.lock:
            super().release(conn)
            self.shared.open_by_worker[self.slot] -= 1


def _work(settings: Settings, shared: SharedCounts, slot: int, log_pipe: Connection, listening):
    """A worker process: serve until SIGTERM, then close every connection, without a word."""
    log = RelayedLog(log_pipe, shared.lock, quiet=settings.quiet)
    worker = PreforkWorker(settings, log, shared, slot)
    with stop_on_signals(worker.stop):
        listening.release()
        try:
            worker.serve()
        except ShutdownRequested:
            pass
        finally:
            worker.listener.close()
            worker.close_connections()


def _ending(process: multiprocessing.Process) -> str:
    """'exited with code 1' or 'killed by SIGKILL'."""
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class PreforkServer(_CountingShared, EchoServer):
    """The parent: starts the workers, relays their lines, serves /stats, replaces a worker
    that dies, and stops and reaps them all at the end."""

    variant = "prefork"
    step = 11
    family = "processes"

    def __init__(self, settings: Settings, log: Log | None = None) -> None:
        super().__init__(settings, log)
        self._log_in, self._log_out = _SPAWN.Pipe(duplex=False)
        self._wake_in, self._wake_out = socket.socketpair()
        # Each worker releases it once listening (start() waits for all). Kept for the server's
        # life: a semaphore's name goes with the object, and a worker starts by opening it.
        self._listening = _SPAWN.Semaphore(0)
        # The workers listen on the port the parent has bound (and reserved: it never listens).
        self._worker_settings = dataclasses.replace(settings, port=self.port, stats_port=None)
        self.workers: list[multiprocessing.Process | None] = [None] * len(
            self.shared.open_by_worker
        )
        self._deaths: deque[float] = deque()

    @functools.cached_property
    def shared(self) -> SharedCounts:
        return SharedCounts(self.settings.processes or len(os.sched_getaffinity(0)))

    def open_listener(self) -> socket.socket:
        return _reuse_port_socket(self.settings.host, self.settings.port)

    def processes(self) -> list[int]:
        """The parent and its workers (one that ended is skipped where it is counted)."""
        return [os.getpid(), *(worker.pid for worker in self.workers if worker is not None)]

    def start(self) -> None:
        """Start every worker and wait until each is listening; fail if one dies first, or if
        they are not all listening by the deadline."""
        for slot in range(len(self.workers)):
            self._start_worker(slot)
        deadline = time.monotonic() + _START_DEADLINE
        for started in range(len(self.workers)):
            while not self._listening.acquire(timeout=0.05):
                dead = [worker for worker in self.workers if worker.exitcode is not None]
                if dead or time.monotonic() > deadline:
                    why = _ending(dead[0]) if dead else f"within {_START_DEADLINE:.0f} s"
                    raise ServerFailed(
                        f"prefork: only {started} of {len(self.workers)} workers were "
                        f"listening on port {self.port} ({why})"
                    )

    def _start_worker(self, slot: int) -> None:
        worker = _SPAWN.Process(
            target=_work,
            args=(self._worker_settings, self.shared, slot, self._log_out, self._listening),
            name=f"prefork-worker-{slot + 1}",
            daemon=True,  # should the parent die, multiprocessing ends them at its exit
        )
        worker.start()
        self.workers[slot] = worker

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
                    f"prefork: worker {dead.pid} {_ending(dead)} holding the shared lock; "
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
                f"prefork: workers keep dying ({len(self._deaths)} in "
                f"{_DEATH_WINDOW_S:.0f} s, more than {_DEATHS_ALLOWED}); stopping"
            )
        self._start_worker(slot)

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
        started = [worker for worker in self.workers if worker is not None]
        self._log_out.close()  # no worker starts now: EOF comes once every started one has ended
        for worker in started:
            if worker.exitcode is None:
                worker.terminate()  # SIGTERM: the worker stops as a server does
        deadline = time.monotonic() + _STOP_DEADLINE
        self._relay(timeout=_STOP_DEADLINE)  # their last lines, until every worker has ended
        for worker in started:
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
