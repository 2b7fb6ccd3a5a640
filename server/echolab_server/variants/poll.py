"""poll: one thread, ``select.poll``, the tutorial's handle_new_connections_poll().

``poll`` takes one registration per socket instead of three lists per call and has no
descriptor ceiling, but the kernel still scans every registered socket on each call.

The tutorial's bug, fixed: after queueing an echo it registers ``POLLIN & POLLOUT``. The two
flags share no bit, so that is 0: the socket is then watched for nothing, and its echo is sent
only if some other event happens to come by. What it means is ``POLLIN | POLLOUT``: tell me
when I can read *or* write. echolab asks for POLLOUT only while an echo is waiting.
"""

import select

from ..eventloop import READ, WRITE, EventLoopServer, Readiness


class PollReadiness(Readiness):
    def __init__(self) -> None:
        self._poll = select.poll()

    def watch(self, fd: int, events: int) -> None:
        mask = (select.POLLIN if events & READ else 0) | (select.POLLOUT if events & WRITE else 0)
        self._poll.register(fd, mask)  # registering again modifies

    def forget(self, fd: int) -> None:
        self._poll.unregister(fd)

    def wait(self) -> list[tuple[int, int]]:
        # POLLHUP, POLLERR and POLLNVAL come unasked: report them as READ so that the next
        # recv (or send) says what happened, as selectors.PollSelector does.
        return [
            (
                fd,
                (WRITE if flags & select.POLLOUT else 0) | (READ if flags & ~select.POLLOUT else 0),
            )
            for fd, flags in self._poll.poll()
        ]


class PollServer(EventLoopServer):
    variant = "poll"

    def make_readiness(self) -> PollReadiness:
        return PollReadiness()
