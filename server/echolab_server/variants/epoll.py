"""epoll: one thread, ``selectors.DefaultSelector`` (epoll on Linux), beyond the tutorial.

select and poll hand the kernel the whole list of sockets on every call, and the kernel checks
each one: with 10,000 idle connections and one busy client, every round trip pays for 10,000.
epoll keeps the list in the kernel (each socket is registered once, and changed only when what
it waits for changes) and hands back only the ready ones, so a call costs O(ready), not
O(watched), and there is no descriptor ceiling. ``selectors.DefaultSelector`` picks it on Linux
(kqueue on the BSDs and macOS); asyncio's own event loop is built on it.

The loop itself is the one select and poll run (``eventloop.EventLoopServer``): echo at once,
write-readiness only while an echo waits, backpressure past ``--output-cap``, half-close and
resets. Only the way of asking the kernel differs: ``eventloop.EpollReadiness`` is poll's class
with epoll's object and flags, as ``selectors.EpollSelector`` is ``PollSelector``'s.
"""

from ..eventloop import EpollReadiness, EventLoopServer


# --8<-- [start:lesson]
class EpollServer(EventLoopServer):
    variant = "epoll"
    step = 8

    def make_readiness(self) -> EpollReadiness:
        return EpollReadiness()


# --8<-- [end:lesson]
