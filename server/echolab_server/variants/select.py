"""select: one thread, ``select.select`` over every socket (handle_new_connections_select).

``select`` hands the kernel three lists of sockets on every call and gets back the ready ones:
simple and portable, but each call costs time proportional to the number of sockets watched,
and it cannot watch a descriptor numbered FD_SETSIZE (1024) or higher. Past that ceiling this
variant refuses the newcomer with a log line and keeps serving everyone else (the tutorial's
loop would die with ``ValueError: filedescriptor out of range in select()``).

The tutorial also passes its inputs as the "exceptional" list and closes whatever shows up
there; on a TCP socket that list reports urgent (out-of-band) data, not errors. echolab keeps
urgent bytes inline (SO_OOBINLINE) and lets recv and send report errors instead.
"""
# Plumbing (the loop, buffers, backpressure: eventloop; socket, log, stats, shutdown: server)

import select
from selectors import EVENT_READ, EVENT_WRITE

from ..eventloop import EventLoopServer, Readiness

FD_SETSIZE = 1024


# --8<-- [start:lesson]
class SelectReadiness(Readiness):
    def __init__(self) -> None:
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def watch(self, fd: int, events: int) -> None:
        (self._readers.add if events & EVENT_READ else self._readers.discard)(fd)
        (self._writers.add if events & EVENT_WRITE else self._writers.discard)(fd)

    def forget(self, fd: int) -> None:
        self._readers.discard(fd)
        self._writers.discard(fd)

    def wait(self, timeout: float | None) -> list[tuple[int, int]]:
        # Three lists in, three out, every call: the kernel checks each socket given.
        readable, writable, _ = select.select(self._readers, self._writers, [], timeout)
        events = dict.fromkeys(readable, EVENT_READ)
        for fd in writable:
            events[fd] = events.get(fd, 0) | EVENT_WRITE
        return list(events.items())

    def refusal(self, fd: int) -> str | None:
        if fd >= FD_SETSIZE:
            return f"descriptor {fd} is past select()'s FD_SETSIZE ceiling ({FD_SETSIZE})"
        return None


class SelectServer(EventLoopServer):
    variant = "select"
    step = 5
    descriptor_ceiling = FD_SETSIZE

    def make_readiness(self) -> SelectReadiness:
        return SelectReadiness()

    # --8<-- [end:lesson]
