"""``make pictures``: the lessons' pictures, measured on real containers of the lab.

Writes docs/pictures/<name>.png, .svg and .json (the raw data, and which run made it) for
threads-vs-lock, simple-wait, readiness-cost and pool-wait. The stacks run in a compose project
of their own and are taken down at the end, on failure and on Ctrl-C too.
"""

import argparse
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from echolab_bench import machine
from echolab_bench.cli import BUSY_LOAD, default_pinning
from echolab_bench.docker import ONE_LINE_ERRORS, REPO, BenchError, Cgroup, Stack
from echolab_common.cli import Parser, number, positive, seconds
from echolab_host import engine, run
from echolab_server.variants import registry

from . import runs
from .documents import (
    CostParameters,
    CostPoint,
    Document,
    Experiment,
    Measured,
    PoolParameters,
    RaceParameters,
    RaceResult,
    RunFacts,
    WaitingLine,
    WaitParameters,
)
from .figures import DRAW, save

PICTURES = tuple(DRAW)
PROJECT = "echolab-pictures"
OUT = REPO / "docs" / "pictures"
EXPERIMENT: Experiment = {"clients": 2, "repeat": 100}  # the tutorial's two shell loops of 100
IDLE_LEVELS = (0, 100, 1000, 5000, 10_000)
GAP_S = 1.0  # from the last holder served to the newcomer connecting
READINESS = ("select", "poll", "epoll")


