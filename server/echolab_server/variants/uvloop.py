"""uvloop: the asyncio variant on uvloop's event loop, beyond the tutorial.

The program is the asyncio variant's, line for line (it is that class); only the loop under it
changes. asyncio's loop is Python code: every ready socket passes through a few dozen lines of
it. uvloop implements the same interface in Cython on libuv (the loop under Node.js), so that
part runs as C. What stays Python is the handler itself, the counting and the logging: the
difference between the two variants under the same load is what the loop costs.

uvloop is the one package in the server image that is not from the standard library: the host
downloads its wheel (``make wheels``) and the image build unpacks it. Where it is missing, this
variant stops at start with one line saying so (``requires``, checked by
``variants.server_class``), and it is imported only when the variant runs.
"""
# Plumbing (the coroutine: asyncio; accepting, signals, stop: coroutines; log, stats: server)

import asyncio

from .asyncio import AsyncioServer


# --8<-- [start:lesson]
class UvloopServer(AsyncioServer):
    variant = "uvloop"
    step = 10
    requires = ("uvloop",)

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop  # here, not at the top: the registry loads where uvloop is missing

        return uvloop.new_event_loop()

    # --8<-- [end:lesson]
