"""prefork: N worker processes on one port (SO_REUSEPORT), each an epoll event loop.

One Python process runs Python code on one core at a time (the GIL), whatever its model. To
use every core, run several processes: the parent starts ``--processes`` workers (default one
per core it may run on), and each opens its own listening socket on the same port with
``SO_REUSEPORT``; the kernel spreads new connections over them by a hash of the addresses.
Each worker is the epoll event loop (``eventloop.EventLoopServer``), unchanged.

Totals stay exact across processes through shared memory: the counts live in one array that
every process maps (``multiprocessing.RawArray``), updated under one process-shared lock. The
core's counting code runs unchanged on it (``SharedTraffic``, ``SharedCounter``): so
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
"""

import contextlib
import dataclasses
import multiprocessing
import os
import socket
import time
from multiprocessing.connection import Connection, wait

from ..counters import MessageCounter, Traffic
from ..eventloop import EventLoopServer, SelectorReadiness
from ..log import Log
from ..server import EchoServer, ShutdownRequested, stop_on_signals
from ..settings import Settings

_SPAWN = multiprocessing.get_context("spawn")
_START_DEADLINE = 30.0  # seconds for every worker to be listening
_STOP_DEADLINE = 2.0  # seconds for the workers to stop before they are killed


class _Shared:
    """An int attribute kept in ``cells``, memory every process of the server maps."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.cells[self.index]

    def __set__(self, obj, value: int) -> None:
        obj.cells[self.index] = value


class SharedTraffic(Traffic):
    """The core's Traffic, its counts in shared memory and its lock shared by the processes."""

    bytes_received = _Shared(0)
    bytes_sent = _Shared(1)
    connections_total = _Shared(2)
    connections_current = _Shared(3)
    connections_refused = _Shared(4)

    def __init__(self, cells, lock) -> None:
        super().__init__(lock)
        self.cells = cells


class SharedCounter(MessageCounter):
    """The tutorial's counter for the whole server: its value shared, its guard the shared lock."""

    value = _Shared(5)

    def __init__(self, log: Log, cells, lock, *, work_delay: float) -> None:
        super().__init__(log, work_delay=work_delay, guard=lock)
        self.cells = cells


class _SharedCounts:
    """Parent and workers alike count in the shared memory they are given."""

    def __init__(self, settings: Settings, log: Log | None, cells, lock) -> None:
        self.cells = cells
        self.lock = lock
        super().__init__(settings, log)
        self.traffic = SharedTraffic(cells, lock)

    def make_counter(self) -> SharedCounter:
        return SharedCounter(self.log, self.cells, self.lock, work_delay=self.work_delay)


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


class PreforkWorker(_SharedCounts, EventLoopServer):
    """One worker: the epoll event loop on its own SO_REUSEPORT listener."""

    variant = "prefork"

    def make_readiness(self) -> SelectorReadiness:
        return SelectorReadiness()

    def open_listener(self) -> socket.socket:
        listener = _reuse_port_socket(self.settings.host, self.settings.port)
        listener.listen(self.settings.backlog)
        return listener

    def admit(self, conn: socket.socket, addr: tuple) -> bool:
        with self.lock:  # check the limit and count in one step, across workers
            return super().admit(conn, addr)


def _work(settings: Settings, cells, lock, log_pipe: Connection, listening, quiet: bool) -> None:
    """A worker process: serve until SIGTERM, then close every connection, without a word."""
    worker = PreforkWorker(settings, RelayedLog(log_pipe, lock, quiet=quiet), cells, lock)
    with stop_on_signals(worker.stop):
        listening.release()
        try:
            worker.serve()
        except ShutdownRequested:
            pass
        finally:
            worker.listener.close()
            worker.close_connections()


class PreforkServer(_SharedCounts, EchoServer):
    """The parent: starts the workers, relays their lines, serves /stats, stops and reaps them."""

    variant = "prefork"

    def __init__(self, settings: Settings, log: Log | None = None) -> None:
        super().__init__(settings, log, _SPAWN.RawArray("q", 6), _SPAWN.RLock())
        self._log_in, log_out = _SPAWN.Pipe(duplex=False)
        self._wake_in, self._wake_out = socket.socketpair()
        listening = _SPAWN.Semaphore(0)
        # The workers listen on the port the parent has bound (and reserved: it never listens).
        worker_settings = dataclasses.replace(settings, port=self.port, stats_port=None)
        count = settings.processes or len(os.sched_getaffinity(0))
        self.workers = [
            _SPAWN.Process(
                target=_work,
                args=(worker_settings, self.cells, self.lock, log_out, listening, self.log.quiet),
                name=f"prefork-worker-{n}",
                daemon=True,  # should the parent die, multiprocessing ends them at its exit
            )
            for n in range(1, count + 1)
        ]
        try:
            for worker in self.workers:
                worker.start()
            log_out.close()  # only the workers write: the parent reads EOF once all have ended
            self._await_listening(listening)
        except BaseException:
            self._stop_workers()
            raise

    def open_listener(self) -> socket.socket:
        return _reuse_port_socket(self.settings.host, self.settings.port)

    def _await_listening(self, listening) -> None:
        deadline = time.monotonic() + _START_DEADLINE
        for started in range(len(self.workers)):
            while not listening.acquire(timeout=0.05):
                if time.monotonic() > deadline or any(w.exitcode is not None for w in self.workers):
                    raise OSError(
                        f"only {started} of {len(self.workers)} prefork workers started listening"
                    )

    def serve(self) -> None:
        """Relay the workers' lines until stop(), or until a worker dies."""
        sentinels = {worker.sentinel: worker for worker in self.workers}
        while True:
            for ready in wait([self._wake_in, self._log_in, *sentinels]):
                if ready is self._log_in:
                    self._relay(timeout=0)
                elif ready is self._wake_in:
                    self._relay(timeout=0)  # what happened before the signal is printed first
                    raise ShutdownRequested
                elif not self.stopping:
                    worker = sentinels[ready]
                    self.log.line(
                        f"Worker {worker.pid} exited unexpectedly (code {worker.exitcode}); "
                        "stopping the server"
                    )
                    raise ShutdownRequested

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
        for worker in self.workers:
            if worker.pid is not None and worker.exitcode is None:
                worker.terminate()  # SIGTERM: the worker stops as a server does
        deadline = time.monotonic() + _STOP_DEADLINE
        self._relay(timeout=_STOP_DEADLINE)  # their last lines, until every worker has ended
        for worker in self.workers:
            if worker.pid is None:
                continue
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
