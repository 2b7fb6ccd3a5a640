"""The runs behind the pictures: real containers of the lab, never a simulation.

Each run returns the raw data its picture is drawn from (written beside it as JSON). Two stacks
of the bench's plumbing (``echolab_bench.docker.Stack``) serve them, one after the other, in a
compose project of their own: the lessons' stack as users meet the lab (the tutorial's delays,
a log line per message, ports published on ephemeral host ports so the host can time its own
sockets), then a quiet, pinned stack for the readiness costs (a log line per message would cost
more than what is measured). The sleeps below are the choreography of the experiment (how long
the first client holds on), never a wait for readiness.
"""

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from echolab_bench.docker import BenchError, Cgroup, Stack
from echolab_bench.measure import loadgen_report
from echolab_host import DockerError, Exec, exec_output
from echolab_loadgen.experiment import read_echo
from echolab_loadgen.report import ExperimentReport, SustainedReport
from echolab_server.settings import Settings

from . import logs
from .documents import BusyRun, ClientTimes, CostPoint, RaceResult, WaitingLine

TIMEOUT_S = 30.0  # the longest any socket here waits: far past the hold, and a loaded machine
IDLE_OPENERS = 8  # loadgen processes opening idle connections at once
IDLE_HOLD_MAX_S = 900.0  # idle connections are let go at the end of their block, or after this


def log_of(stack: Stack, service: str) -> str:
    return stack.compose("logs", "--no-color", "--no-log-prefix", "--timestamps", service)


def experiment(
    stack: Stack, variants: Sequence[str], clients: int, repeat: int
) -> dict[str, RaceResult]:
    """The tutorial's experiment (``clients`` loops of ``repeat`` one-message connections, from
    loadgen's container) on each variant at once; then each server's printed totals."""
    with ThreadPoolExecutor(len(variants)) as pool:
        pending = {
            v: pool.submit(
                loadgen_report,
                stack,
                ExperimentReport,
                *("--target", f"server-{v}", "--clients", str(clients), "--repeat", str(repeat)),
                timeout=600,
            )
            for v in variants
        }
        reports = {v: report.result() for v, report in pending.items()}
    out: dict[str, RaceResult] = {}
    for v in variants:
        points = logs.totals(log_of(stack, f"server-{v}"))
        if len(points) != clients * repeat:
            raise BenchError(f"server-{v} printed {len(points)} totals, not {clients * repeat}")
        out[v] = {
            "points": points,
            "sent": reports[v].sent,
            "echoed": reports[v].echoed,
            "server_counted": reports[v].server_counted,
            "lost_updates": logs.lost_updates(points),
            "elapsed_s": reports[v].duration_s,
        }
    return out


def message(client: int) -> bytes:
    return f"client {client}".encode()


def hello(address: tuple[str, int], client: int) -> tuple[socket.socket, float, float]:
    """Connect as ``client`` and send its own message: (socket, connected at, sent at)."""
    sock = socket.create_connection(address, timeout=TIMEOUT_S)
    connected = time.time()
    sock.sendall(message(client))
    return sock, connected, time.time()


def echo_at(sock: socket.socket, client: int) -> float:
    """When ``client``'s whole echo came back; BenchError if it did not."""
    expected = message(client)
    echo = read_echo(sock, len(expected))
    if echo != expected:
        raise BenchError(f"client {client} got {echo!r} back, not {expected!r}")
    return time.time()


def waiting_line(
    stack: Stack, variant: str, holders: int, gap_s: float, hold_s: float
) -> WaitingLine:
    """The second-client experiment on a time line, timed by the host's own sockets.

    ``holders`` clients connect and are served one after the other (each proves it with its
    echo) and stay connected; ``gap_s`` later one more connects and sends; ``hold_s`` after
    that the first holder leaves. Returns every client's times (seconds from the first
    connect) and, from the server's log, when it accepted the newcomer.
    """
    service = f"server-{variant}"
    address = stack.address(service, Settings.port)
    clients: list[dict[str, float]] = []  # each client's times, by event, and its number
    held: list[socket.socket] = []
    try:
        for client in range(1, holders + 1):
            sock, connected, sent = hello(address, client)
            held.append(sock)
            clients.append({"client": client, "connected": connected, "sent": sent})
            clients[-1]["echoed"] = echo_at(sock, client)
        time.sleep(gap_s)
        newcomer = holders + 1
        sock, connected, sent = hello(address, newcomer)
        held.append(sock)
        clients.append({"client": newcomer, "connected": connected, "sent": sent})
        sock.settimeout(hold_s)
        try:
            early = sock.recv(1)  # the lesson says nothing comes back while client 1 holds on
        except TimeoutError:
            early = None
        leaves = time.time()
        held[0].close()
        clients[0]["left"] = leaves
        sock.settimeout(TIMEOUT_S)
        if early is not None:
            why = f"answered {early!r}" if early else "closed the connection"
            raise BenchError(f"{service} {why} to client {newcomer} while client 1 held on")
        clients[-1]["echoed"] = echo_at(sock, newcomer)
    finally:
        for sock in held:
            sock.close()
    ends = time.time()
    for entry in clients:
        entry.setdefault("left", ends)
    # The server accepts in the order the clients connected, one after the other.
    accepted = logs.accepted_at(log_of(stack, service))[newcomer - 1]
    start = clients[0]["connected"]
    return {
        "clients": [since(start, entry) for entry in clients],
        "server": {"accepted_newcomer": round(accepted - start, 4)},
        "waited_s": round(clients[-1]["echoed"] - clients[-1]["sent"], 4),
    }


