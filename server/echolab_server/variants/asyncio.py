"""asyncio: asyncio streams, one coroutine per connection, beyond the tutorial.

The handler is the tutorial's handle_client() with ``await`` in front of every call that could
wait (``await reader.read()``, ``await writer.drain()``), and asyncio starts one coroutine per
connection where the threads variant starts one thread. The program keeps the readable shape of
thread-per-connection, but runs in one thread on an event loop (asyncio's own, written in
Python on ``selectors``, so epoll here): a coroutine costs a few kilobytes where a thread costs a
stack, switches only at an ``await`` (so the counter needs no lock: no race, exact totals), and
10,000 idle connections are 10,000 small objects, not 10,000 threads.

The price is the loop's own Python code on every event, and one core at most: a busy server is
limited by the interpreter, not the network. ``uvloop`` runs the same program on a faster loop.
"""
# Plumbing (accepting, limits, signals, stop on the loop: coroutines; log, stats: server)

import asyncio
import socket

from ..coroutines import CoroutineServer
from ..server import describe


# --8<-- [start:lesson]
class AsyncioServer(CoroutineServer):
    variant = "asyncio"
    step = 9

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    async def serve_connection(self, conn: socket.socket, addr: tuple) -> None:
        """The tutorial's handle_client(), as a coroutine: ``await`` where it would block."""
        writer = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
            writer.transport.set_write_buffer_limits(high=self.settings.output_cap)
            self.transports.add(writer.transport)
            while data := await reader.read(self.settings.recv_size):
                self.received(data)
                self.traffic.sent(len(data))  # before write: the client may have it at once
                writer.write(data)
                await writer.drain()  # waits only while more than output_cap bytes are unsent
            writer.close()  # after what is still buffered has gone out
            await writer.wait_closed()
        except OSError as error:
            self.log.line(f"Connection from {addr} ended: {describe(error)}")
        finally:
            if writer is not None:
                self.transports.discard(writer.transport)
                writer.transport.abort()  # at shutdown: drop what the client has not taken
            self.release(conn)

    # --8<-- [end:lesson]
