"""prefork: N worker processes on one port (SO_REUSEPORT), each an epoll event loop.

One Python process runs Python code on one core at a time (the GIL), whatever its model. To
use every core, run several processes: the parent starts ``--processes`` workers (default one
per core it may run on), and each opens its own listening socket on the same port with
``SO_REUSEPORT``; the kernel spreads new connections over them by a hash of the addresses.
Each worker is the epoll variant's event loop, unchanged.

Totals stay exact across processes through shared memory: every process counts in the same
arrays (``multiprocessing.RawArray``, handed out through the core's ``make_cells`` hook), under
one process-shared lock (``make_lock``). The core's counting code runs unchanged on them: so
``Total messages received: N`` counts for the whole server, ``/stats`` (served by the parent)
reads the live sums, and the connection limit holds for the whole server too (a worker checks
and counts a newcomer under the lock). The price is that lock, taken a few times per message
by every worker: the part of the work that does not get faster with more cores.
"""
# Plumbing (shared memory, relayed logs, replacing dead workers, stop: processes; stats: server)

import functools
import os
import socket
from contextlib import AbstractContextManager
from multiprocessing.context import SpawnProcess
from typing import Protocol

from ..counters import Cells, MessageCounter, Traffic
from ..eventloop import EventLoopServer
from ..log import Log
from ..processes import SPAWN, SharedCounts, WorkerSupervisor, run_worker
from ..settings import Settings
from .epoll import EpollReadiness


class _SharingServer(Protocol):
    """What CountsShared's hooks read from the server they are mixed into."""

    log: Log
    work_delay: float

    @property
    def shared(self) -> SharedCounts: ...


class CountsShared:
    """Parent and workers alike count in the same shared memory, under one shared lock: the
    core's counting code, unchanged, on the cells and the lock these hooks hand it."""

    def make_cells(self: _SharingServer, counting: type[MessageCounter | Traffic]) -> Cells:
        return self.shared.cells[counting]

    def make_lock(self: _SharingServer) -> AbstractContextManager[object]:
        return self.shared.lock

    def make_counter(self: _SharingServer, cells: Cells) -> MessageCounter:
        return MessageCounter(self.log, cells, work_delay=self.work_delay, guard=self.shared.lock)


# --8<-- [start:lesson]
class PreforkServer(CountsShared, WorkerSupervisor):
    """The parent: binds the port, allocates the shared counts, starts a worker per slot."""

    variant = "prefork"
    step = 11

    @functools.cached_property
    def shared(self) -> SharedCounts:
        return SharedCounts(self.settings.processes or len(os.sched_getaffinity(0)))

    def open_listener(self) -> socket.socket:
        return reuse_port_socket(self.settings.host, self.settings.port)  # bound, never listens

    def start_worker(self, slot: int) -> SpawnProcess:
        """A new process (spawn: a fresh interpreter) runs a PreforkWorker on the same port,
        counting in the same shared memory."""
        worker = SPAWN.Process(
            target=run_worker,
            args=(
                PreforkWorker,
                self.worker_settings,
                self.shared,
                slot,
                self.log_out,
                self.listening,
            ),
            name=f"prefork-worker-{slot + 1}",
            daemon=True,  # should the parent die, multiprocessing ends them at its exit
        )
        worker.start()
        return worker


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to a port that other sockets with SO_REUSEPORT may bind too."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


# --8<-- [end:lesson]


# --8<-- [start:worker]
class PreforkWorker(CountsShared, EventLoopServer):
    """One worker: the epoll variant's event loop on its own listener, on the shared port."""

    def __init__(self, settings: Settings, log: Log, shared: SharedCounts, slot: int) -> None:
        self.shared = shared  # read by the counting hooks during EchoServer.__init__
        self.slot = slot
        super().__init__(settings, log)

    def make_readiness(self) -> EpollReadiness:
        return EpollReadiness()

    def open_listener(self) -> socket.socket:
        listener = reuse_port_socket(self.settings.host, self.settings.port)
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

    # --8<-- [end:worker]
