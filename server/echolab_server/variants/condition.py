"""condition: as lock, plus a watcher thread that a condition variable wakes at the 100th message.

The watcher does not poll the counter (which would take the lock over and over): it sleeps in
``Condition.wait`` until the counting thread notifies it, then prints
``*** 100 messages received ***`` once. The milestone is ``--milestone``.

One step beyond the tutorial: the counting thread keeps the counter's lock until the watcher
has spoken (a second wait on the same condition), so the announcement lands right after
``Total messages received: 100`` and never after 101.
"""
# Plumbing (a thread per connection: threads; handler loop: blocking; log, stats: server)

import threading

from .lock import LockServer

_ANNOUNCE_DEADLINE = 1.0  # seconds the counting thread waits for the watcher, at most


# --8<-- [start:lesson]
class ConditionServer(LockServer):
    variant = "condition"
    step = 4

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.condition = threading.Condition()  # the tutorial's condition
        self.announced = False

    def serve(self) -> None:
        threading.Thread(target=self.notify_milestone, name="notify-milestone", daemon=True).start()
        super().serve()

    def notify_milestone(self) -> None:
        """The tutorial's notify_100(): sleep until notified, check, announce once."""
        milestone = self.settings.milestone
        with self.condition:
            self.condition.wait_for(lambda: self.messages.value >= milestone)
            self.log.line(f"*** {milestone} messages received ***")
            self.announced = True
            self.condition.notify_all()

    def count_message(self) -> None:
        """lock's update; the thread that reaches the milestone wakes the watcher."""
        with self.message_counter_lock:
            next_count = self.messages.value + 1
            self.messages.simulate_work()
            self.messages.value = next_count
            self.messages.counted(next_count)
            if next_count == self.settings.milestone:
                with self.condition:
                    self.condition.notify_all()
                    # Beyond the tutorial: keep the counter until the watcher has spoken.
                    self.condition.wait_for(lambda: self.announced, timeout=_ANNOUNCE_DEADLINE)

    # --8<-- [end:lesson]
