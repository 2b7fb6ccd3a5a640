"""condition: as lock, plus a watcher thread that a condition variable wakes at the 100th message.

The watcher does not poll the counter (which would take the lock over and over): it sleeps in
``Condition.wait`` until the counting thread notifies it, then prints
``*** 100 messages received ***`` once. The milestone is ``--milestone``.

One step beyond the tutorial: the counting thread keeps the counter's lock until the watcher
has spoken (a second wait on the same condition), so the announcement lands right after
``Total messages received: 100`` and never after 101.
"""

import threading

from ..blocking import ThreadPerConnectionServer
from ..counters import Cells, MessageCounter
from ..log import Log

_ANNOUNCE_DEADLINE = 1.0  # seconds the counting thread waits for the watcher, at most


# --8<-- [start:lesson]
class MilestoneCounter(MessageCounter):
    """A locked counter that wakes a watcher when the total reaches ``milestone``."""

    def __init__(self, log: Log, cells: Cells, *, work_delay: float, milestone: int) -> None:
        super().__init__(log, cells, work_delay=work_delay, guard=threading.Lock())
        self.milestone = milestone
        self.reached = threading.Condition()
        self.announced = False

    def counted(self, total: int) -> None:
        super().counted(total)
        if total == self.milestone:
            with self.reached:
                self.reached.notify_all()
                self.reached.wait_for(lambda: self.announced, timeout=_ANNOUNCE_DEADLINE)

    def watch(self) -> None:
        """The tutorial's notify_100(): sleep until notified, check, announce once."""
        with self.reached:
            self.reached.wait_for(lambda: self.value >= self.milestone)
            self._log.line(f"*** {self.milestone} messages received ***")
            self.announced = True
            self.reached.notify_all()


# --8<-- [end:lesson]


class ConditionServer(ThreadPerConnectionServer):
    variant = "condition"
    step = 4
    default_work_delay = 0.1

    def make_counter(self, cells: Cells) -> MilestoneCounter:
        return MilestoneCounter(
            self.log, cells, work_delay=self.work_delay, milestone=self.settings.milestone
        )

    def serve(self) -> None:
        threading.Thread(target=self.messages.watch, name="notify-milestone", daemon=True).start()
        super().serve()
