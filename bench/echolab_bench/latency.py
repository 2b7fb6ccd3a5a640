"""``make bench-latency``: the latency clients see at a given offered load, and where it breaks.

The bench's closed loop ranks servers by how fast they go flat out. Engineers size systems the
other way round: at this many messages per second, what latency do clients see, and at what
load does the tail break? So, per row (variant or the C ruler) and load (100 and 1,000
connections x 64 B, where the row serves that many at once):

1. its closed-loop capacity: the median of interleaved closed-loop rounds after a warm-up;
2. a ladder of offered rates, fractions of that capacity from well below it to past it, each run
   open loop (``--rate``: latency counted from when each message was due, so a stall cannot
   hide; coordinated omission corrected) in interleaved rounds, as in the bench;
3. per rate: achieved rate, p50, p99 and p99.9, the bound (BOUNDS);
4. its knee, found by halving: ``--refine`` more rates, each halfway between the highest rate
   that held the target and the lowest that broke it (halfway to nothing when even the lowest
   broke), so that a capacity is not one coarse rung of a ladder cut from another capacity;
5. its capacity at the target: the highest offered rate whose p99 stays under ``--target-p99``.

Every run is the C load generator's (bench/c/echo_load.c, generator.py) unless ``--generator
python`` asks for Python loadgen, whose own lag is over 1 ms at 100 connections. With Python
loadgen, where it is saturated before the server and may use more CPUs than it has processes,
the run is repeated with twice the processes (their sketches merge), and the result says so.
"""

import argparse
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from echolab_common.cli import Parser, number, positive, seconds
from echolab_common.record import extend
from echolab_server.server import EchoServer
from echolab_server.variants import registry

from . import machine
from .cli import (
    BUSY_LOAD,
    C_ROW,
    copy_charts,
    cpuset,
    default_pinning,
    load_results,
    minutes_or_seconds,
    run_command,
    say,
    start_targets,
    where_options,
)
from .docker import REPO, BenchError, Stack, cores, cpu_list
from .generator import GENERATORS
from .latency_output import refresh_docs, render_chart, render_tables
from .measure import RUN_OVERHEAD_S, SPREAD_FLAG, Target, measure, median_or_none
from .results import (
    BenchRun,
    BoundName,
    Capacity,
    LatencyLoad,
    LatencyPlan,
    LatencyResults,
    LatencyRow,
    Machine,
    Rung,
)

PROJECT = "echolab-latency"
DOCS = REPO / "docs" / "latency.md"  # its generated block shows one run
LOADS = ((100, 64), (1000, 64))  # (connections, message size)
# Offered rates as fractions of each row's own closed-loop capacity: low, through the knee, past.
FRACTIONS = (0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25)
QUICK_FRACTIONS = (0.25, 0.6, 0.9, 1.2)
TARGET_P99_MS = 1.0
REFINE_STEPS = 3  # rates halving the gap around each row's knee after the ladder
QUICK_REFINE_STEPS = 1
DESCRIPTOR_MARGIN = 16  # a server's own descriptors (listeners, stats, stdio) beside the clients
SATURATED_BOUNDS = ("client", "both")  # loadgen at its ceiling (BOUNDS: C and C+S)


def estimate_s(plan: LatencyPlan, rows_per_load: Sequence[int]) -> float:
    """Seconds the measured runs take (connecting 1,000 sockets counted as a run's overhead)."""
    runs = 1 + (1 + len(plan.fractions) + (plan.refine or 0)) * plan.rounds
    per_row = plan.warmup + (runs - 1) * plan.duration
    return sum(n * (per_row + runs * RUN_OVERHEAD_S) for n in rows_per_load)


def serves(server: type[EchoServer], connections: int) -> bool:
    """Whether a variant's class can serve ``connections`` clients at once (by its traits)."""
    if server.serves_at_once is not None and server.serves_at_once < connections:
        return False
    ceiling = server.descriptor_ceiling
    return ceiling is None or connections + DESCRIPTOR_MARGIN <= ceiling


def two_figures(rate: float) -> int:
    """A rate to offer: ``rate`` to two significant figures, at least one message a second."""
    step = 10 ** max(0, math.floor(math.log10(rate)) - 1) if rate >= 1 else 1
    return max(1, round(rate / step) * step)


def ladder(capacity: float, fractions: Sequence[float]) -> list[int]:
    """The offered rates: each fraction of ``capacity`` to two significant figures, ascending."""
    return [two_figures(capacity * fraction) for fraction in sorted(fractions)]


def capacity_at(rungs: list[Rung], target_us: float) -> tuple[Rung | None, bool]:
    """The highest offered rate whose p99 stays under ``target_us``: the last rung before the
    first one over it (or with a lost or wrong echo). Returns that rung and whether the ladder
    ended before the p99 broke (so the capacity is at least that); (None, False) if none held."""
    held = None
    for rung in sorted(rungs, key=lambda r: r.offered):
        if rung.p99_us >= target_us or rung.missing or rung.mismatched:
            return held, False
        held = rung
    return held, held is not None


