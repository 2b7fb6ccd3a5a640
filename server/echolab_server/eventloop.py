"""The event-loop family: one thread, one loop over ready sockets, per-connection output buffers.

The loop is written once; the variants differ only in how they ask the kernel which sockets
are ready (``Readiness``: select, poll, epoll), as ``selectors`` does with its selector classes.

What the loop does that the tutorial's loops do not:
- it tries each echo at once and asks for write-readiness only when the kernel's send
  buffer is full (partial sends keep their place at the front of the buffer);
- a client that resets, or closes while its echo is pending, closes only its own connection;
- a half-closed client (shutdown(SHUT_WR)) still gets its whole echo before the server closes;
- backpressure: past ``--output-cap`` unsent bytes the server stops reading from that client
  until its buffer drains, so a client that never reads cannot make the server grow.
"""

import selectors
import socket
from abc import ABC, abstractmethod

from .server import EchoServer, describe

READ = 1
WRITE = 2


class Readiness(ABC):
    """How the loop waits for sockets to become ready: one small class per mechanism."""

    @abstractmethod
    def watch(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (READ, WRITE or both), or change what is watched."""

    @abstractmethod
    def forget(self, fd: int) -> None:
        """Stop watching ``fd``; called before it is closed."""

    @abstractmethod
    def wait(self) -> list[tuple[int, int]]:
        """Block until something is ready; return (fd, events) pairs.

        Errors and hang-ups count as READ, so that the next recv reports them."""

    def refusal(self, fd: int) -> str | None:
        """Why this mechanism cannot watch ``fd``, or None if it can."""
        return None

    def close(self) -> None:  # noqa: B027 - a hook: only some mechanisms hold a descriptor
        """Release the mechanism's own descriptor, if it has one."""


class Connection:
    """A client socket and the echo bytes it has not taken yet."""

    __slots__ = ("addr", "events", "outbox", "peer_done", "sock")

    def __init__(self, sock: socket.socket, addr: tuple) -> None:
        self.sock = sock
        self.addr = addr
        self.outbox = bytearray()  # del outbox[:n] is O(1) amortised in CPython
        self.peer_done = False  # the client shut down its sending side
        self.events = READ


class EventLoopServer(EchoServer):
    """Runs the loop with the Readiness that ``make_readiness`` returns."""

    @abstractmethod
    def make_readiness(self) -> Readiness:
        """The mechanism this variant teaches."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._readiness = self.make_readiness()
        self._connections: dict[int, Connection] = {}

    def serve(self) -> None:
        self.listener.setblocking(False)
        listening_fd = self.listener.fileno()
        self._readiness.watch(listening_fd, READ)
        while True:
            for fd, events in self._readiness.wait():
                if fd == listening_fd:
                    self._accept_ready()
                elif (conn := self._connections.get(fd)) is not None:
                    self._service(conn, events)

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
            self._readiness.watch(sock.fileno(), READ)

    def _service(self, conn: Connection, events: int) -> None:
        try:
            if events & READ and conn.events & READ:
                self._read(conn)
            if conn.outbox:  # echo at once; WRITE interest only when the kernel buffer is full
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
            wanted |= READ
        if conn.outbox:
            wanted |= WRITE
        if wanted != conn.events:
            conn.events = wanted
            self._readiness.watch(conn.sock.fileno(), wanted)

    def _close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        self._readiness.forget(fd)
        del self._connections[fd]
        self.release(conn.sock)


class SelectorReadiness(Readiness):
    """Readiness through ``selectors.DefaultSelector``: the best mechanism here (epoll on Linux).

    An epoll instance lives in the kernel and remembers what each socket is watched for, so
    ``wait`` costs time in proportion to the sockets that are ready, not to all that are
    watched: the loop stays as quick with 10,000 idle connections as with ten.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def watch(self, fd: int, events: int) -> None:
        mask = (selectors.EVENT_READ if events & READ else 0) | (
            selectors.EVENT_WRITE if events & WRITE else 0
        )
        if fd in self._selector.get_map():
            self._selector.modify(fd, mask)
        else:
            self._selector.register(fd, mask)

    def forget(self, fd: int) -> None:
        self._selector.unregister(fd)

    def wait(self) -> list[tuple[int, int]]:
        # selectors already reports errors and hang-ups as both readable and writable.
        return [
            (
                key.fd,
                (READ if mask & selectors.EVENT_READ else 0)
                | (WRITE if mask & selectors.EVENT_WRITE else 0),
            )
            for key, mask in self._selector.select()
        ]

    def close(self) -> None:
        self._selector.close()
