"""lock: as threads, but the counter's read-work-write runs under a lock: exact totals.

The tutorial's ``with messageCounterLock:``. The cost is visible too: with 0.1 s of simulated
work inside the lock, the updates of all clients run one after another.
"""

import threading

from ..blocking import ThreadPerConnectionServer
from ..counters import MessageCounter


class LockServer(ThreadPerConnectionServer):
    variant = "lock"
    default_work_delay = 0.1

    def make_counter(self) -> MessageCounter:
        return MessageCounter(self.log, work_delay=self.work_delay, guard=threading.Lock())
