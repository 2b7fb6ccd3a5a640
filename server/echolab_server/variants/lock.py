"""lock: as threads, but the counter's read-work-write runs under a lock: exact totals.

The tutorial's ``with messageCounterLock:``. Only one thread at a time can be between the
read and the write, so no update is lost. The cost is visible too: with 0.1 s of simulated
work inside the lock, the updates of all clients run one after another.
"""
# Plumbing (a thread per connection: threads; handler loop: blocking; log, stats: server)

import threading

from .threads import ThreadsServer


# --8<-- [start:lesson]
class LockServer(ThreadsServer):
    variant = "lock"
    step = 3
    counts_exactly = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.message_counter_lock = threading.Lock()  # the tutorial's messageCounterLock

    def count_message(self) -> None:
        """threads' update, with the lock held from the read to the write (and the line
        printed inside it, so the totals come out in counting order)."""
        with self.message_counter_lock:
            next_count = self.messages.value + 1
            self.messages.simulate_work()
            self.messages.value = next_count
            self.messages.counted(next_count)

    # --8<-- [end:lesson]
