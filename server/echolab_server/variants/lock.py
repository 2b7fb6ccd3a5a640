"""lock: as threads, but the counter's read-work-write runs under a lock: exact totals.

The tutorial's ``with messageCounterLock:`` (``BlockingEchoServer.make_counter`` takes it for
every variant that counts exactly). The cost is visible too: with 0.1 s of simulated work
inside the lock, the updates of all clients run one after another.
"""

from ..blocking import ThreadPerConnectionServer


# --8<-- [start:lesson]
class LockServer(ThreadPerConnectionServer):
    variant = "lock"
    step = 3
    default_work_delay = 0.1


# --8<-- [end:lesson]
