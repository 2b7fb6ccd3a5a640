"""The load engine: one epoll loop per process, driving many non-blocking connections.

A thread per connection would make loadgen itself a lesson in the GIL; one ``select.epoll`` loop
per process keeps the client cheaper than the servers it measures, and ``--procs`` adds processes
(each its own loop, its own share of the connections) when one core is not enough.

Every connection runs in lock step: send a message, read exactly as many bytes back, compare them
with what was sent, then send the next one.  Consecutive messages differ, so an echo of a stale or
foreign message is caught too.  In the closed loop the next message goes out as soon as the echo is
in, and latency is measured from the actual send.  In the open loop (``rate``) message k of a
connection is due at a fixed time; if the server was slow the message goes out late, but its latency
is still measured from when it was due, so a stall shows up in every message it delayed
(coordinated omission, as wrk2 corrects it).
"""

import errno
import heapq
import os
import random
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .histogram import LatencyRecorder
from .report import LoadTotals

EPOLLOUT = select.EPOLLOUT
READABLE = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
# Message k of connection i is payload (i + k) mod PAYLOAD_VARIANTS: any count of two or more
# gives consecutive messages and neighbouring connections different ones. The count sets how far
# that goes: an echo up to 6 messages stale, or of a connection up to 6 away in step, is a
# different message and so is caught; 7 stays small because each worker holds them all (MAX_SIZE).
PAYLOAD_VARIANTS = 7
PROGRESS_EVERY_NS = 200_000_000
READ_CHUNK = 262_144
# Each worker process holds PAYLOAD_VARIANTS messages in memory, whatever the connection count:
# 16 MiB a message is 112 MiB a worker, so a few workers stay well inside loadgen's 1 GiB.
MAX_SIZE = 16 * 1024 * 1024

# Slots of a worker's row in the shared progress array.
P_SENT, P_ECHOED, P_FAILED = range(3)
PROGRESS_SLOTS = 3


@dataclass(frozen=True)
class Load:
    """What to run against one server; ``messages`` is per connection, ``rate`` is msgs/s in all."""

    host: str
    port: int
    connections: int
    size: int
    messages: int | None = None
    duration: float | None = None
    rate: float | None = None
    timeout: float = 5.0
    cgroup_cpu: bool = False  # also measure the CPU of the cgroup (container) loadgen runs in


# The CPU time of the cgroup this process is in: cgroup v1's cpuacct (ns), v2's cpu.stat (us).
# Inside a container, /sys/fs/cgroup is the container's own cgroup.
CGROUP_V1_CPU = "/sys/fs/cgroup/cpuacct/cpuacct.usage"
CGROUP_V2_CPU = "/sys/fs/cgroup/cpu.stat"


def cgroup_cpu_s() -> float | None:
    """CPU seconds used so far by every process in this cgroup, or None where unreadable."""
    try:
        with open(CGROUP_V1_CPU) as usage:
            return int(usage.read()) / 1e9
    except OSError:
        pass
    try:
        with open(CGROUP_V2_CPU) as stat:
            for line in stat:
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    except OSError:
        pass
    return None


def make_payloads(size: int) -> list[bytes]:
    """Distinct pseudo-random messages of ``size`` bytes (seeded: every run sends the same ones)."""
    rng = random.Random(size)
    return [rng.randbytes(size) for _ in range(PAYLOAD_VARIANTS)]


