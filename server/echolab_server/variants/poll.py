"""poll: one thread, ``select.poll``, the tutorial's handle_new_connections_poll().

``poll`` takes one registration per socket instead of three lists per call and has no
descriptor ceiling, but the registrations live in this process: every ``poll()`` call hands
the kernel all of them, and the kernel scans every one.

The tutorial's bug, fixed: after queueing an echo it registers ``POLLIN & POLLOUT``. The two
flags share no bit, so that is 0: the socket is then watched for nothing, and its echo is sent
only if some other event happens to come by. What it means is ``POLLIN | POLLOUT``: tell me
when I can read *or* write. echolab asks for POLLOUT only while an echo is waiting.
"""
# Plumbing (the loop, buffers, backpressure: eventloop; socket, log, stats, shutdown: server)

import math
import select
from selectors import EVENT_READ, EVENT_WRITE

from ..eventloop import EventLoopServer, Readiness, ready_events


# --8<-- [start:lesson]
class PollReadiness(Readiness):
    def __init__(self) -> None:
        self._poll = select.poll()

    def watch(self, fd: int, events: int) -> None:
        # --8<-- [start:mask]
        mask = 0
        if events & EVENT_READ:
            mask |= select.POLLIN
        if events & EVENT_WRITE:
            mask |= select.POLLOUT  # OR: read *or* write. The tutorial's POLLIN & POLLOUT is 0.
        self._poll.register(fd, mask)  # registering a socket again replaces its mask
        # --8<-- [end:mask]

    def forget(self, fd: int) -> None:
        self._poll.unregister(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        milliseconds = None if timeout is None else math.ceil(timeout * 1000)
        return [
            (fd, ready_events(flags, select.POLLIN, select.POLLOUT))
            for fd, flags in self._poll.poll(milliseconds)  # every registered socket, each call
        ]


class PollServer(EventLoopServer):
    variant = "poll"
    step = 6

    def make_readiness(self) -> PollReadiness:
        return PollReadiness()

    # --8<-- [end:lesson]
