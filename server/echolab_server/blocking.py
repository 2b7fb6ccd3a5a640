"""The blocking family: one handler, run inline, by a thread per connection, or by a pool.

As in ``socketserver``, the handler is written once (the tutorial's ``handle_client``) and the
variants differ only in who runs it, which each writes in its own ``serve`` (simple: inline,
threads: a thread each, pool: an executor). Backpressure comes for free: a client that stops
reading blocks its own ``sendall``, so nothing is buffered beyond one ``recv``.

What is here is what no lesson is about: accepting until shutdown, the set of open sockets
that ``stop()`` wakes, refusing what cannot be served.
"""

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from .counters import Cells, MessageCounter
from .server import EchoServer, describe

_SHUTDOWN_GRACE = 0.5  # seconds to let handlers finish after their sockets are shut down


class BlockingEchoServer(EchoServer):
    """Accepts in the main thread; handlers block in recv and sendall."""

    family = "blocking"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_changed = threading.Condition()

    def make_counter(self, cells: Cells) -> MessageCounter:
        """Handlers may run in threads at once, so ``add_one`` (pool's) runs under a lock.
        threads, lock and condition update the counter with code of their own."""
        return MessageCounter(self.log, cells, work_delay=self.work_delay, guard=threading.Lock())

    def accept_forever(self) -> Iterator[tuple[socket.socket, tuple]]:
        while True:
            accepted = self.accept()
            if accepted is not None:
                with self._open_changed:
                    self._open.add(accepted[0])
                    if self.stopping:  # stop() ran before this socket was in the set
                        accepted[0].shutdown(socket.SHUT_RDWR)
                yield accepted

    # --8<-- [start:handler]
    def handle(self, conn: socket.socket, addr: tuple) -> None:
        """The tutorial's handle_client(): recv, count, print, sendall, until the client closes."""
        try:
            while data := conn.recv(self.settings.recv_size):
                self.received(data)
                conn.sendall(data)
                self.traffic.sent(len(data))
        except OSError as error:
            self.log.line(f"Connection from {addr} ended: {describe(error)}")
        finally:
            self.release(conn)
            self._forget(conn)  # last: close_connections() waits for this, totals must be final

    # --8<-- [end:handler]

    def turn_away(self, conn: socket.socket, addr: tuple, reason: str) -> None:
        """Refuse a connection already admitted that cannot be served after all."""
        self.traffic.closed()
        self.refuse(conn, addr, reason)
        self._forget(conn)

    def _forget(self, conn: socket.socket) -> None:
        with self._open_changed:
            self._open.discard(conn)
            self._open_changed.notify_all()

    def stop(self) -> None:
        """Also wake every handler blocked in recv or sendall, the main thread's included.

        ``shutdown()`` (not ``close()``) is safe while another thread is inside a call on the
        socket: its recv returns b"" and its handler closes the socket itself.
        """
        super().stop()
        with self._open_changed:
            for conn in self._open:
                with contextlib.suppress(OSError):  # already gone: reset, or being closed
                    conn.shutdown(socket.SHUT_RDWR)

    def close_connections(self) -> None:
        """Give the woken handlers a moment to finish and close their sockets."""
        with self._open_changed:
            self._open_changed.wait_for(lambda: not self._open, timeout=_SHUTDOWN_GRACE)
