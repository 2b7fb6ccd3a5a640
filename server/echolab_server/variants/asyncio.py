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

This module only chooses the loop; the coroutines are ``coroutines.CoroutineServer``'s.
"""

import asyncio

from ..coroutines import CoroutineServer


# --8<-- [start:lesson]
class AsyncioServer(CoroutineServer):
    variant = "asyncio"
    step = 9

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()


# --8<-- [end:lesson]
