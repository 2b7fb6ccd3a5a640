"""simple: one connection at a time, the tutorial's handle_new_connections_simple().

The main thread runs the handler itself, so while one client is connected the next one is
accepted by the kernel (it waits in the listen backlog) but gets no echo until the first
disconnects.
"""
# Plumbing (the handler loop, accepting, shutdown: blocking; log, stats, limits: server)

from ..blocking import BlockingEchoServer


# --8<-- [start:lesson]
class SimpleServer(BlockingEchoServer):
    variant = "simple"
    step = 1
    serves_at_once = 1

    def serve(self) -> None:
        """Accept, then run the client's handler (the tutorial's handle_client) right here:
        the next client is not accepted until it returns."""
        for conn, addr in self.accept_forever():
            self.handle(conn, addr)

    # --8<-- [end:lesson]
