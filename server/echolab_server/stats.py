"""The stats endpoint: the server's totals for programs, without parsing log prose.

``GET /stats`` answers JSON, ``GET /metrics`` Prometheus text, ``GET /health`` 200 once the
echo port is listening. It runs on its own port, so asking never sends echo traffic and never
changes a count.

Anyone who reaches the port can misuse it, and it must never cost the echo service more than a
fixed amount (issue 13: with a thread per connection and no time limit, 4,200 idle connections
used up the container's ``pids_limit`` and the echo port could start no thread). So the endpoint
is one thread running one ``selectors`` loop over non-blocking sockets, with fixed bounds:

- the kernel hands over a connection only once its first bytes are in (``TCP_DEFER_ACCEPT``;
  a silent one after about a second), so a connection that never speaks costs nothing meanwhile;
- at most ``max_open`` (64) connections are held at once. One past that gets one look: if its
  whole request is already in (as a healthcheck's is) it is answered at once, else it is reset
  at once. Nothing waits in a thread or in memory, only in the kernel's listen backlog;
- the request head must arrive within ``deadline`` (5 s) of the accept, and the answer must be
  taken by then too, or the connection is closed;
- the head may be at most ``HEAD_LIMIT`` (8 KiB): a longer one, or one that is not an HTTP
  request line, gets a 400 and is closed;
- when accept() fails (out of descriptors) accepting pauses briefly instead of spinning;
- each kind of problem makes at most one log line per ``PROBLEM_WINDOW``, with its count,
  through the server's Log (whole lines, flushed), never a traceback.

Every answer is small and closes the connection (HTTP/1.0 style, ``Connection: close``): all
that healthchecks, tests, loadgen and the bench need.

``/metrics`` adds what the server's own counters cannot say and a student watches in Prometheus
(docs/watch.md): its threads, resident memory and open descriptors, read from ``/proc`` for
the server's processes (prefork: the parent and its workers), so threads against epoll under
a thousand idle connections is a graph, not a guess.
"""

import json
import os
import re
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus

from .log import Log

Snapshot = Callable[[], dict[str, object]]
Processes = Callable[[], list[int]]

MAX_OPEN = 64  # stats connections at once; far below every container limit
DEADLINE = 5.0  # seconds from accept to the answer taken
HEAD_LIMIT = 8 * 1024  # bytes of request line and headers
PROBLEM_WINDOW = 10.0  # seconds: at most one log line per kind of problem in each
_BACKLOG = 1024  # a flood waits in the kernel and is closed at once, not behind a tiny queue
_ACCEPT_PAUSE = 0.1  # seconds without accept() after it failed, so the loop does not spin
_RECV_SIZE = 4096
_HEAD_END = re.compile(rb"\r?\n\r?\n")  # the blank line after the headers
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets

# name in /stats -> (Prometheus metric, type, help)
_METRICS = {
    "messages": ("echolab_messages_total", "counter", "Messages counted (recv() calls with data)."),
    "bytes_received": ("echolab_received_bytes_total", "counter", "Bytes received."),
    "bytes_sent": ("echolab_sent_bytes_total", "counter", "Bytes echoed back."),
    "connections_total": ("echolab_connections_total", "counter", "Connections accepted."),
    "connections_current": ("echolab_connections", "gauge", "Connections open now."),
    "connections_refused": (
        "echolab_refused_connections_total",
        "counter",
        "Connections refused at a limit.",
    ),
    "uptime_s": ("echolab_uptime_seconds", "gauge", "Seconds since the server started."),
}


# name in process_figures() -> (Prometheus metric, help); all gauges. Summed over the server's
# processes: for prefork the parent and its workers, each worker's memory its own (spawned, so
# they share little beyond the interpreter's files; what they share is counted once per process).
_PROCESS_METRICS = {
    "processes": ("echolab_processes", "Processes of the server (prefork: parent and workers)."),
    "threads": ("echolab_threads", "Threads of the server's processes, the stats thread too."),
    "resident_bytes": (
        "echolab_resident_memory_bytes",
        "Resident memory (VmRSS) summed over the server's processes.",
    ),
    "open_fds": ("echolab_open_fds", "Open file descriptors of the server's processes."),
}


