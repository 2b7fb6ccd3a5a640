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
from datetime import UTC, datetime
from pathlib import Path

from echolab_bench import machine
from echolab_bench.cli import BUSY_LOAD, default_pinning
from echolab_bench.docker import REPO, BenchError, Cgroup, Stack, run
from echolab_loadgen.cli import Parser, number, positive, seconds
from echolab_server.variants import registry

from . import runs
from .figures import DRAW, save

PICTURES = tuple(DRAW)
PROJECT = "echolab-pictures"
OUT = REPO / "docs" / "pictures"
EXPERIMENT = {"clients": 2, "repeat": 100}  # the tutorial's two shell loops of 100
IDLE_LEVELS = (0, 100, 1000, 5000, 10_000)
READINESS = ("select", "poll", "epoll")


def picture_list(text):
    names = tuple(text.split(","))
    unknown = [n for n in names if n not in PICTURES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown picture {', '.join(unknown)}; known: {', '.join(PICTURES)}"
        )
    return names


def levels(text):
    return tuple(sorted({number(int, least=0)(n) for n in text.split(",")}))


def build_parser():
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


def say(text):
    print(f"pictures: {text}", flush=True)


def commit():
    """HEAD's short hash, marked when the tree differs from it (the pictures themselves aside)."""
    head = run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"]).strip()
    changed = run(
        [
            *("git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"),
            "--",
            ".",
            ":!docs/pictures",
        ]
    ).strip()
    return f"{head}+uncommitted changes" if changed else head


def noise_note(cores, load_at_start, load_at_end):
    """How far to trust the timings: was anything else running while they were taken?"""
    loads = f"load average {load_at_start:.1f} at the start, {load_at_end:.1f} at the end"
    if max(load_at_start, load_at_end) > BUSY_LOAD:
        return (
            f"Taken on a shared {cores}-core machine under other load ({loads}): CPU and time "
            "figures are noisy"
        )
    return f"Taken on a quiet {cores}-core machine ({loads})"


def run_facts(started, load_at_start):
    """Which run made the pictures, and on what."""
    cores, load_at_end = os.cpu_count(), machine.load_average()
    return {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "started": started.isoformat(timespec="seconds"),
        "commit": commit(),
        "cpu": machine.cpu_model(),
        "cores": cores,
        "kernel": platform.release(),
        "docker": run(["docker", "info", "--format", "{{.ServerVersion}}"]).strip(),
        "base_image": machine.base_image(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_at_end,
        "note": noise_note(cores, load_at_start[0], load_at_end[0]),
    }


def lessons(args, stack, wanted):
    """threads-vs-lock, simple-wait and pool-wait, on the lab as users meet it."""
    out = {}
    if "threads-vs-lock" in wanted:
        say("threads and lock: 2 loops of 100 one-message clients each (about 20 s)")
        out["threads-vs-lock"] = {
            "variants": ["threads", "lock"],
            "parameters": {
                **EXPERIMENT,
                "work_delay_s": registry()["threads"].default_work_delay,
            },
            "results": runs.experiment(stack, ("threads", "lock"), **EXPERIMENT),
        }
    waits = {"simple-wait": ("simple", 1), "pool-wait": ("pool", registry()["pool"].serves_at_once)}
    for name, (variant, holders) in waits.items():
        if name in wanted:
            say(f"{variant}: {holders} client(s) hold on for {args.hold:g} s, one more waits")
            out[name] = {
                "variants": [variant],
                "parameters": {"workers": holders, "hold_s": args.hold, "gap_s": 1.0}
                if variant == "pool"
                else {"hold_s": args.hold, "gap_s": 1.0},
                "results": runs.waiting_line(stack, variant, holders, 1.0, args.hold),
            }
    return out


def report_point(variant, point):
    if "runs" not in point:
        say(
            f"{variant:>6} {point['idle']:>6} idle: opened {point['idle_open']}, "
            f"then {point['idle_failure']}"
        )
        return
    cpu = ", ".join(f"{r['server_us_per_msg']:.0f}" for r in point["runs"])
    p50 = ", ".join(f"{r['p50_us']}" for r in point["runs"])
    say(f"{variant:>6} {point['idle']:>6} idle: server us/msg {cpu}; p50 us {p50}")


def readiness(args, stack):
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


def measure(args):
    """Every wanted picture's data, from the two stacks in turn; {name: document}."""
    started, load_at_start = datetime.now(UTC), machine.load_average()
    wanted, docs = set(args.only), {}
    lesson_variants = ["threads", "lock", "simple", "pool"]
    if wanted & {"threads-vs-lock", "simple-wait", "pool-wait"}:
        with Stack(args.project, None, None, None, quiet=False, publish=True) as stack:
            stack.build([*lesson_variants, *READINESS])
            stack.start_loadgen()
            stack.start_servers(lesson_variants)
            docs |= lessons(args, stack, wanted)
    if "readiness-cost" in wanted:
        pinning = default_pinning(os.cpu_count() or 1)
        with Stack(args.project, 0, *pinning, quiet=True) as stack:
            if not docs:
                stack.build(READINESS)
            stack.start_loadgen()
            docs["readiness-cost"] = readiness(args, stack)
    facts = run_facts(started, load_at_start)
    return {name: {"picture": name, "run": facts, **doc} for name, doc in docs.items()}


def draw(out, docs):
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        save(DRAW[name](doc, doc["run"]), out / name)
        say(f"wrote {out / name}.png, .svg and .json")


def stored(out, names):
    docs = {}
    for name in names:
        try:
            docs[name] = json.loads((out / f"{name}.json").read_text())
        except (OSError, ValueError) as error:
            raise BenchError(f"cannot redraw {name}: {error}") from None
    return docs


def interrupted(signum, frame):
    """A kill (or CI's timeout) ends the run like Ctrl-C; a second one, often sent to the
    whole process group, must not cut short the stacks' removal, so it is ignored."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv=None):
    args = build_parser().parse_args(argv)
    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGTERM, signal.SIGINT)}
    clock = time.monotonic()
    try:
        draw(args.out, stored(args.out, args.only) if args.redraw else measure(args))
    except BenchError as error:
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
