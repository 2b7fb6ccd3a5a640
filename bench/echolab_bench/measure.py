"""Measurement: interleaved rounds of runs, what each run cost whom, and each cell's spread.

A round runs every row (variant or extra server) once under one load; rounds repeat, and each
starts one row further along, so drift on a shared machine (another job starting, a cache
warming) lands on every row alike instead of on whichever ran last.  A cell is the median of
its rounds, with the min and max beside it.
"""

import json
import shlex
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from echolab_common.record import Record, extend
from echolab_host import Exec
from echolab_loadgen.report import IdleReport, SustainedReport

from .docker import BenchError, Cgroup, Stack
from .results import (
    BenchRun,
    BoundName,
    Cell,
    IdleBaseline,
    IdleCosts,
    IdleHeld,
    LatencyPlan,
    RowKind,
)

LOADS = ((1, 64), (10, 64), (100, 64), (10, 65536))  # (connections, message size)
IDLE_LEVELS = (0, 100, 1000, 10_000)  # 10,000: the C10K check
IDLE_CAP = 10_000  # the most idle connections the probe tries: well past select's 1024
SATURATED = 0.9  # a process group using this share of the CPU it may use is what bound the run
SPREAD_FLAG = 0.2  # (max - min) / median above this: the cell is flagged
OWED_S = 2  # echoes still owed this long after a run's window are missing
RUN_OVERHEAD_S = 0.8  # docker exec, connecting, the drain (for the time estimate only)
ROW_OVERHEAD_S = 15.0  # the idle probes of one variant (for the time estimate only)
R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Plan:
    variants: tuple[str, ...]
    extras: tuple[tuple[str, str, int], ...]  # (name, host, port)
    c_ruler: bool  # the C ruler's row too
    loads: tuple[tuple[int, int], ...]
    duration: float
    rounds: int
    warmup: float
    procs: int
    work_delay: float
    idle_levels: tuple[int, ...]  # empty: no idle probes
    idle_cap: int

    def rows(self) -> int:
        return len(self.variants) + len(self.extras) + self.c_ruler

    def estimate_s(self) -> float:
        runs = self.rows() * len(self.loads)
        timed = runs * (self.rounds * (self.duration + RUN_OVERHEAD_S) + self.warmup)
        return timed + (len(self.variants) * ROW_OVERHEAD_S if self.idle_levels else 0)


@dataclass
class Target:
    """One row: where loadgen sends, and whose CPU is read."""

    name: str
    kind: RowKind  # "variant", "extra" or "ruler" (the C server)
    host: str
    port: int
    stats_port: int  # 0: no stats
    cgroup: Cgroup | None  # None: not a container, no CPU figures
    cpus: int | None  # how many CPUs its cpuset allows; None: not known


def loadgen_report(stack: Stack, kind: type[R], *args: str, timeout: float) -> R:
    """One loadgen run in the bench's loadgen container; its report (exit 1 still has one)."""
    return last_report(stack.loadgen(*args, "--json"), kind, args, timeout)


def last_report(
    process: Exec, kind: type[R], args: Sequence[str], timeout: float, who: str = "loadgen"
) -> R:
    """The report a run (loadgen, or a generator printing its reports) printed last."""
    lines = process.output(timeout).strip().splitlines()
    return read_loadgen_line(kind, lines[-1] if lines else "", args, who)


def read_loadgen_line(kind: type[R], line: str, args: Sequence[str], who: str = "loadgen") -> R:
    """The report ``who`` (loadgen, or a generator printing its reports) printed as ``line``;
    BenchError if it is none of ``kind``."""
    try:
        return kind.from_json(json.loads(line))
    except ValueError as exc:
        raise BenchError(f"{who} gave no result for {shlex.join(args)}: {exc}") from None


@dataclass(frozen=True)
class Bound:
    """What limited a run, and so what its figures may be compared for."""

    mark: str  # in tables
    name: str
    when: str
    compare: str
    hollow: bool  # drawn hollow in every chart: the figure is not the server's


