"""threads: a thread per connection and an unsafe shared counter, the tutorial's race.

Each update reads the counter, does 0.1 s of simulated work, then writes back its value plus
one. Two clients at once both read the same value, so one increment is lost: two runs of 100
clients leave the total well short of 200. That is the lesson, and it is kept on purpose.
"""

from ..blocking import ThreadPerConnectionServer


# --8<-- [start:lesson]
class ThreadsServer(ThreadPerConnectionServer):
    variant = "threads"
    step = 2
    counts_exactly = False  # the counter's update runs without a lock: the race
    default_work_delay = 0.1


# --8<-- [end:lesson]
