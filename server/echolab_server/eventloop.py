"""The event-loop family: one thread, one loop over ready sockets, per-connection output buffers.

The loop is written once; the variants differ only in how they ask the kernel which sockets
are ready, as in ``selectors``: one abstract base (``Readiness``), the event constants defined
once (``selectors.EVENT_READ``/``EVENT_WRITE``, reused here), and one short class per mechanism,
written in the variant's own module (select.py, poll.py, epoll.py) because that is its lesson.

What the loop does that the tutorial's loops do not:
- it tries each echo at once and asks for write-readiness only when the kernel's send
  buffer is full (partial sends keep their place at the front of the buffer);
- a client that resets, or closes while its echo is pending, closes only its own connection;
- a half-closed client (shutdown(SHUT_WR)) still gets its whole echo before the server closes;
- backpressure: past ``--output-cap`` unsent bytes the server stops reading from that client
  until its buffer drains, so a client that never reads cannot make the server grow;
- out of descriptors (EMFILE), it stops watching the listener for a moment instead of
  sleeping, so the clients it has keep being served.
"""

import socket
import time
from abc import ABC, abstractmethod
from selectors import EVENT_READ, EVENT_WRITE
from typing import Any

from .server import EchoServer, describe


class Readiness(ABC):
    """How the loop waits for sockets to become ready: one small class per mechanism."""

    @abstractmethod
    def watch(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (EVENT_READ, EVENT_WRITE or both), or change
        what it is watched for."""

    @abstractmethod
    def forget(self, fd: int) -> None:
        """Stop watching ``fd``; called before it is closed."""

    @abstractmethod
    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        """Block until something is ready or ``timeout`` seconds (None: no limit) have passed;
        return (fd, events) pairs. Errors and hang-ups count as ready, so that the next recv
        or send reports them."""

    def refusal(self, fd: int) -> str | None:
        """Why this mechanism cannot watch ``fd``, or None if it can."""
        return None

    def close(self) -> None:  # noqa: B027 - a hook: only some mechanisms hold a descriptor
        """Release the mechanism's own descriptor, if it has one."""


def ready_events(flags: int, read_flag: int, write_flag: int) -> int:
    """What poll or epoll reported for a socket, as EVENT_READ and EVENT_WRITE. Flags beyond
    the one asked for (hang-up, error) mean both, as ``selectors`` reads them: the next recv
    or send reports what happened."""
    return (EVENT_WRITE if flags & ~read_flag else 0) | (EVENT_READ if flags & ~write_flag else 0)


class Connection:
    """A client socket and the echo bytes it has not taken yet."""

    __slots__ = ("addr", "events", "outbox", "peer_done", "sock")

    def __init__(self, sock: socket.socket, addr: tuple) -> None:
        self.sock = sock
        self.addr = addr
        self.outbox = bytearray()  # del outbox[:n] is O(1) amortised in CPython
        self.peer_done = False  # the client shut down its sending side
        self.events = EVENT_READ


class EventLoopServer(EchoServer):
    """Runs the loop with the Readiness that ``make_readiness`` returns."""

    family = "event loop"

    @abstractmethod
    def make_readiness(self) -> Readiness:
        """The mechanism this variant teaches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._readiness = self.make_readiness()
        self._connections: dict[int, Connection] = {}
        self._accept_again_at: float | None = None  # while the listener is not watched

    # --8<-- [start:loop]
    def serve(self) -> None:
        self.listener.setblocking(False)
        listening_fd = self.listener.fileno()
        self._readiness.watch(listening_fd, EVENT_READ)
        while True:
            timeout = None
            if self._accept_again_at is not None:
                timeout = max(0.0, self._accept_again_at - time.monotonic())
            for fd, events in self._readiness.wait(timeout):
                if fd == listening_fd:
                    self._accept_ready()
                elif (conn := self._connections.get(fd)) is not None:
                    self._service(conn, events)
            if self._accept_again_at is not None and time.monotonic() >= self._accept_again_at:
                self._accept_again_at = None
                self._readiness.watch(listening_fd, EVENT_READ)

    # --8<-- [end:loop]

    def pause_accepting(self, seconds: float) -> None:
        """Stop watching the listener and watch it again in ``seconds``; everyone else is served
        meanwhile."""
        self._readiness.forget(self.listener.fileno())
        self._accept_again_at = time.monotonic() + seconds

    def close_connections(self) -> None:
        for conn in list(self._connections.values()):
            self._close(conn)
        self._readiness.close()

    def refusal(self, conn: socket.socket) -> str | None:
        return super().refusal(conn) or self._readiness.refusal(conn.fileno())

    def _accept_ready(self) -> None:
        """Accept what is waiting, a bounded batch at a time so clients keep being served."""
        for _ in range(64):
            accepted = self.accept()
            if accepted is None:
                return
            sock, addr = accepted
            sock.setblocking(False)
            self._connections[sock.fileno()] = Connection(sock, addr)
            self._readiness.watch(sock.fileno(), EVENT_READ)

    def _service(self, conn: Connection, events: int) -> None:
        try:
            if events & EVENT_READ and conn.events & EVENT_READ:
                self._read(conn)
            if conn.outbox:  # echo at once; write interest only when the kernel buffer is full
                self._flush(conn)
        except OSError as error:
            self.log.line(f"Connection from {conn.addr} ended: {describe(error)}")
            self._close(conn)
            return
        if conn.peer_done and not conn.outbox:
            self._close(conn)
        else:
            self._update_interest(conn)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(self.settings.recv_size)
        except BlockingIOError:
            return
        if not data:
            conn.peer_done = True
            return
        self.received(data)
        conn.outbox += data

    def _flush(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except BlockingIOError:
            return
        del conn.outbox[:sent]
        self.traffic.sent(sent)

    def _update_interest(self, conn: Connection) -> None:
        wanted = 0
        if not conn.peer_done and len(conn.outbox) < self.settings.output_cap:
            wanted |= EVENT_READ
        if conn.outbox:
            wanted |= EVENT_WRITE
        if wanted != conn.events:
            conn.events = wanted
            self._readiness.watch(conn.sock.fileno(), wanted)

    def _close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        self._readiness.forget(fd)
        del self._connections[fd]
        self.release(conn.sock)
