"""pool: a ThreadPoolExecutor with 10 workers, the tutorial's handle_new_connections_thread_pool().

Threads are reused instead of created per connection, and at most ``--workers`` clients are
served at once: the 11th is accepted but waits in the pool's queue until a worker is free.

The tutorial counts with ``messageCounter.append(data)``, relying on list.append being atomic
under CPython's GIL, and keeps every message ever received. echolab uses a lock instead: the
list grows without bound, and the tutorial itself warns that the GIL is no portable guarantee.
"""
# Plumbing (the handler loop, counting under a lock, shutdown: blocking; log, stats: server)

from concurrent.futures import ThreadPoolExecutor

from ..blocking import BlockingEchoServer
from ..settings import Settings


# --8<-- [start:lesson]
class PoolServer(BlockingEchoServer):
    variant = "pool"
    step = 7
    serves_at_once = Settings.workers  # by default; --workers sets it

    def serve(self) -> None:
        pool = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="worker")
        try:
            for conn, addr in self.accept_forever():
                pool.submit(self.handle, conn, addr)
        finally:
            # Not wait=True: busy workers are still blocked in recv. close_connections() wakes
            # them next, and queued connections, shut down too, finish as soon as they start.
            pool.shutdown(wait=False)

    # --8<-- [end:lesson]
