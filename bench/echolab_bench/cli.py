"""``make bench``: every server variant, interleaved, under the same loads, from a pinned loadgen.

Everything runs in a compose project of its own (``echolab-bench``, without host ports) so that
it neither fights the user's lab nor measures across the host's port forwarding.  Writes
``bench/results/<timestamp>.json`` (every run), ``.md`` (tables), ``.png`` and ``.svg`` (chart).
"""

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from echolab_common.cli import Parser, number, positive, seconds
from echolab_common.record import decode, extend
from echolab_server.variants import variant_names

from . import machine
from .docker import ONE_LINE_ERRORS, REPO, RULER, BenchError, Cgroup, Stack, cores, cpu_list
from .measure import IDLE_CAP, IDLE_LEVELS, LOADS, Plan, Target, idle_costs, rounds
from .output import refresh_results_block, render_chart, render_tables
from .results import Cell, ClosedLoopResults, FirstResults, Machine, PlanRecord, Row

PROJECT = "echolab-bench"
C_ROW = "c-epoll"  # the C ruler's row name in every table and chart
BUSY_LOAD = 1.0  # a 1-minute load average above this at the start: not a clean run
BENCH_PAGE = REPO / "docs/bench.md"  # the lab manual's bench page holds the generated block
PICTURES = REPO / "docs/pictures/bench"  # the chart it shows, copied from bench/results
T = TypeVar("T")


def parse_extra(text: str) -> tuple[str, str, int]:
    name, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not (sep and colon and name and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT, got {text!r}")
    return name, host, int(port)


def cpuset(text: str) -> str:
    try:
        if cpu_list(text):
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected CPU numbers like 0, 0-1 or 0,2: {text!r}")


def default_pinning(cores: int) -> tuple[str | None, str | None]:
    """Disjoint halves of the host's CPUs, the server's first: one each on 2 cores."""
    if cores < 2:
        return None, None
    half = cores // 2
    server = "0" if half == 1 else f"0-{half - 1}"
    loadgen = str(half) if cores - half == 1 else f"{half}-{cores - 1}"
    return server, loadgen


def where_options(p: argparse.ArgumentParser, project: str) -> None:
    """The options every bench command has: its compose project, where its results go."""
    p.add_argument("--project", default=project, help=f"compose project (default {project})")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results",
        help="where the results go (default bench/results)",
    )


def build_parser() -> Parser:
    server_cpus, loadgen_cpus = default_pinning(os.cpu_count() or 1)
    p = Parser(prog="bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", help="comma-separated variant names (default: every variant)")
    p.add_argument("--duration", type=seconds, help="seconds per measured run (default 2)")
    p.add_argument("--rounds", type=positive(int), help="interleaved runs per cell (default 5)")
    p.add_argument("--procs", type=positive(int), default=1, help="loadgen processes (default 1)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds of 1 s, idle memory at 0 and 100, the probe up to 200: a smoke test",
    )
    p.add_argument(
        "--no-c",
        action="store_true",
        help="without the C ruler's row 'c-epoll' (bench/c/echo_epoll.c, pinned like the servers)",
    )
    p.add_argument(
        "--extra",
        type=parse_extra,
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="another echo server on the bench network (a container name is attached to it "
        "for the run); repeatable",
    )
    p.add_argument(
        "--server-cpus",
        type=cpuset,
        default=server_cpus,
        help=f"the servers' CPU set (default {server_cpus or 'none'})",
    )
    p.add_argument(
        "--loadgen-cpus",
        type=cpuset,
        default=loadgen_cpus,
        help=f"loadgen's CPU set (default {loadgen_cpus or 'none'})",
    )
    p.add_argument("--no-pin", action="store_true", help="no CPU sets: every container anywhere")
    p.add_argument(
        "--work-delay",
        type=number(float, least=0, most=1),
        default=0.0,
        help="the servers' simulated work per message, seconds (default 0: off)",
    )
    p.add_argument("--no-idle", action="store_true", help="skip the idle-connection probes")
    where_options(p, PROJECT)
    p.add_argument(
        "--readme",
        type=Path,
        metavar="RESULT.json",
        help="only rewrite docs/bench.md's generated results block (and copy its chart into "
        "docs/pictures/bench) from a result file, then stop",
    )
    return p