# The one rule for every bound: tables, charts, the latency report and docs/latency.md read it.
BOUNDS: dict[BoundName, Bound] = {
    "server": Bound(
        "S",
        "server-bound",
        f"the server used >= {SATURATED:.0%} of its CPU set, loadgen less of its own",
        "everything: throughput, latency and CPU per message are the server's own",
        hollow=False,
    ),
    "client": Bound(
        "C",
        "client-bound",
        f"loadgen used >= {SATURATED:.0%} of what it may use, the server less",
        "only the server's CPU per message: throughput is loadgen's ceiling, and latency "
        "includes loadgen's own lag (a faster server would show the same)",
        hollow=True,
    ),
    "both": Bound(
        "C+S",
        "both",
        f"both used >= {SATURATED:.0%}",
        "only the server's CPU per message: loadgen was at its ceiling too, so neither "
        "throughput nor latency can be credited to the server alone",
        hollow=True,
    ),
    "elsewhere": Bound(
        "E",
        "bound elsewhere",
        f"neither reached {SATURATED:.0%}",
        "latency and CPU per message; throughput only where the rate was offered (open loop, "
        "below capacity). In a closed loop it is the round trip's ceiling (network path, kernel), "
        "not the server's",
        hollow=False,
    ),
}


def bound_rule() -> list[str]:
    """The rule as Markdown list items, one per bound, for tables and docs alike."""
    return [f"- `{b.mark}` {b.name}: {b.when}. Compare {b.compare}." for b in BOUNDS.values()]


def bound(server_share: float | None, loadgen_share: float | None) -> BoundName:
    """What limited a run: the client, the server, both, or neither (the network and kernel)."""
    client = loadgen_share is not None and loadgen_share >= SATURATED
    server = server_share is not None and server_share >= SATURATED
    bounds: dict[tuple[bool, bool], BoundName] = {
        (True, True): "both",
        (True, False): "client",
        (False, True): "server",
    }
    return bounds.get((client, server), "elsewhere")


def loadgen_run(
    stack: Stack,
    target: Target,
    load: tuple[int, int],
    duration: float,
    rate: float | None,
    procs: int,
) -> SustainedReport:
    """One run of Python loadgen (``procs`` processes): its report."""
    connections, size = load
    args = [
        *("--target", target.host, "--port", str(target.port)),
        *("--stats-port", str(target.stats_port), "--connections", str(connections)),
        *("--size", str(size), "--duration", f"{duration:g}", "--procs", str(procs)),
        *("--timeout", str(OWED_S), "--cgroup-cpu"),
        *(("--rate", f"{rate:g}") if rate else ()),
    ]
    return loadgen_report(stack, SustainedReport, *args, timeout=duration + 60)


# How a run is made: (stack, target, load, duration, rate or None, processes) -> its report.
Generator = Callable[[Stack, Target, tuple[int, int], float, float | None, int], SustainedReport]


def measure(
    stack: Stack,
    plan: Plan | LatencyPlan,
    target: Target,
    load: tuple[int, int],
    duration: float,
    rate: float | None = None,
    procs: int | None = None,
    generator: Generator = loadgen_run,
) -> BenchRun:
    """One run of ``generator``, with the server's CPU (around it) and the generator's (over
    its window).

    Closed loop, or open loop at ``rate`` msgs/s; ``procs`` loadgen processes (default the plan's).
    """
    procs = procs or plan.procs
    before = target.cgroup.cpu_s() if target.cgroup else None
    result = generator(stack, target, load, duration, rate, procs)
    window, echoed = result.duration_s, result.echoed
    server_cpu = None if before is None or not target.cgroup else target.cgroup.cpu_s() - before
    loadgen_cpu = result.cgroup_cpu_s
    # Shares of what each side may use: the server its cpuset, loadgen its processes (at most
    # its cpuset), so 1.0 is "could not have gone faster on its own CPU".
    server_share = loadgen_share = None
    server_percent = loadgen_percent = None
    if window and server_cpu is not None and target.cpus:
        server_share = server_cpu / window / target.cpus
        server_percent = round(100 * server_cpu / window, 1)
    if window and loadgen_cpu is not None:
        loadgen_share = loadgen_cpu / window / min(procs, stack.loadgen_cores)
        loadgen_percent = round(100 * loadgen_cpu / window, 1)
    return extend(
        BenchRun,
        result,
        server_cpu_s=None if server_cpu is None else round(server_cpu, 4),
        server_cpu_percent=server_percent,
        server_us_per_msg=round(1e6 * server_cpu / echoed, 2) if server_cpu and echoed else None,
        loadgen_cpu_s=loadgen_cpu,
        loadgen_cgroup_cpu_percent=loadgen_percent,
        loadgen_us_per_msg=round(1e6 * loadgen_cpu / echoed, 2) if loadgen_cpu and echoed else None,
        bound=bound(server_share, loadgen_share),
    )