def process_figures(pids: Iterable[int]) -> dict[str, int]:
    """Processes, threads, resident bytes and open descriptors of ``pids``, from /proc; one
    that has ended (or is a zombie) is not counted. A few reads per process, whatever its
    threads and connections: the server with a thousand threads must still answer quickly."""
    totals = dict.fromkeys(_PROCESS_METRICS, 0)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status)
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields["State"].split()[0] == "Z":
            continue
        totals["processes"] += 1
        totals["threads"] += int(fields["Threads"])
        totals["resident_bytes"] += int(fields["VmRSS"].split()[0]) * 1024
        totals["open_fds"] += fds
    return totals


def prometheus_text(snapshot: dict[str, object], process: dict[str, int]) -> str:
    """The counters of ``snapshot`` and the figures of ``process``, each with HELP and TYPE."""
    label = f'{{variant="{snapshot["variant"]}"}}'
    rows = [(*_METRICS[key], snapshot[key]) for key in _METRICS]
    rows += [
        (metric, "gauge", text, process[key]) for key, (metric, text) in _PROCESS_METRICS.items()
    ]
    lines = []
    for metric, kind, text, value in rows:
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", f"{metric}{label} {value}"]
    return "\n".join(lines) + "\n"


def _response(status: HTTPStatus, content_type: str, body: str) -> bytes:
    data = body.encode()
    head = (
        f"HTTP/1.0 {status.value} {status.phrase}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + data


class _Problems:
    """Counts problems by kind; logs a kind at once, then at most once per window, with the
    count since its last line. A message is a template with ``{count}`` and ``{s}`` (plural)."""

    def __init__(self, log: Log, window: float) -> None:
        self._log = log
        self._window = window
        self._pending: dict[str, tuple[int, str]] = {}
        self._quiet_until: dict[str, float] = {}

    def note(self, kind: str, message: str, now: float) -> None:
        count = self._pending.get(kind, (0, message))[0] + 1
        self._pending[kind] = (count, message)
        if now >= self._quiet_until.get(kind, 0.0):
            self._write(kind, now)

    def flush(self, now: float) -> float | None:
        """Write the lines whose window has ended; return when the next one is due, if any."""
        for kind in [kind for kind in self._pending if now >= self._quiet_until[kind]]:
            self._write(kind, now)
        return min((self._quiet_until[kind] for kind in self._pending), default=None)

    def _write(self, kind: str, now: float) -> None:
        count, message = self._pending.pop(kind)
        self._log.line("Stats port: " + message.format(count=count, s="" if count == 1 else "s"))
        self._quiet_until[kind] = now + self._window


class _Connection:
    """One stats connection: the head read so far, then the answer still to send."""

    __slots__ = ("answer", "deadline", "head", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.head = bytearray()
        self.answer = memoryview(b"")


class StatsEndpoint:
    """The stats port: one thread, one selector loop, bounded in connections, time and bytes."""

    def __init__(
        self,
        host: str,
        port: int,
        snapshot: Snapshot,
        ready: threading.Event,
        log: Log,
        *,
        max_open: int = MAX_OPEN,
        deadline: float = DEADLINE,
        processes: Processes = lambda: [os.getpid()],
    ) -> None:
        self._snapshot = snapshot
        self._processes = processes
        self._ready = ready
        self._max_open = max_open
        self._deadline = deadline
        self._problems = _Problems(log, PROBLEM_WINDOW)
        self._listener = socket.create_server((host, port), backlog=_BACKLOG)
        # Deferred accept: the kernel hands over a connection only once its first bytes are in
        # (or after about a second): a connection that never speaks costs nothing until then.
        self._listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake, self._waker = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake, selectors.EVENT_READ)
        # Insertion order is deadline order: every deadline is accept time + the same delay.
        self._open: dict[socket.socket, _Connection] = {}
        self._accept_paused_until: float | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="stats", daemon=True)

    @property
    def connections(self) -> int:
        """Stats connections held now: at most ``max_open``, whatever a client does."""
        return len(self._open)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the loop (it closes every stats connection) and release the port, at once."""
        self._closing = True
        self._waker.send(b"\0")
        if self._thread.is_alive():
            self._thread.join()
        self._selector.close()
        for sock in (self._listener, self._wake, self._waker):
            sock.close()

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing:
                now = time.monotonic()
                self._expire(now)
                if self._accept_paused_until is not None and now >= self._accept_paused_until:
                    self._accept_paused_until = None
                    self._selector.register(self._listener, selectors.EVENT_READ)
                maybe_due = [self._problems.flush(now), self._accept_paused_until]
                if self._open:
                    maybe_due.append(next(iter(self._open.values())).deadline)
                due = [when for when in maybe_due if when is not None]
                timeout = max(0.0, min(due) - now) if due else None
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.data is not None:  # not the wake-up socket: a stats connection
                        self._serve(key.data)
        finally:
            for conn in list(self._open.values()):
                self._drop(conn)

    def _accept(self) -> None:
        # A bounded batch per wake-up, so that connections already open get their turn.
        for _ in range(self._max_open):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:  # out of descriptors, say: pause rather than spin
                now = time.monotonic()
                reason = error.strerror or str(error)
                message = (
                    f"cannot accept ({reason}), {{count}} time{{s}}: "
                    f"pausing {_ACCEPT_PAUSE:g} s each time"
                )
                self._problems.note("accept", message, now)
                self._selector.unregister(self._listener)
                self._accept_paused_until = now + _ACCEPT_PAUSE
                return
            self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        conn = _Connection(sock, time.monotonic() + self._deadline)
        self._open[sock] = conn
        self._selector.register(sock, selectors.EVENT_READ, conn)
        if len(self._open) > self._max_open:
            # Past the bound: one look at what it sent (deferred accept means a healthcheck's
            # whole request is there), answered at once if that is a whole request, else closed.
            self._serve(conn)
            if sock in self._open:
                message = f"closed {{count}} connection{{s}} at once: {self._max_open} open"
                self._problems.note("full", message, time.monotonic())
                self._drop(conn, reset=True)

    def _expire(self, now: float) -> None:
        while self._open:
            conn = next(iter(self._open.values()))
            if conn.deadline > now:
                return
            message = f"closed {{count}} connection{{s}} not done within {self._deadline:g} s"
            self._problems.note("slow", message, now)
            self._drop(conn, reset=True)

    def _serve(self, conn: _Connection) -> None:
        """Read more of the head or send more of the answer, by the connection's own phase
        (the selector may report both events at once, on an error, say)."""
        try:
            if conn.answer:
                self._send(conn)
            else:
                self._read(conn)
        except BlockingIOError:  # nothing to read after all (a newcomer past the bound, say)
            pass
        except OSError:  # reset or gone: the client's own business, nothing to log
            self._drop(conn)

    def _read(self, conn: _Connection) -> None:
        data = conn.sock.recv(_RECV_SIZE)
        if not data:  # closed before its request was whole
            self._drop(conn)
            return
        conn.head += data
        end = _HEAD_END.search(conn.head)
        if end is not None and end.start() < HEAD_LIMIT:
            conn.answer = memoryview(self._answer(bytes(conn.head[: conn.head.find(b"\n")])))
        elif len(conn.head) > HEAD_LIMIT:
            conn.answer = memoryview(self._bad(f"request head over {HEAD_LIMIT} bytes"))
        else:
            return
        self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        self._send(conn)

    def _send(self, conn: _Connection) -> None:
        sent = conn.sock.send(conn.answer)
        conn.answer = conn.answer[sent:]
        if not conn.answer:
            self._drop(conn)

    def _drop(self, conn: _Connection, *, reset: bool = False) -> None:
        """Close a connection; with ``reset`` at once, leaving no TIME_WAIT on this side."""
        del self._open[conn.sock]
        self._selector.unregister(conn.sock)
        if reset:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        conn.sock.close()

    # -- what it answers ---------------------------------------------------------------------

    def _answer(self, request_line: bytes) -> bytes:
        parts = request_line.rstrip(b"\r").split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return self._bad("not an HTTP request line")
        method, path = parts[0], parts[1]
        if method != b"GET":
            return _response(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", "only GET\n")
        if path == b"/health":
            if self._ready.is_set():
                return _response(HTTPStatus.OK, "text/plain", "ok\n")
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", "starting\n")
        if path == b"/stats":
            # With the endpoint's own load: how many stats connections it holds (this one too).
            totals = self._snapshot() | {"stats_connections": self.connections}
            return _response(HTTPStatus.OK, "application/json", json.dumps(totals) + "\n")
        if path == b"/metrics":
            body = prometheus_text(self._snapshot(), process_figures(self._processes()))
            return _response(HTTPStatus.OK, "text/plain; version=0.0.4", body)
        return _response(HTTPStatus.NOT_FOUND, "text/plain", "try /stats, /metrics or /health\n")

    def _bad(self, why: str) -> bytes:
        self._problems.note("bad", "answered {count} bad request{s} with 400", time.monotonic())
        return _response(HTTPStatus.BAD_REQUEST, "text/plain", f"bad request: {why}\n")