def start_targets(
    stack: Stack,
    variants: Sequence[str],
    c_ruler: bool,
    server_cpus: str | None,
    c_generator: bool = False,
) -> tuple[list[Target], str]:
    """Build and start what a bench measures: loadgen (and the C generator, if asked), every
    variant's server and the C ruler. Returns their rows, the variants' in ``variants`` order
    then C's (the ruler is measured like a variant, stats and cgroup included), and the first
    variant's container (for the machine's facts)."""
    services = stack.services()
    missing = [v for v in variants if f"server-{v}" not in services]
    if missing:
        raise BenchError(f"compose.yaml has no service for {', '.join(missing)}")
    server_cores = cores(server_cpus)
    stack.build(variants, ruler=c_ruler, generator=c_generator)
    stack.start_loadgen()
    if c_generator:
        stack.start_generator()
    containers = stack.start_servers(variants)
    targets = [
        Target(v, "variant", f"server-{v}", 12345, 8080, Cgroup(c), server_cores)
        for v, c in containers.items()
    ]
    if c_ruler:
        ruler = stack.start_ruler()
        targets.append(Target(C_ROW, "ruler", RULER, 12345, 8080, Cgroup(ruler), server_cores))
    return targets, next(iter(containers.values()))


def make_plan(args: argparse.Namespace) -> Plan:
    known = tuple(variant_names())
    wanted = tuple(args.variants.split(",")) if args.variants else known
    unknown = [v for v in wanted if v not in known]
    if unknown:
        raise BenchError(f"unknown variant {', '.join(unknown)}; known: {', '.join(known)}")
    if not args.no_pin and args.server_cpus and args.loadgen_cpus:
        shared = set(cpu_list(args.server_cpus)) & set(cpu_list(args.loadgen_cpus))
        if shared:
            raise BenchError(f"--server-cpus and --loadgen-cpus share CPU {min(shared)}")
    duration = args.duration or (1.0 if args.quick else 2.0)
    return Plan(
        variants=wanted,
        extras=tuple(args.extra),
        c_ruler=not args.no_c,
        loads=LOADS,
        duration=duration,
        rounds=args.rounds or (2 if args.quick else 5),
        warmup=min(0.5, duration),
        procs=args.procs,
        work_delay=args.work_delay,
        idle_levels=() if args.no_idle else (0, 100) if args.quick else IDLE_LEVELS,
        idle_cap=200 if args.quick else IDLE_CAP,
    )


def minutes_or_seconds(duration: float) -> str:
    return f"{duration:.0f} s" if duration < 120 else f"{duration / 60:.0f} min"


def say(text: str) -> None:
    print(f"bench: {text}", flush=True)


def report_cell(name: str, load: tuple[int, int], cell: Cell) -> None:
    digits = 1 if cell.unit == "mib_per_s" else 0
    unit = "MiB/s" if cell.unit == "mib_per_s" else "msgs/s"
    say(
        f"{name:>10} {load[0]:>3} x {load[1]:>5} B  {cell.median:>10,.{digits}f} {unit} "
        f"[{cell.min:,.{digits}f} - {cell.max:,.{digits}f}]  {cell.bound}-bound"
    )