def rounds(
    stack: Stack,
    plan: Plan,
    targets: list[Target],
    report: Callable[[str, tuple[int, int], Cell], object],
) -> dict[str, list[Cell]]:
    """Every load: a warm-up run of each row, then ``plan.rounds`` interleaved rounds.

    Returns {row name: [cell per load]}; ``report(name, load, cell)`` is told each finished cell.
    """
    cells: dict[str, list[Cell]] = {t.name: [] for t in targets}
    for load in plan.loads:
        for target in targets:
            measure(stack, plan, target, load, plan.warmup)
        runs: dict[str, list[BenchRun]] = {t.name: [] for t in targets}
        for r in range(plan.rounds):
            shift = r % len(targets)
            for target in targets[shift:] + targets[:shift]:
                runs[target.name].append(measure(stack, plan, target, load, plan.duration))
        for target in targets:
            cell = summarize(load, runs[target.name])
            cells[target.name].append(cell)
            report(target.name, load, cell)
    return cells


def median_or_none(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def summarize(load: tuple[int, int], runs: list[BenchRun]) -> Cell:
    """A cell: median, min, max and spread of the throughput, and the median run's bound."""
    connections, size = load
    bulk = size >= 1024

    def throughput(run: BenchRun) -> float:
        return run.mib_per_s if bulk else run.msgs_per_s

    values = sorted(throughput(r) for r in runs)
    median = statistics.median(values)
    spread = (values[-1] - values[0]) / median if median else None
    # The run whose throughput is the median (the lower middle one for an even count) speaks
    # for the cell: its bound is the cell's.
    middle = sorted(runs, key=throughput)[(len(runs) - 1) // 2]
    return Cell(
        connections=connections,
        size=size,
        unit="mib_per_s" if bulk else "msgs_per_s",
        median=median,
        min=values[0],
        max=values[-1],
        spread=None if spread is None else round(spread, 3),
        spread_flagged=spread is not None and spread > SPREAD_FLAG,
        bound=middle.bound,
        bounds=[r.bound for r in runs],
        p99_us=round(statistics.median(r.latency_us.p99 for r in runs)),
        server_cpu_percent=median_or_none(r.server_cpu_percent for r in runs),
        loadgen_cpu_percent=median_or_none(r.loadgen_cgroup_cpu_percent for r in runs),
        server_us_per_msg=median_or_none(r.server_us_per_msg for r in runs),
        loadgen_us_per_msg=median_or_none(r.loadgen_us_per_msg for r in runs),
        served=min(r.served for r in runs),
        missing=max(r.missing + r.errors for r in runs),
        mismatched=sum(r.mismatched for r in runs),
        runs=runs,
    )


def idle_costs(stack: Stack, plan: Plan, target: Target) -> IdleCosts:
    """Server memory with each of ``plan.idle_levels`` idle connections held, then the most
    connections it accepted (one at a time, each proved live) up to ``plan.idle_cap``."""
    if target.cgroup is None:
        raise BenchError(f"{target.name}: no container, so no memory to read")
    memory: dict[str, IdleBaseline | IdleHeld] = {}
    for level in plan.idle_levels:
        if level == 0:
            memory["0"] = IdleBaseline(idle_open=0, memory_bytes=target.cgroup.memory_bytes())
            continue
        args = ["--target", target.host, "--idle", str(level), "--hold", "3", "--timeout", "2"]
        proc = stack.loadgen(*args, "--json", stderr=True)
        line = proc.readline(60)  # printed once the connections are open, then held
        mem = target.cgroup.memory_bytes()
        proc.output(60)
        held = read_loadgen_line(IdleReport, line, args) if line.strip() else None
        memory[str(level)] = IdleHeld(
            idle_open=held.idle_open if held else 0,
            memory_bytes=mem,
            idle_failure=held.idle_failure if held else "no result",
        )
    # A thread per connection takes a while to end thousands of threads: until the server
    # echoes again, the probe would count its own first connection as the most it accepts.
    stack.wait_echo(target.host, target.port)
    probe = loadgen_report(
        stack,
        IdleReport,
        *("--target", target.host, "--idle", str(plan.idle_cap), "--timeout", "2"),
        timeout=600,
    )
    return IdleCosts(
        memory=memory,
        max_accepted=probe.idle_open,
        max_failure=probe.idle_failure,
        max_tried=plan.idle_cap,
    )