def since(start: float, entry: dict[str, float]) -> ClientTimes:
    """A client's times in seconds from ``start``."""

    def at(event: str) -> float:
        return round(entry[event] - start, 4)

    return {
        "client": int(entry["client"]),
        "connected": at("connected"),
        "sent": at("sent"),
        "echoed": at("echoed"),
        "left": at("left"),
    }


@contextlib.contextmanager
def idle_connections(
    stack: Stack,
    host: str,
    count: int,
    hold_s: float = IDLE_HOLD_MAX_S,
    openers: int = IDLE_OPENERS,
) -> Iterator[tuple[int, str | None]]:
    """``count`` idle connections from loadgen's container, held for the ``with`` block (at
    most ``hold_s``): yields (how many opened, why the first that failed did, or None).

    ``openers`` loadgen processes open them at once: each connection is proved live by an
    echo, so one by one they would take a round trip each. An opener that fails still holds
    what it opened: to find how many a server holds at once, use one opener (the others could
    go on once it lets go). At the end each opener is interrupted by its own process id.
    """
    shares = [count // openers + (i < count % openers) for i in range(openers)]
    procs: list[Exec] = []
    pids: list[str] = []
    opened = 0
    failures: list[str] = []
    try:
        for share in filter(None, shares):
            argv = ["sh", "-c", 'echo $$ && exec python3 -m echolab_loadgen "$@"', "idle", "--json"]
            argv += ["--target", host, "--idle", str(share), "--hold", f"{hold_s:g}"]
            argv += ["--timeout", f"{TIMEOUT_S:g}"]
            procs.append(Exec(stack.loadgen_container, argv, stderr=True))
        for proc in procs:
            pids.append(proc.readline(TIMEOUT_S).strip())
            # Printed once its connections are open, then held.
            line = proc.readline(IDLE_HOLD_MAX_S)
            held: dict[str, Any] = (
                json.loads(line) if line.strip() else {"idle_open": 0, "idle_failure": "none"}
            )
            opened += held["idle_open"]
            failures += filter(None, [held["idle_failure"]])
        yield opened, failures[0] if failures else None
    finally:
        for proc, pid in zip(procs, pids, strict=False):
            if proc.state()["Running"] and pid.isdigit():  # the image has kill as sh's builtin only
                interrupt = ["sh", "-c", 'kill -INT "$1"', "kill", pid]
                exec_output(stack.loadgen_container, interrupt, check=False)
        for proc in procs:
            try:
                proc.output(60)
            except DockerError:
                raise BenchError(f"an idle opener to {host} did not end when told to") from None


def readiness_cost(
    stack: Stack,
    targets: dict[str, tuple[Cgroup, int | None]],
    levels: Sequence[int],
    runs: int,
    duration_s: float,
    report: Callable[[str, CostPoint], None],
) -> dict[str, list[CostPoint]]:
    """Per variant and number of idle connections held: server CPU and latency per echo of one
    busy client (``runs`` loadgen runs of ``duration_s``), read from the server's cgroup.

    ``targets`` is {variant: (Cgroup, descriptor ceiling or None)}. A level the variant cannot
    watch (select past FD_SETSIZE) is still tried once, idle only: what stopped it is the point.
    ``report(variant, point)`` is told each point as it is measured.
    """
    out: dict[str, list[CostPoint]] = {}
    for variant, (cgroup, ceiling) in targets.items():
        host = f"server-{variant}"
        points: list[CostPoint] = []
        out[variant] = points
        for level in levels:
            if ceiling is not None and level >= ceiling:
                with idle_connections(stack, host, level, hold_s=0, openers=1) as (opened, why):
                    points.append({"idle": level, "idle_open": opened, "idle_failure": why})
                report(variant, points[-1])
                break
            with idle_connections(stack, host, level) as (opened, failure):
                if failure:
                    raise BenchError(f"{host} held {opened} of {level} idle connections: {failure}")
                measured = [busy_client(stack, host, cgroup, duration_s) for _ in range(runs)]
            points.append({"idle": level, "idle_open": opened, "runs": measured})
            report(variant, points[-1])
    return out


def busy_client(stack: Stack, host: str, cgroup: Cgroup, duration_s: float) -> BusyRun:
    """One loadgen connection sending for ``duration_s``, each message after the last echo;
    the server's CPU over the run (its cgroup) per echoed message, and the latency."""
    before = cgroup.cpu_s()
    result = loadgen_report(
        stack,
        SustainedReport,
        *("--target", host, "--connections", "1", "--duration", f"{duration_s:g}"),
        *("--timeout", f"{TIMEOUT_S:g}"),
        timeout=duration_s + 120,
    )
    cpu = cgroup.cpu_s() - before
    if not result.echoed or result.missing or result.errors:
        raise BenchError(f"{host}: the busy client failed: {result.first_error}")
    return {
        "echoed": result.echoed,
        "server_cpu_s": round(cpu, 4),
        "server_us_per_msg": round(1e6 * cpu / result.echoed, 2),
        "p50_us": result.latency_us.p50,
        "p99_us": result.latency_us.p99,
    }