def bench(args: argparse.Namespace, plan: Plan, started: datetime) -> ClosedLoopResults:
    pinning = (None, None) if args.no_pin else (args.server_cpus, args.loadgen_cpus)
    load_at_start = machine.load_average()
    if load_at_start[0] > BUSY_LOAD:
        say(
            f"warning: load average {load_at_start[0]:.1f} at the start: something else is "
            "running, so these figures will not be clean (the results' header says so too)"
        )
    kept = PlanRecord(
        loads=plan.loads,
        duration_s=plan.duration,
        rounds=plan.rounds,
        warmup_s=plan.warmup,
        procs=plan.procs,
        work_delay_s=plan.work_delay,
        server_cpus=pinning[0],
        loadgen_cpus=pinning[1],
    )
    say(
        f"{len(plan.variants)} variants + {plan.rows() - len(plan.variants)} other servers, "
        f"{len(plan.loads)} loads x {plan.rounds} rounds x {plan.duration:g} s: about "
        f"{minutes_or_seconds(plan.estimate_s())} after the image build"
    )
    with Stack(args.project, plan.work_delay, *pinning) as stack:
        targets, server = start_targets(stack, plan.variants, plan.c_ruler, pinning[0])
        for name, host, port in plan.extras:
            c = stack.attach(host)
            allowed = cores(stack.cpuset_of(c)) if c else None
            targets.append(Target(name, "extra", host, port, 0, Cgroup(c) if c else None, allowed))
        facts = machine.facts(stack, server, pinning, load_at_start)
        cells = rounds(stack, plan, targets, report_cell)
        rows = {
            t.name: Row(kind=t.kind, address=f"{t.host}:{t.port}", loads=cells[t.name])
            for t in targets
        }
        if plan.idle_levels:
            for target in targets[: len(plan.variants)]:
                say(f"idle connections: {target.name}")
                rows[target.name].idle = idle_costs(stack, plan, target)
    return ClosedLoopResults(
        started=started.isoformat(timespec="seconds"),
        plan=kept,
        machine=extend(Machine, facts, load_average_at_end=machine.load_average()),
        rows=rows,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write(out_dir: Path, started: datetime, results: ClosedLoopResults) -> tuple[Path, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / started.strftime("%Y%m%dT%H%M%SZ")
    stem.with_suffix(".json").write_text(json.dumps(results.to_json(), indent=1) + "\n")
    tables = render_tables(results)
    stem.with_suffix(".md").write_text(tables)
    render_chart(results, stem)
    return stem, tables


def load_results(path: Path, kind: Any) -> Any:
    """A stored run read as ``kind`` (a results type, or a union of them), or a one-line error."""
    try:
        return decode(kind, json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot read {path}: {error}") from None


def readme_only(path: Path) -> None:
    results: ClosedLoopResults | FirstResults = load_results(path, ClosedLoopResults | FirstResults)
    if isinstance(results, FirstResults):
        raise BenchError(
            f"{path.name} is in the bench's first format (2026-11-25: no rounds, bounds or "
            "spread), which has no tables here"
        )
    if not refresh_results_block(BENCH_PAGE, results, path.stem):
        raise BenchError(f"{BENCH_PAGE} has no generated block to replace")
    copy_charts(path)
    say(f"{BENCH_PAGE.relative_to(REPO)}: the results block now shows {path.name}")


def copy_charts(path: Path) -> None:
    """A stored run's chart, copied where the docs site serves it (docs/pictures/bench)."""
    PICTURES.mkdir(parents=True, exist_ok=True)
    for chart in (path.with_suffix(".png"), path.with_suffix(".svg")):
        if chart.is_file():
            shutil.copyfile(chart, PICTURES / chart.name)


def run_command(
    name: str,
    refresh_only: Callable[[], None] | None,
    measure: Callable[[datetime], T],
    write_files: Callable[[datetime, T], tuple[Path, str]],
) -> int:
    """How each bench command runs: with ``refresh_only`` (a stored run onto its docs page) just
    that; else ``measure(started)``, then ``write_files(started, results)`` -> (stem, tables)
    and the tables printed. Errors are one line; a plain kill (or CI's timeout) ends the run
    like Ctrl-C, which takes the bench's stack down."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    clock = time.monotonic()
    started = datetime.now(UTC)
    try:
        if refresh_only is not None:
            refresh_only()
            return 0
        results = measure(started)
    except ONE_LINE_ERRORS as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"\n{name}: interrupted; its stack was taken down", file=sys.stderr, flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    stem, tables = write_files(started, results)
    print(
        f"\n{tables}\n{name}: done in {(time.monotonic() - clock) / 60:.1f} min; wrote "
        f"{stem}.json, .md, .png and .svg",
        flush=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(
        "bench",
        (lambda: readme_only(args.readme)) if args.readme else None,
        lambda started: bench(args, make_plan(args), started),
        lambda started, results: write(args.out, started, results),
    )
