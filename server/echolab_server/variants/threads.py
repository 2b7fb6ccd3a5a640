"""threads: a thread per connection and an unsafe shared counter, the tutorial's race.

The main thread accepts; each client gets a thread of its own that runs the handler, so a
slow client no longer holds up the others. All those threads update one counter, and the
update reads the counter, does 0.1 s of simulated work, then writes back its value plus one.
Two clients at once both read the same value, so one increment is lost: two runs of 100
clients leave the total well short of 200. That is the lesson, and it is kept on purpose.
"""
# Plumbing (handler loop, accepting, shutdown: blocking; socket, log, stats, limits: server)

import threading

from ..blocking import BlockingEchoServer


# --8<-- [start:lesson]
class ThreadsServer(BlockingEchoServer):
    variant = "threads"
    step = 2
    counts_exactly = False  # count_message runs without a lock: the race
    default_work_delay = 0.1

    def serve(self) -> None:
        """The tutorial's handle_new_connections_threads(): start a thread that runs the
        client's handler, and go straight back to accepting the next one."""
        for conn, addr in self.accept_forever():
            thread = threading.Thread(
                target=self.handle, args=(conn, addr), name=f"client-{addr[1]}", daemon=True
            )
            try:
                thread.start()
            except RuntimeError as error:  # out of threads: the container's pids_limit, say
                self.turn_away(conn, addr, f"cannot start a thread for it ({error})")

    def count_message(self) -> None:
        """Read, work, write, in every client's thread at once. Two threads can both read
        N before either writes: both write N + 1, and one message goes uncounted."""
        next_count = self.messages.value + 1
        self.messages.simulate_work()  # the tutorial's threading.Event().wait(0.1)
        self.messages.value = next_count
        self.messages.counted(next_count)  # prints "Total messages received: N"

    # --8<-- [end:lesson]