def halfway(rungs: list[Rung], target_us: float) -> int | None:
    """The next rate to try for the knee: halfway between the highest rate that held the target
    and the first that broke it (between nothing and the lowest, if that broke). None when the
    knee is above the ladder or no two-figure rate is left between the two."""
    held, open_ended = capacity_at(rungs, target_us)
    if open_ended:
        return None
    low = held.offered if held else 0
    broke = min(r.offered for r in rungs if r.offered > low)
    rate = two_figures((low + broke) / 2)
    return rate if low < rate < broke else None


def capacity_record(rungs: list[Rung], target_us: float) -> Capacity | None:
    """What a row's results keep of its capacity at the target (None if no rung held)."""
    held, open_ended = capacity_at(rungs, target_us)
    if held is None:
        return None
    return Capacity(
        offered=held.offered,
        achieved=held.achieved,
        p99_us=held.p99_us,
        bound=held.bound,
        procs=held.procs,
        ladder_top=open_ended,
    )


def retarget(results: LatencyResults, target_us: float) -> LatencyResults:
    """The same run read at another p99 target: every row's capacity again from its rungs,
    which keep every rate's p99, so no run is needed."""
    results.plan = replace(results.plan, target_us=target_us)
    for load in results.loads:
        for row in load.rows.values():
            row.capacity_at_target = capacity_record(row.rungs, target_us)
    return results


def more_procs(bound: BoundName, procs: int, most: int) -> int | None:
    """Loadgen processes for the next try: twice as many where loadgen was saturated and may
    use more CPUs than it has processes; else as many (None: no retry)."""
    if bound in SATURATED_BOUNDS and procs < most:
        return min(2 * procs, most)
    return None


def lean(run: BenchRun) -> BenchRun:
    """A run as stored: its quantiles stay, its sketch's buckets go (hundreds of runs a file)."""
    return replace(run, latency_sketch=None)


