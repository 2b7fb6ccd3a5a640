"""What every variant shares: the listening socket, counting, logging, limits, stats, shutdown.

A variant is a subclass that says how connections are served (``serve``) and, where that is its
lesson, how the message counter is updated (``count_message``); everything else is written
once, here. Its class also
carries the facts about it that tests and the bench read (``variants.registry()``).
"""

import contextlib
import errno
import os
import resource
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import ClassVar

from .counters import Cells, MessageCounter, Traffic
from .log import Log
from .settings import Settings
from .stats import StatsEndpoint

# accept() failures that mean "out of a resource for now", not "the listener is broken".
_ACCEPT_BACKOFF_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_SPARE_DESCRIPTORS = 32  # kept free under the open-file limit for logs, stats and the like
_ACCEPT_RETRY_S = 0.1  # how long accepting pauses when the process is out of descriptors


class ShutdownRequested(Exception):
    """Raised by ``accept`` once the server is stopping: it unwinds the variant's serve loop."""


class ServerFailed(Exception):
    """The server cannot go on (prefork: its workers do not start, or keep dying); exit non-zero."""


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop()`` from a watcher thread on the first SIGTERM or SIGINT; ignore repeats.

    Why a thread, and not the work done in a signal handler: CPython runs Python-level
    handlers only in the main thread, between bytecodes. A signal that lands while another
    thread is running can be noticed only once the main thread's blocking call (accept, say)
    returns by itself, which may be never. The C-level handler, though, writes the signal
    number to the wakeup socket at once; the watcher wakes on it and stops the server from
    outside, which is what ``stop()`` is built for.
    """
    signals = (signal.SIGTERM, signal.SIGINT)
    wakeup, wakeup_writer = socket.socketpair()
    wakeup_writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(wakeup_writer.fileno(), warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in signals}

    def watch() -> None:
        if wakeup.recv(1):  # b"" means the server ended without a signal
            stop()

    watcher = threading.Thread(target=watch, name="signal-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        for sig, previous_handler in previous.items():
            signal.signal(sig, previous_handler)
        signal.set_wakeup_fd(previous_fd)
        wakeup_writer.close()
        watcher.join()
        wakeup.close()


def describe(error: OSError) -> str:
    """'reset by peer' rather than '[Errno 104] Connection reset by peer'."""
    return error.strerror or str(error) or type(error).__name__


def open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one and return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


class EchoServer(ABC):
    """The tutorial's server around a swappable concurrency model.

    Life cycle: ``serve_until_signalled()`` opens the listener and the stats endpoint, prints
    ``Starting server on ...``, runs the variant's ``serve()`` until a signal, then closes
    every socket and prints ``Shutting down gracefully...`` and the final totals.
    """

    # What the variant is: set by each variant's class, read through variants.registry().
    variant: ClassVar[str] = ""  # its name: its module's, and its compose service's after "server-"
    step: ClassVar[int] = 0  # its lesson's number in docs/lessons/, and so its place in every list
    family: ClassVar[str] = ""  # the code it shares: blocking, event loop, coroutines, processes
    counts_exactly: ClassVar[bool] = True  # False only where losing updates is the lesson (threads)
    serves_at_once: ClassVar[int | None] = None  # clients served at once, where the design fixes it
    descriptor_ceiling: ClassVar[int | None] = None  # the highest descriptor it can watch, if any
    requires: ClassVar[tuple[str, ...]] = ()  # packages beyond the standard library it imports
    default_work_delay: ClassVar[float] = 0.0

    def __init__(self, settings: Settings, log: Log | None = None) -> None:
        self.settings = settings
        self.log = log if log is not None else Log(quiet=settings.quiet)
        self.work_delay = (
            settings.work_delay if settings.work_delay is not None else self.default_work_delay
        )
        self.traffic = Traffic(self.make_cells(Traffic), self.make_lock())
        self.messages = self.make_counter(self.make_cells(MessageCounter))
        self.ready = threading.Event()
        self.stopping = False
        self.listener = self.open_listener()
        self.port = self.listener.getsockname()[1]
        limit = settings.max_connections
        self.max_connections = (
            limit if limit is not None else open_file_limit() - _SPARE_DESCRIPTORS
        )
        self.stats = None
        if settings.stats_port is not None:
            self.stats = StatsEndpoint(
                settings.host,
                settings.stats_port,
                self.snapshot,
                self.ready,
                self.log,
                processes=self.processes,
            )
        self._started = time.monotonic()

    # -- what a variant provides ------------------------------------------------------------

    def make_cells(self, counting: type[MessageCounter | Traffic]) -> Cells:
        """Where a counting class keeps its counts: a list here, in one process. (prefork's
        processes count in memory they all map instead.)"""
        return [0] * len(counting.FIELDS)

    def make_lock(self) -> AbstractContextManager[object]:
        """The lock around the traffic totals: a thread lock here, one process-shared in prefork."""
        return threading.Lock()

    def make_counter(self, cells: Cells) -> MessageCounter:
        """The message counter, in ``cells``; a single thread needs no guard, the default."""
        return MessageCounter(self.log, cells, work_delay=self.work_delay)

    def count_message(self) -> None:
        """Add one to the message counter. Where updating it is the lesson (threads, lock,
        condition), the variant writes its own update here."""
        self.messages.add_one()

    def start(self) -> None:  # noqa: B027 - a hook: only prefork has something to start
        """Start what runs beside the listener before the server says it is ready (prefork: its
        workers); raise ServerFailed if that cannot be done."""

    @abstractmethod
    def serve(self) -> None:
        """Serve connections until ``accept`` raises ShutdownRequested."""

    def stop(self) -> None:
        """Ask the server to stop, from any thread.

        Shutting the listener down wakes whatever waits on it, with no flag to poll: a
        blocked accept() fails at once, and select/poll/epoll report the listener ready,
        so the next accept raises ShutdownRequested in the variant's own loop.
        """
        self.stopping = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)

    @abstractmethod
    def close_connections(self) -> None:
        """Close every client connection at shutdown."""

    # -- shared parts ------------------------------------------------------------------------

    def open_listener(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.settings.host, self.settings.port))
        listener.listen(self.settings.backlog)
        return listener

    def serve_until_signalled(self) -> None:
        """Serve until SIGTERM or SIGINT; ServerFailed passes through, everything closed."""
        started = False
        with stop_on_signals(self.stop):
            try:
                if self.stats is not None:
                    self.stats.start()
                self.start()
                started = True
                self.log.line(f"Starting server on {self.settings.host!r} port {self.port}")
                self.ready.set()
                self.serve()
            except ShutdownRequested:
                self.log.line("Shutting down gracefully...")
            finally:
                self.ready.clear()
                self.listener.close()
                self.close_connections()
                if started:
                    self.log.line(self.final_totals())
                if self.stats is not None:
                    self.stats.close()

    def accept(self, listener: socket.socket | None = None) -> tuple[socket.socket, tuple] | None:
        """Accept one connection and admit it, or return None if it was refused or failed.

        Running out of file descriptors must not end the server: it logs, pauses accepting for
        a moment (``pause_accepting``: a full descriptor table must not spin the loop) and
        carries on.
        """
        try:
            conn, addr = (listener or self.listener).accept()
        except BlockingIOError:
            return None
        except OSError as error:
            if self.stopping:
                raise ShutdownRequested from None
            if error.errno not in _ACCEPT_BACKOFF_ERRORS:
                if error.errno == errno.ECONNABORTED:
                    return None
                raise
            self.log.line(
                f"Cannot accept a connection: {describe(error)}; retrying in {_ACCEPT_RETRY_S} s"
            )
            self.pause_accepting(_ACCEPT_RETRY_S)
            return None
        if not self.admit(conn, addr):
            return None
        return conn, addr

    def pause_accepting(self, seconds: float) -> None:
        """Accept nothing for ``seconds``. Here the accepting thread sleeps, which stalls no
        one else; a loop that serves every client (event loop, coroutines) stops watching the
        listener instead and watches it again later, as asyncio's own loop does."""
        time.sleep(seconds)

    def unsent_bytes(self) -> int:
        """Echo bytes taken from clients and not yet handed to the kernel: what backpressure
        (``--output-cap``) bounds."""
        return self.traffic.bytes_received - self.traffic.bytes_sent

    def admit(self, conn: socket.socket, addr: tuple) -> bool:
        """Count a new connection, or close it with a log line saying why it was refused."""
        reason = self.refusal(conn)
        if reason is not None:
            self.refuse(conn, addr, reason)
            return False
        # Urgent (MSG_OOB) bytes stay in the stream and are echoed like any other byte.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        self.traffic.opened()
        self.log.line(f"Received new connection from  {addr}")
        return True

    def refuse(self, conn: socket.socket, addr: tuple, reason: str) -> None:
        """Close a connection the server will not serve, saying why in the log."""
        self.traffic.refused()
        self.log.line(f"Refusing connection from {addr}: {reason}")
        conn.close()

    def refusal(self, conn: socket.socket) -> str | None:
        """Why a new connection cannot be served, or None if it can."""
        open_now = self.traffic.connections_current
        if open_now >= self.max_connections:
            return f"{open_now} connections open (limit {self.max_connections})"
        return None

    def release(self, conn: socket.socket) -> None:
        """Close a connection that was admitted."""
        conn.close()
        self.traffic.closed()

    def received(self, data: bytes) -> None:
        """The tutorial's per-message step: print it, count it (the total prints itself)."""
        self.log.per_message(f"Received: {data!r}")
        self.traffic.received(len(data))
        self.count_message()

    def snapshot(self) -> dict[str, object]:
        return {
            "variant": self.variant,
            # Which container answered (Docker makes its short id the host name): behind one
            # name, replicas and a replaced task tell themselves apart by it.
            "host": socket.gethostname(),
            "messages": self.messages.value,
            **self.traffic.snapshot(),
            "uptime_s": round(time.monotonic() - self._started, 3),
            # Printing a line per message bounds the throughput more than the model does:
            # loadgen reads this to say so before a sustained run.
            "log_per_message": not self.log.quiet,
        }

    def processes(self) -> list[int]:
        """The ids of the server's processes, whose threads and memory /metrics reports."""
        return [os.getpid()]

    def final_totals(self) -> str:
        totals = self.snapshot()
        return (
            f"Final totals: {totals['messages']} messages, "
            f"{totals['bytes_received']} bytes received, {totals['bytes_sent']} bytes sent, "
            f"{totals['connections_total']} connections, {totals['connections_refused']} refused"
        )
