"""epoll: one thread, an epoll instance in the kernel, beyond the tutorial.

select and poll hand the kernel the whole list of sockets on every call, and the kernel checks
each one: with 10,000 idle connections and one busy client, every round trip pays for 10,000.
epoll keeps the list in the kernel (each socket is registered once, and changed only when what
it waits for changes) and hands back only the ready ones, so a call costs O(ready), not
O(watched), and there is no descriptor ceiling. ``selectors.DefaultSelector`` picks it on Linux
(kqueue on the BSDs and macOS); asyncio's own event loop is built on it.

The loop itself is the one select and poll run (``eventloop.EventLoopServer``): echo at once,
write-readiness only while an echo waits, backpressure past ``--output-cap``, half-close and
resets. Only the way of asking the kernel differs, as ``selectors.EpollSelector`` differs from
``PollSelector``: ``register`` once, then ``modify``, on an object the kernel holds.
"""
# Plumbing (the loop, buffers, backpressure: eventloop; socket, log, stats, shutdown: server)

import select
from selectors import EVENT_READ, EVENT_WRITE

from ..eventloop import EventLoopServer, Readiness, ready_events


# --8<-- [start:lesson]
class EpollReadiness(Readiness):
    def __init__(self) -> None:
        self._epoll = select.epoll()  # a descriptor for the kernel's own watched set
        self._registered: set[int] = set()

    def watch(self, fd: int, events: int) -> None:
        mask = 0
        if events & EVENT_READ:
            mask |= select.EPOLLIN
        if events & EVENT_WRITE:
            mask |= select.EPOLLOUT
        if fd in self._registered:
            self._epoll.modify(fd, mask)  # the kernel has it: change only what it waits for
        else:
            self._epoll.register(fd, mask)
            self._registered.add(fd)

    def forget(self, fd: int) -> None:
        self._registered.discard(fd)
        self._epoll.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        return [
            (fd, ready_events(flags, select.EPOLLIN, select.EPOLLOUT))
            for fd, flags in self._epoll.poll(timeout)  # only the ready ones come back
        ]

    def close(self) -> None:
        self._epoll.close()


class EpollServer(EventLoopServer):
    variant = "epoll"
    step = 8

    def make_readiness(self) -> EpollReadiness:
        return EpollReadiness()

    # --8<-- [end:lesson]