def summarize_rung(offered: int, runs: list[BenchRun]) -> Rung:
    """One offered rate: medians over the rounds, the p99's spread, the median-p99 run's bound."""
    p99 = sorted(r.latency_us.p99 for r in runs)
    middle = sorted(runs, key=lambda r: r.latency_us.p99)[(len(runs) - 1) // 2]
    median_p99 = statistics.median(p99)
    spread = (p99[-1] - p99[0]) / median_p99 if median_p99 else None
    return Rung(
        offered=offered,
        achieved=round(statistics.median(r.msgs_per_s for r in runs)),
        p50_us=round(statistics.median(r.latency_us.p50 for r in runs)),
        p99_us=round(median_p99),
        p99_min_us=p99[0],
        p99_max_us=p99[-1],
        p99_spread=None if spread is None else round(spread, 3),
        spread_flagged=spread is not None and spread > SPREAD_FLAG,
        p999_us=round(statistics.median(r.latency_us.p999 for r in runs)),
        bound=middle.bound,
        bounds=[r.bound for r in runs],
        server_cpu_percent=median_or_none(r.server_cpu_percent for r in runs),
        loadgen_cpu_percent=median_or_none(r.loadgen_cgroup_cpu_percent for r in runs),
        procs=max(r.procs for r in runs),
        missing=max(r.missing + r.errors for r in runs),
        mismatched=sum(r.mismatched for r in runs),
        runs=[lean(r) for r in runs],
    )


def ladder_rounds(
    stack: Stack, plan: LatencyPlan, targets: list[Target], load: tuple[int, int]
) -> dict[str, LatencyRow]:
    """One load: every row's capacity, then its ladder, rung by rung in interleaved rounds,
    then its knee, halving the gap around it (halfway) for ``plan.refine`` more rates."""
    procs = {t.name: plan.procs for t in targets}

    def run(target: Target, duration: float, rate: float | None = None) -> BenchRun:
        """A run; where loadgen was its ceiling and may have more processes, run it again."""
        while True:
            result = measure(
                *(stack, plan, target, load, duration, rate, procs[target.name]),
                generator=GENERATORS[plan.generator or "python"],
            )
            grown = more_procs(result.bound, procs[target.name], plan.max_procs)
            if grown is None:
                return result
            say(f"{target.name}: loadgen saturated with {procs[target.name]}; again with {grown}")
            procs[target.name] = grown

    rounds_run = 0
    rungs: dict[str, list[Rung]] = {t.name: [] for t in targets}  # each row's, as they come

    def interleaved(rates: Mapping[str, float | None]) -> dict[str, list[BenchRun]]:
        """``plan.rounds`` rounds of the rows in ``rates`` (None: closed loop), each round
        starting one row further along."""
        nonlocal rounds_run
        rows = [t for t in targets if t.name in rates]
        out: dict[str, list[BenchRun]] = {t.name: [] for t in rows}
        for _ in range(plan.rounds):
            shift = rounds_run % len(rows)
            rounds_run += 1
            for target in rows[shift:] + rows[:shift]:
                out[target.name].append(run(target, plan.duration, rates[target.name]))
        return out

    def climb(what: str, offered: dict[str, int]) -> None:
        """One rate for each row in ``offered``: its rounds, summarized into the row's rungs."""
        done = interleaved(offered)
        for name, rung_runs in done.items():
            rungs[name].append(summarize_rung(offered[name], rung_runs))
        say(
            f"{load[0]} x {load[1]} B, {what}: "
            + ", ".join(
                f"{name} {rate:,} -> p99 {rungs[name][-1].p99_us:,} us"
                for name, rate in offered.items()
            )
        )

    for target in targets:
        run(target, plan.warmup)
    closed = {
        name: sorted(c, key=lambda r: r.msgs_per_s)[(len(c) - 1) // 2]
        for name, c in interleaved({t.name: None for t in targets}).items()
    }
    rates = {name: ladder(max(r.msgs_per_s, 1), plan.fractions) for name, r in closed.items()}
    for step in range(len(plan.fractions)):
        climb(f"step {step + 1}/{len(plan.fractions)}", {n: rates[n][step] for n in rates})
    for step in range(plan.refine or 0):
        probes = {t.name: halfway(rungs[t.name], plan.target_us) for t in targets}
        wanted = {name: rate for name, rate in probes.items() if rate is not None}
        if not wanted:
            break
        climb(f"knee step {step + 1}/{plan.refine}", wanted)
    out = {}
    for target in targets:
        row_rungs = sorted(rungs[target.name], key=lambda r: r.offered)
        out[target.name] = LatencyRow(
            closed_loop=lean(closed[target.name]),
            rungs=row_rungs,
            capacity_at_target=capacity_record(row_rungs, plan.target_us),
        )
    return out


def build_parser() -> Parser:
    server_cpus, loadgen_cpus = default_pinning(cores(None))
    p = Parser(prog="bench-latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", help="comma-separated variant names (default: every variant)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{len(QUICK_FRACTIONS)} rates, 2 rounds of 1 s, 100 connections only: a smoke test",
    )
    p.add_argument(
        "--target-p99",
        type=number(float, least=0.001, most=10_000),
        metavar="MS",
        help=f"the latency target for capacity, p99 in ms (default {TARGET_P99_MS:g}; with "
        "--docs, the stored run read at this target instead of its own)",
    )
    p.add_argument("--duration", type=seconds, help="seconds per run (default 2, 1 with --quick)")
    p.add_argument("--rounds", type=positive(int), help="rounds per rate (default 3, 2 --quick)")
    p.add_argument(
        "--refine",
        type=number(int, least=0),
        metavar="STEPS",
        help="rates halving the gap around each row's knee after the ladder (default "
        f"{REFINE_STEPS}, {QUICK_REFINE_STEPS} with --quick)",
    )
    p.add_argument(
        "--connections",
        type=connection_list,
        help="comma-separated connection counts, 64-byte messages (default 100,1000)",
    )
    p.add_argument(
        "--generator",
        choices=tuple(GENERATORS),
        default="c",
        help="the load generator: c (bench/c/echo_load.c, the default) or python (loadgen)",
    )
    p.add_argument(
        "--procs", type=positive(int), default=1, help="Python loadgen's processes to start with"
    )
    p.add_argument(
        "--no-c", action="store_true", help="without the C ruler's row (bench/c/echo_epoll.c)"
    )
    p.add_argument("--server-cpus", type=cpuset, default=server_cpus, help="the servers' CPU set")
    p.add_argument("--loadgen-cpus", type=cpuset, default=loadgen_cpus, help="loadgen's CPU set")
    where_options(p, PROJECT)
    p.add_argument(
        "--docs",
        type=Path,
        metavar="RESULT.json",
        help="only rewrite docs/latency.md's generated block from a result file, then stop",
    )
    return p


def connection_list(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected connection counts like 100,1000: {text!r}")
    return counts


def make_plan(args: argparse.Namespace) -> LatencyPlan:
    known = registry()
    wanted = tuple(args.variants.split(",")) if args.variants else tuple(known)
    unknown = [v for v in wanted if v not in known]
    if unknown:
        raise BenchError(f"unknown variant {', '.join(unknown)}; known: {', '.join(known)}")
    if args.server_cpus and args.loadgen_cpus:
        shared = set(cpu_list(args.server_cpus)) & set(cpu_list(args.loadgen_cpus))
        if shared:
            raise BenchError(f"--server-cpus and --loadgen-cpus share CPU {min(shared)}")
    counts = args.connections or ((100,) if args.quick else tuple(c for c, _ in LOADS))
    duration = args.duration or (1.0 if args.quick else 2.0)
    if args.generator == "c" and args.procs != 1:
        raise BenchError("--procs is Python loadgen's (--generator python); the C one is a thread")
    target_us = (args.target_p99 or TARGET_P99_MS) * 1000
    refine = args.refine
    if refine is None:
        refine = QUICK_REFINE_STEPS if args.quick else REFINE_STEPS
    return LatencyPlan(
        variants=wanted,
        c_ruler=not args.no_c,
        loads=tuple((c, 64) for c in counts),
        fractions=QUICK_FRACTIONS if args.quick else FRACTIONS,
        duration=duration,
        rounds=args.rounds or (2 if args.quick else 3),
        refine=refine,
        refine_target_us=target_us if refine else None,
        warmup=min(0.5, duration),
        procs=args.procs,
        max_procs=max(args.procs, cores(args.loadgen_cpus)) if args.generator == "python" else 1,
        target_us=target_us,
        server_cpus=args.server_cpus,
        loadgen_cpus=args.loadgen_cpus,
        generator=args.generator,
    )


def rows_for(plan: LatencyPlan, load: tuple[int, int]) -> tuple[list[str], list[str]]:
    """The variants that serve ``load``'s connections at once, and those left out."""
    known = registry()
    kept = [v for v in plan.variants if serves(known[v], load[0])]
    return kept, [v for v in plan.variants if v not in kept]


def latency(args: argparse.Namespace, plan: LatencyPlan, started: datetime) -> LatencyResults:
    pinning = (plan.server_cpus, plan.loadgen_cpus)
    load_at_start = machine.load_average()
    if load_at_start[0] > BUSY_LOAD:
        say(
            f"warning: load average {load_at_start[0]:.1f} at the start: something else is "
            "running, so these figures will not be clean (the results' header says so too)"
        )
    rows_per_load = [len(rows_for(plan, load)[0]) + plan.c_ruler for load in plan.loads]
    say(
        f"{len(plan.variants)} variants{' + C' if plan.c_ruler else ''}, loads "
        f"{', '.join(f'{c} x {s} B' for c, s in plan.loads)}, {len(plan.fractions)} rates x "
        f"{plan.rounds} rounds x {plan.duration:g} s, generator {plan.generator}: about "
        f"{minutes_or_seconds(estimate_s(plan, rows_per_load))} after the image build"
    )
    loads = []
    with Stack(args.project, 0.0, *pinning) as stack:
        c_generator = plan.generator == "c"  # else Python loadgen, which every stack starts
        every, server = start_targets(stack, plan.variants, plan.c_ruler, pinning[0], c_generator)
        facts = machine.facts(stack, server, pinning, load_at_start)
        for load in plan.loads:
            kept, left_out = rows_for(plan, load)
            targets = [t for t in every if t.kind != "variant" or t.name in kept]
            if left_out:
                say(f"{load[0]} connections: leaving out {', '.join(left_out)} (serve fewer)")
            loads.append(
                LatencyLoad(
                    connections=load[0],
                    size=load[1],
                    left_out=left_out,
                    rows=ladder_rounds(stack, plan, targets, load),
                )
            )
    return LatencyResults(
        started=started.isoformat(timespec="seconds"),
        plan=plan,
        loads=loads,
        machine=extend(Machine, facts, load_average_at_end=machine.load_average()),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write(out_dir: Path, started: datetime, results: LatencyResults) -> tuple[Path, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / (started.strftime("%Y%m%dT%H%M%SZ") + "-latency")
    stem.with_suffix(".json").write_text(json.dumps(results.to_json(), indent=1) + "\n")
    tables = render_tables(results, C_ROW)
    stem.with_suffix(".md").write_text(tables)
    render_chart(results, stem)
    return stem, tables


def docs_only(path: Path, target_p99_ms: float | None = None) -> None:
    """docs/latency.md's block from a stored run, read at its own target or at another."""
    results = load_results(path, LatencyResults)
    if target_p99_ms is not None:
        retarget(results, target_p99_ms * 1000)
    if not refresh_docs(DOCS, results, path.stem, C_ROW):
        raise BenchError(f"{DOCS} has no generated block to replace")
    copy_charts(path)
    say(f"{DOCS.relative_to(REPO)}: the results block now shows {path.name}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        "bench-latency",
        (lambda: docs_only(args.docs, args.target_p99)) if args.docs else None,
        lambda started: latency(args, make_plan(args), started),
        lambda started, results: write(args.out, started, results),
    )


if __name__ == "__main__":
    sys.exit(main())
