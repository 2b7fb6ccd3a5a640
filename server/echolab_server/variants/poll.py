"""poll: one thread, ``select.poll``, the tutorial's handle_new_connections_poll().

``poll`` takes one registration per socket instead of three lists per call and has no
descriptor ceiling, but the kernel still scans every registered socket on each call.

The tutorial's bug, fixed: after queueing an echo it registers ``POLLIN & POLLOUT``. The two
flags share no bit, so that is 0: the socket is then watched for nothing, and its echo is sent
only if some other event happens to come by. What it means is ``POLLIN | POLLOUT``: tell me
when I can read *or* write. echolab asks for POLLOUT only while an echo is waiting.
"""

import select

from ..eventloop import EventLoopServer, PollLikeReadiness


# --8<-- [start:lesson]
class PollReadiness(PollLikeReadiness):
    _poller_cls = select.poll
    _READ = select.POLLIN
    _WRITE = select.POLLOUT
    _TICKS_PER_SECOND = 1000


class PollServer(EventLoopServer):
    variant = "poll"
    step = 6

    def make_readiness(self) -> PollReadiness:
        return PollReadiness()


# --8<-- [end:lesson]