def picture_list(text: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    unknown = [n for n in names if n not in PICTURES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown picture {', '.join(unknown)}; known: {', '.join(PICTURES)}"
        )
    return names


def levels(text: str) -> tuple[int, ...]:
    return tuple(sorted({number(int, least=0)(n) for n in text.split(",")}))


def build_parser() -> Parser:
    p = Parser(prog="pictures", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only", type=picture_list, default=PICTURES, help=f"some of: {', '.join(PICTURES)}"
    )
    p.add_argument("--out", type=Path, default=OUT, help="default docs/pictures")
    p.add_argument(
        "--redraw", action="store_true", help="draw again from the JSON in --out; no Docker"
    )
    p.add_argument("--project", default=PROJECT, help=f"compose project (default {PROJECT})")
    p.add_argument(
        "--hold", type=seconds, default=3.0, help="seconds client 1 holds on (default 3)"
    )
    p.add_argument(
        "--idle",
        type=levels,
        default=IDLE_LEVELS,
        help="idle connection counts for readiness-cost (default "
        f"{','.join(map(str, IDLE_LEVELS))})",
    )
    p.add_argument(
        "--runs", type=positive(int), default=5, help="readiness-cost runs per point (default 5)"
    )
    p.add_argument(
        "--duration",
        type=seconds,
        default=1.0,
        help="seconds per readiness-cost run (default 1)",
    )
    return p


def say(text: str) -> None:
    print(f"pictures: {text}", flush=True)


def commit() -> str:
    """HEAD's short hash, marked when the tree differs from it (the pictures themselves aside)."""
    head = run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"]).stdout.strip()
    changed = run(
        [
            *("git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"),
            "--",
            ".",
            ":!docs/pictures",
        ]
    ).stdout.strip()
    return f"{head}+uncommitted changes" if changed else head


def noise_note(cores: int | None, load_at_start: float, load_at_end: float) -> str:
    """How far to trust the timings: was anything else running while they were taken?"""
    loads = f"load average {load_at_start:.1f} at the start, {load_at_end:.1f} at the end"
    if max(load_at_start, load_at_end) > BUSY_LOAD:
        return (
            f"Taken on a shared {cores}-core machine under other load ({loads}): CPU and time "
            "figures are noisy"
        )
    return f"Taken on a quiet {cores}-core machine ({loads})"


def run_facts(head: str, started: datetime, load_at_start: list[float]) -> RunFacts:
    """Which run made a picture, and on what."""
    cores, load_at_end = os.cpu_count(), machine.load_average()
    return {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "started": started.isoformat(timespec="seconds"),
        "commit": head,
        "cpu": machine.cpu_model(),
        "cores": cores,
        "kernel": platform.release(),
        "docker": engine().info()["ServerVersion"],
        "base_image": machine.base_image(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_at_end,
        "note": noise_note(cores, load_at_start[0], load_at_end[0]),
    }


def threads_vs_lock(
    args: argparse.Namespace, stack: Stack
) -> Measured[RaceParameters, dict[str, RaceResult]]:
    say("threads and lock: 2 loops of 100 one-message clients each (about 20 s)")
    return {
        "variants": ["threads", "lock"],
        "parameters": {**EXPERIMENT, "work_delay_s": registry()["threads"].default_work_delay},
        "results": runs.experiment(stack, ("threads", "lock"), **EXPERIMENT),
    }


def simple_wait(args: argparse.Namespace, stack: Stack) -> Measured[WaitParameters, WaitingLine]:
    say(f"simple: client 1 holds on for {args.hold:g} s while client 2 waits")
    return {
        "variants": ["simple"],
        "parameters": {"hold_s": args.hold, "gap_s": GAP_S},
        "results": runs.waiting_line(stack, "simple", 1, GAP_S, args.hold),
    }


def pool_wait(args: argparse.Namespace, stack: Stack) -> Measured[PoolParameters, WaitingLine]:
    workers = registry()["pool"].serves_at_once
    assert workers is not None, "pool's design fixes how many clients it serves at once"
    say(f"pool: {workers} clients hold on for {args.hold:g} s while client {workers + 1} waits")
    return {
        "variants": ["pool"],
        "parameters": {"workers": workers, "hold_s": args.hold, "gap_s": GAP_S},
        "results": runs.waiting_line(stack, "pool", workers, GAP_S, args.hold),
    }


def report_point(variant: str, point: CostPoint) -> None:
    if "runs" not in point:
        say(
            f"{variant:>6} {point['idle']:>6} idle: opened {point['idle_open']}, "
            f"then {point['idle_failure']}"
        )
        return
    cpu = ", ".join(f"{r['server_us_per_msg']:.0f}" for r in point["runs"])
    p50 = ", ".join(f"{r['p50_us']}" for r in point["runs"])
    say(f"{variant:>6} {point['idle']:>6} idle: server us/msg {cpu}; p50 us {p50}")


def readiness_cost(
    args: argparse.Namespace, stack: Stack
) -> Measured[CostParameters, dict[str, list[CostPoint]]]:
    containers = stack.start_servers(READINESS)
    classes = registry()
    targets = {v: (Cgroup(c), classes[v].descriptor_ceiling) for v, c in containers.items()}
    say(f"select, poll, epoll: one busy client beside {', '.join(map(str, args.idle))} idle ones")
    return {
        "variants": list(READINESS),
        "parameters": {
            "idle levels": ",".join(map(str, args.idle)),
            "runs": args.runs,
            "run_s": args.duration,
            "server CPUs": stack.server_cpus or "any",
            "loadgen CPUs": stack.loadgen_cpus or "any",
            "fd_setsize": classes["select"].descriptor_ceiling,
        },
        "results": runs.readiness_cost(
            stack, targets, args.idle, args.runs, args.duration, report_point
        ),
    }


Produce = Callable[[argparse.Namespace, Stack], Measured[Any, Any]]  # a picture's measurement
LESSONS: dict[str, Produce] = {
    "threads-vs-lock": threads_vs_lock,
    "simple-wait": simple_wait,
    "pool-wait": pool_wait,
}
LESSON_VARIANTS = ("threads", "lock", "simple", "pool")


def measure(args: argparse.Namespace) -> None:
    """Measure each wanted picture, the two stacks in turn, and draw it as soon as its data is
    in: a failure later on leaves the pictures made so far."""
    head = commit()

    def make(name: str, produce: Produce, stack: Stack) -> None:
        started, load_at_start = datetime.now(UTC), machine.load_average()
        doc = produce(args, stack)
        facts = run_facts(head, started, load_at_start)
        draw(args.out, name, {"picture": name, "run": facts, **doc})

    lessons = [name for name in LESSONS if name in args.only]
    if lessons:
        # The lab as users meet it: the tutorial's delays, a log line per message, and ports
        # on the host, whose own sockets time the waits.
        with Stack(args.project, None, None, None, quiet=False, publish=True) as stack:
            stack.build([*LESSON_VARIANTS, *READINESS])
            stack.start_loadgen()
            stack.start_servers(LESSON_VARIANTS)
            for name in lessons:
                make(name, LESSONS[name], stack)
    if "readiness-cost" in args.only:
        # Quiet (a line per message would cost more than what is measured), pinned as the
        # bench pins: the servers and loadgen on disjoint CPUs.
        with Stack(args.project, 0, *default_pinning(os.cpu_count() or 1)) as stack:
            if not lessons:
                stack.build(READINESS)
            stack.start_loadgen()
            make("readiness-cost", readiness_cost, stack)


def draw(out: Path, name: str, doc: Document[Any, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    save(DRAW[name](doc, doc["run"]), out / name)
    say(f"wrote {out / name}.png, .svg and .json")


def redraw(out: Path, names: Sequence[str]) -> None:
    for name in names:
        try:
            doc = json.loads((out / f"{name}.json").read_text())
        except (OSError, ValueError) as error:
            raise BenchError(f"cannot redraw {name}: {error}") from None
        draw(out, name, doc)


def interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    """A kill (or CI's timeout) ends the run like Ctrl-C; a second one, often sent to the
    whole process group, must not cut short the stacks' removal, so it is ignored."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGTERM, signal.SIGINT)}
    clock = time.monotonic()
    try:
        redraw(args.out, args.only) if args.redraw else measure(args)
    except ONE_LINE_ERRORS as error:
        print(f"pictures: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\npictures: interrupted; the stacks were taken down", file=sys.stderr, flush=True)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say(f"done in {time.monotonic() - clock:.0f} s")
    return 0