class Conn:
    __slots__ = ("due", "expected", "fd", "got", "ident", "intact", "out", "seq", "sock", "t0")

    def __init__(self, sock: socket.socket, ident: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.ident = ident
        self.seq = 0
        self.expected = b""
        self.got = 0
        self.intact = True
        self.out: memoryview | None = None  # the unsent rest of the current message
        self.t0 = 0
        self.due = 0


class Engine:
    """Runs ``load`` over ``count`` connections numbered from ``first``; see ``run``."""

    def __init__(
        self, load: Load, first: int, count: int, progress: Any = None, row: int = 0
    ) -> None:
        self.load = load
        self.first = first
        self.count = count
        self.progress = progress
        self.row = row * PROGRESS_SLOTS
        self.payloads = make_payloads(load.size)
        self.ep = select.epoll()
        self.epoll_fd = [self.ep.fileno()]
        self.conns: dict[int, Conn] = {}
        self.recorder = LatencyRecorder()
        self.sent = self.echoed = self.mismatched = self.errors = 0
        # Connections that had an echo back before the end: a server that serves one connection
        # at a time (simple) still answers the others' first messages after the end, one by one.
        self.served = 0
        self.echoed_in_window: int | None = None  # set at the end: no echo of the drain counts
        self.first_error: str | None = None
        self.heap: list[tuple[int, int]] = []
        self.interval_ns = 0
        if load.rate:
            self.interval_ns = round(1e9 * load.connections / load.rate)

    # -- connection set-up ---------------------------------------------------------------------

    def connect(self) -> int:
        """Open every connection at once; return how many are established within the timeout."""
        try:
            infos = socket.getaddrinfo(
                self.load.host, self.load.port, socket.AF_INET, socket.SOCK_STREAM
            )
        except OSError as exc:  # name resolution: fails for every connection alike
            self.fail(exc, count=self.count)
            return 0
        # A name with several addresses (a swarm service's replicas under dnsrr) gets the
        # connections in turns; resolvers sort the answers, so the first alone would take all.
        addresses = list(dict.fromkeys(info[4] for info in infos))
        pending: dict[int, Conn] = {}
        for ident in range(self.first, self.first + self.count):
            address = addresses[ident % len(addresses)]
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                self.fail(OSError(err, os.strerror(err)))
                sock.close()
                continue
            pending[sock.fileno()] = Conn(sock, ident)
            self.ep.register(sock.fileno(), select.EPOLLOUT)
        deadline = time.monotonic() + self.load.timeout
        while pending and (left := deadline - time.monotonic()) > 0:
            for fd, _ in self.ep.poll(left):
                conn = pending.pop(fd)
                err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.drop(conn, OSError(err, os.strerror(err)))
                else:
                    self.ep.modify(fd, select.EPOLLIN)
                    self.conns[fd] = conn
        for conn in pending.values():
            self.drop(conn, TimeoutError(f"connect timed out after {self.load.timeout:g} s"))
        return len(self.conns)

    def fail(self, exc: BaseException, count: int = 1) -> None:
        self.errors += count
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def drop(self, conn: Conn, exc: BaseException) -> None:
        """A connection broke: count it, close it, forget it."""
        self.fail(exc)
        self.close(conn)

    def close(self, conn: Conn) -> None:
        self.conns.pop(conn.fd, None)
        conn.sock.close()  # closing the only descriptor also takes it out of the epoll set

    # -- the lock step -------------------------------------------------------------------------

    def send(self, conn: Conn, t0: int) -> None:
        conn.expected = self.payloads[(conn.ident + conn.seq) % PAYLOAD_VARIANTS]
        conn.got = 0
        conn.intact = True
        conn.t0 = t0
        try:
            n = conn.sock.send(conn.expected)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.drop(conn, exc)
            return
        if n == len(conn.expected):
            self.sent += 1
        else:
            conn.out = memoryview(conn.expected)[n:]
            self.ep.modify(conn.fd, select.EPOLLIN | select.EPOLLOUT)

    def send_rest(self, conn: Conn, out: memoryview) -> None:
        """Send more of ``out``, the unsent rest of ``conn``'s message."""
        try:
            n = conn.sock.send(out)
        except BlockingIOError:
            return
        except OSError as exc:
            self.drop(conn, exc)
            return
        conn.out = out[n:]
        if not conn.out:
            conn.out = None
            self.sent += 1
            self.ep.modify(conn.fd, select.EPOLLIN)

    def absorb(self, conn: Conn, data: bytes) -> bool:
        """The echo arrived in pieces, wrong, or not at all; True once the whole message is in.

        The whole echo in one piece and intact is handled inline in ``run``: it is the usual case.
        """
        if not data:
            self.drop(conn, ConnectionError("server closed the connection"))
            return False
        end = conn.got + len(data)
        if end > len(conn.expected):  # more than was sent: the stream is out of step for good
            self.mismatched += 1
            self.drop(conn, ValueError("server sent more bytes than it was sent"))
            return False
        if conn.intact:
            conn.intact = memoryview(conn.expected)[conn.got : end] == data
        conn.got = end
        if end < len(conn.expected):
            return False
        if conn.intact:
            self.echoed += 1
        else:
            self.mismatched += 1
        return True

    def run(self, go: Callable[[], object] | None = None) -> LoadTotals:
        """Connect, call ``go`` (the start barrier shared by all workers), drive the load, report.

        Bounded in time as well as count: the run ends ``timeout`` seconds after the duration,
        or as soon as ``timeout`` seconds pass without a message sent or echoed (a stalled server).
        """
        connected = self.connect()
        if go is not None:
            go()
        if connected == 0:
            return self.report(0, 0, None)
        cgroup0 = cgroup_cpu_s() if self.load.cgroup_cpu else None
        cpu0 = sum(os.times()[:2])
        start = time.perf_counter_ns()
        load = self.load
        timeout_ns = int(load.timeout * 1e9)
        end_sending = start + int(load.duration * 1e9) if load.duration else None
        limit = load.messages
        conn: Conn | None
        for conn in list(self.conns.values()):
            if load.rate:  # spread the connections' first messages evenly over one interval
                conn.due = start + conn.ident * self.interval_ns // load.connections
                heapq.heappush(self.heap, (conn.due, conn.fd))
            else:
                self.send(conn, start)
        now = last_tick = last_activity = start
        activity = 0
        # The loop below runs once per message: names it uses are bound locally.
        chunk = min(load.size, READ_CHUNK)
        record = self.recorder.record
        perf_counter_ns = time.perf_counter_ns
        while self.conns:
            timeout = self.poll_timeout(now, end_sending)
            if 0 < timeout < 0.001:  # epoll counts whole milliseconds; select waits microseconds
                select.select(self.epoll_fd, (), (), timeout)
                timeout = 0
            events = self.ep.poll(timeout)
            now = time.perf_counter_ns()
            sending = end_sending is None or now < end_sending
            if not sending and self.echoed_in_window is None:
                self.echoed_in_window = self.echoed
            conns = self.conns
            for fd, ev in events:
                conn = conns.get(fd)
                if conn is None:
                    continue
                if ev & EPOLLOUT and conn.out is not None:
                    self.send_rest(conn, conn.out)
                    if fd not in conns:
                        continue
                if not ev & READABLE:
                    continue
                try:
                    data = conn.sock.recv(chunk)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self.drop(conn, exc)
                    continue
                if conn.got == 0 and data == conn.expected:
                    self.echoed += 1
                elif not self.absorb(conn, data):
                    continue
                done = perf_counter_ns()
                record((done - conn.t0) // 1000)
                conn.seq += 1
                if conn.seq == 1 and sending:
                    self.served += 1
                if not sending or (limit is not None and conn.seq >= limit):
                    self.close(conn)
                elif load.rate:
                    self.schedule(conn, now)
                else:
                    self.send(conn, done)
            if self.heap:
                self.release_due(now, sending)
            if now - last_tick >= PROGRESS_EVERY_NS:
                last_tick = now
                self.publish()
                if self.sent + self.echoed + self.mismatched != activity:
                    activity = self.sent + self.echoed + self.mismatched
                    last_activity = now
                if now - max(last_activity, end_sending or 0) >= timeout_ns:
                    break
        window = end_sending if end_sending and now >= end_sending else now
        for conn in list(self.conns.values()):
            self.close(conn)  # still waiting for an echo when the time was up: counted as missing
        cpu_s = sum(os.times()[:2]) - cpu0
        cgroup = None
        if cgroup0 is not None and (cgroup1 := cgroup_cpu_s()) is not None:
            cgroup = cgroup1 - cgroup0
        return self.report(window - start, cpu_s, cgroup)

    def poll_timeout(self, now: int, end_sending: int | None) -> float:
        """Seconds until the next due message or the end, in whole ms where it is a ms or more.

        Rounding down wakes the loop early rather than late: a late wake-up would be counted as
        server latency in the open loop.  The sub-millisecond rest goes to ``select``.
        """
        wake = self.heap[0][0] if self.heap else None
        if end_sending is not None and now < end_sending:
            wake = end_sending if wake is None else min(wake, end_sending)
        if wake is None:
            return PROGRESS_EVERY_NS / 1e9
        left = max(wake - now, 0)
        if left >= 1_000_000:
            left -= left % 1_000_000
        return min(left, PROGRESS_EVERY_NS) / 1e9

    def schedule(self, conn: Conn, now: int) -> None:
        conn.due += self.interval_ns
        if conn.due <= now:
            self.send(conn, conn.due)
        else:
            heapq.heappush(self.heap, (conn.due, conn.fd))

    def release_due(self, now: int, sending: bool) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            due, fd = heapq.heappop(heap)
            conn = self.conns.get(fd)
            if conn is None:
                continue
            if sending:
                self.send(conn, due)
            else:
                self.close(conn)
        if not sending:
            for _, fd in heap:
                if fd in self.conns:
                    self.close(self.conns[fd])
            heap.clear()

    def publish(self) -> None:
        if self.progress is not None:
            row = self.row
            self.progress[row + P_SENT] = self.sent
            self.progress[row + P_ECHOED] = self.echoed
            self.progress[row + P_FAILED] = self.errors + self.mismatched

    def report(self, elapsed_ns: int, cpu_s: float, cgroup_cpu_s: float | None) -> LoadTotals:
        self.publish()
        self.ep.close()
        return LoadTotals(
            sent=self.sent,
            echoed=self.echoed,
            echoed_in_window=self.echoed
            if self.echoed_in_window is None
            else self.echoed_in_window,
            mismatched=self.mismatched,
            errors=self.errors,
            served=self.served,
            elapsed_s=elapsed_ns / 1e9,
            cpu_s=cpu_s,
            cgroup_cpu_s=cgroup_cpu_s,
            recorder=self.recorder,
            first_error=self.first_error,
        )
