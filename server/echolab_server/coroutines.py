"""The coroutine family: asyncio streams, one coroutine per connection, on one event loop.

The handler reads like the blocking family's (read, count, write, until the client closes),
but each ``await`` hands the thread back to the event loop instead of blocking it: the shape of
the thread-per-connection program at the cost of the event loop. The variants differ only in
the loop (``new_event_loop``) and in what serves a connection (``serve_connection``): the
asyncio variant's coroutine (which uvloop runs on its own loop), or the protocol variant's
callbacks. Everything around them is here: accepting, limits, the signals, stop.

What echolab adds to the textbook ``asyncio.start_server`` echo:
- accepting goes through the core's ``accept()`` when the loop reports the listener readable,
  so connection limits, refusals and their log lines are the same as every other variant's;
  each admitted socket is then handed to asyncio streams (``open_connection(sock=...)``);
- backpressure: the transport buffers what the kernel does not take at once, and past
  ``--output-cap`` buffered bytes ``await writer.drain()`` waits until the client has read
  some; meanwhile the coroutine reads nothing more, so a client that never reads cannot make
  the server grow. Bytes sent are counted when handed to the transport, so what is still
  unsent is what the transports hold (``unsent_bytes``);
- out of descriptors (EMFILE), the loop stops watching the listener for a moment and watches
  it again later (``call_later``), as asyncio's own server does; nobody else waits;
- a half-closed client still gets its whole echo (``writer.close()`` sends what is buffered
  first), and a reset ends only its own coroutine;
- stop: while the loop runs, SIGTERM and SIGINT reach ``stop()`` through the loop's own
  ``add_signal_handler``: an event loop takes the signal wakeup fd for itself (uvloop does
  whenever it runs), so the core's signal watcher would not hear them. ``stop()`` schedules
  the wake-up with ``call_soon_threadsafe``, the loop stops accepting, and ``serve`` ends with
  ShutdownRequested, as in every variant. ``close_connections`` then cancels every connection's
  coroutine (each aborts its transport: no waiting for clients that do not read).
"""

import asyncio
import concurrent.futures
import contextlib
import signal
import socket
from abc import abstractmethod
from typing import Any

from .server import EchoServer, ShutdownRequested

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class CoroutineServer(EchoServer):
    """Runs the accept callback and the connection coroutines on ``new_event_loop()``'s loop."""

    family = "coroutines"

    @abstractmethod
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this variant teaches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runner = asyncio.Runner(loop_factory=self.new_event_loop)
        # For other threads (stop, unsent_bytes); code the loop runs asks get_running_loop().
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.transports: set[asyncio.WriteTransport] = set()  # buffers count as unsent
        self._accept_again: asyncio.TimerHandle | None = None

    def serve(self) -> None:
        self._runner.run(self._serve())
        raise ShutdownRequested

    def stop(self) -> None:
        """Wake the loop; safe from the loop's signal handler and from any thread.

        The listener is left alone: shutting it down under the loop would make it report
        "readable" forever. The loop itself stops watching it, then the core closes it.
        """
        self.stopping = True
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._finish)

    def pause_accepting(self, seconds: float) -> None:
        """Stop watching the listener, and watch it again in ``seconds`` (on the loop's thread)."""
        loop = asyncio.get_running_loop()
        listening_fd = self.listener.fileno()
        loop.remove_reader(listening_fd)
        self._accept_again = loop.call_later(
            seconds, loop.add_reader, listening_fd, self._accept_ready
        )

    def unsent_bytes(self) -> int:
        """Also what the transports hold, read on the loop's thread (from any other)."""
        if self._loop is None:  # not serving yet: no transport
            return super().unsent_bytes()
        held: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(
            lambda: held.set_result(sum(t.get_write_buffer_size() for t in self.transports))
        )
        return super().unsent_bytes() + held.result()

    def close_connections(self) -> None:
        # Runner.close() cancels every task still running (the connection coroutines, whose
        # ``finally`` aborts the transport and counts the close), waits for them, and closes
        # the loop.
        self._runner.close()

    async def _serve(self) -> None:
        self._done = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()  # from here on stop() wakes the loop
        if self.stopping:  # the signal came before there was a loop to wake
            return
        listening_fd = self.listener.fileno()
        self.listener.setblocking(False)
        self._loop.add_reader(listening_fd, self._accept_ready)
        core_handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        for sig in _SIGNALS:
            self._loop.add_signal_handler(sig, self.stop)
        try:
            await self._done
        finally:
            for sig, handler in core_handlers.items():  # the core's again: repeats are ignored
                self._loop.remove_signal_handler(sig)
                signal.signal(sig, handler)
            if self._accept_again is not None:
                self._accept_again.cancel()
            self._loop.remove_reader(listening_fd)

    def _finish(self, error: BaseException | None = None) -> None:
        if self._done is not None and not self._done.done():
            if error is None:
                self._done.set_result(None)
            else:
                self._done.set_exception(error)

    def _accept_ready(self) -> None:
        """Accept what is waiting, a bounded batch at a time, and start a coroutine for each."""
        loop = asyncio.get_running_loop()
        try:
            for _ in range(64):
                accepted = self.accept()
                if accepted is None:
                    return
                task = loop.create_task(self.serve_connection(*accepted))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception as error:  # the listener is broken: end serve() with the error
            self._finish(error)

    @abstractmethod
    async def serve_connection(self, conn: socket.socket, addr: tuple) -> None:
        """Serve one admitted connection until it ends, then ``release`` it: the variant's
        lesson (asyncio: a coroutine over streams; protocol: callbacks)."""
