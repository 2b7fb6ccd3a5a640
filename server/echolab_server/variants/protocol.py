"""protocol: asyncio's callback interface, no coroutine per message, beyond the tutorial.

The streams variants (asyncio, uvloop) read like the tutorial's handle_client(), and pay for
it on every message: ``await reader.read()`` resumes a coroutine, copies the bytes out of a
StreamReader's buffer, and ``await writer.drain()`` resumes it again. Under the streams sits
asyncio's lower layer: a transport that calls its protocol's methods when something happens.
This variant is that layer alone. The loop reads what has arrived into the protocol's own
buffer of ``--recv-size`` bytes (the unit the streams variants count with
``reader.read(recv_size)``) and calls ``buffer_updated(n)``, which counts the read and hands it
to ``transport.write()``: no coroutine, no future, no stream object per message.

What it costs the reader: the handler is no longer one loop from read to close but four
callbacks (bytes in, writing paused, writing resumed, connection lost), and the state that
the streams variant keeps in local variables lives on an object. Backpressure is explicit:
past ``--output-cap`` unsent bytes the transport calls ``pause_writing()``, which stops
reading from that client (``pause_reading``) until the client has taken its echo
(``resume_writing()``, then ``resume_reading``).

It runs on uvloop's loop where uvloop is installed (the image has it), on asyncio's own
otherwise; ``/stats`` says which (``event_loop``). Accepting, limits, stop and the loop's
set-up are the coroutine family's (``coroutines.CoroutineServer``): only what happens to an
admitted socket differs.
"""
# Plumbing (accepting, limits, signals, stop on the loop: coroutines; log, stats: server)

import asyncio
import socket
from types import ModuleType

from ..coroutines import CoroutineServer
from ..server import describe

uvloop: ModuleType | None
try:
    import uvloop
except ImportError:
    uvloop = None


# --8<-- [start:lesson]
class EchoProtocol(asyncio.BufferedProtocol):
    """One connection: the loop calls these methods; they echo, count, and pause reading
    while the echo waits. (Buffered: a read is at most ``--recv-size`` bytes, one counted
    message as in every variant, not the 256 KiB a plain Protocol is handed.)"""

    transport: asyncio.Transport  # from connection_made on

    def __init__(self, server: "ProtocolServer", conn: socket.socket, addr: tuple) -> None:
        self.server = server
        self.conn = conn
        self.addr = addr
        self.buffer = bytearray(server.settings.recv_size)
        self.released = False

    # typeshed types every protocol's transport as a BaseTransport; a stream's is a Transport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.set_write_buffer_limits(high=self.server.settings.output_cap)
        self.server.connections.add(self)
        self.server.transports.add(transport)  # what it holds counts as unsent

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self.buffer[:nbytes])
        self.server.received(data)
        self.server.traffic.sent(nbytes)  # before write: the client may have it at once
        self.transport.write(data)

    def eof_received(self) -> None:
        """The client half-closed: returning None closes, after the echo still buffered."""

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def connection_lost(self, error: Exception | None) -> None:
        if isinstance(error, OSError):
            self.server.log.line(f"Connection from {self.addr} ended: {describe(error)}")
        self.end()

    # --8<-- [end:lesson]

    def end(self) -> None:
        """Drop the connection (once): at shutdown, what the client has not taken goes too."""
        if self.released:
            return
        self.released = True
        if self in self.server.connections:  # connection_made has run: there is a transport
            self.server.transports.discard(self.transport)
            self.transport.abort()
        self.server.connections.discard(self)
        self.server.release(self.conn)


class ProtocolServer(CoroutineServer):
    variant = "protocol"
    step = 12

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[EchoProtocol] = set()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop() if uvloop is None else uvloop.new_event_loop()

    def snapshot(self) -> dict[str, object]:
        return {**super().snapshot(), "event_loop": "asyncio" if uvloop is None else "uvloop"}

    async def serve_connection(self, conn: socket.socket, addr: tuple) -> None:
        """Wrap the socket in a transport; from then on the loop calls the protocol."""
        protocol = EchoProtocol(self, conn, addr)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, sock=conn)
        except OSError as error:
            self.log.line(f"Connection from {addr} ended: {describe(error)}")
            protocol.end()
        except BaseException:  # cancelled at shutdown before the transport was made
            protocol.end()
            raise

    def close_connections(self) -> None:
        for protocol in list(self.connections):
            protocol.end()
        super().close_connections()
