"""Command line: ``python3 -m echolab_loadgen --target server-poll --connections 100 --duration 5``.

Three modes, chosen by the options given:
  experiment  ``--clients N --repeat M``: the tutorial's shell loops, then the server's count
  sustained   ``--connections C --size S (--messages M | --duration T) [--rate R] [--procs P]``
  idle        ``--idle N [--hold S]``: open N live idle connections, hold them, report how many
"""

import argparse
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from echolab_common.cli import (
    Parser,
    host_port,
    number,
    port,
    positive,
    seconds,
    seconds_or_zero,
    stats_port,
)
from echolab_common.wait import accepting

from .engine import MAX_SIZE, Load
from .experiment import MESSAGE, run_experiment
from .idle import open_idle
from .push import Pusher
from .report import (
    COUNTABLE_SIZE,
    ExperimentReport,
    IdleReport,
    MeasuredReport,
    Report,
    SustainedReport,
    Totals,
    experiment_report,
    sustained_report,
)
from .stats import ServerCount
from .workers import WorkerDied, run_load

PROGRESS_AFTER_S = 2.0
MIN_RATE = 0.001  # a message in 1000 s: the open loop's interval must fit in a float
FLAG = "flag"  # the type of an option that takes no value
# Each mode's options: (option, type or FLAG, default or None, help), each default said once (--help
# quotes it). A mode is chosen by giving one of its options, so until then they stay unset.
MODES: dict[str, tuple[tuple[str, Callable[[str], Any] | str, Any, str], ...]] = {
    "experiment": (
        ("clients", positive(int), 2, "concurrent loops"),
        ("repeat", positive(int), 100, "connections per loop"),
    ),
    "sustained": (
        ("connections", positive(int), 1, "open connections"),
        (
            "size",
            positive(int, most=MAX_SIZE),
            64,
            f"message size in bytes, at most {MAX_SIZE} (16 MiB)",
        ),
        ("messages", positive(int), None, "messages per connection"),
        ("duration", seconds, 5.0, "seconds"),
        (
            "rate",
            number(float, least=MIN_RATE),
            None,
            "open loop: messages per second over all connections, latency counted "
            f"from when each message was due (at least {MIN_RATE})",
        ),
        ("procs", positive(int), 1, "worker processes"),
        (
            "cgroup_cpu",
            FLAG,
            False,
            "also report the CPU its cgroup used over the window (in a container: the "
            "container's, all processes; the bench uses it)",
        ),
    ),
    "idle": (("idle", positive(int), None, "open this many idle connections"),),
}
GROUPS = {
    "experiment": "the tutorial's experiment",
    "sustained": "sustained load (the default mode)",
    "idle": "idle connections",
}
ONE_OF = ("messages", "duration")  # how long a sustained load runs: one or the other


def build_parser() -> Parser:
    p = Parser(prog="loadgen", description="Drive an echolab echo server and measure it.")
    p.add_argument(
        "--target",
        default=os.environ.get("ECHOLAB_TARGET", "server-poll"),
        help="server host name (default: $ECHOLAB_TARGET or server-poll)",
    )
    p.add_argument("--port", type=port, default=12345, help="echo port (default 12345)")
    p.add_argument(
        "--stats-port",
        type=stats_port,
        default=8080,
        help="the server's stats port, 0 for a server without one (default 8080)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--timeout",
        type=seconds,
        default=5.0,
        help="seconds to wait for a connect or a stalled echo (default 5)",
    )
    p.add_argument(
        "--wait",
        type=seconds_or_zero,
        default=os.environ.get("ECHOLAB_WAIT", "0"),
        help="seconds to wait for the target to accept connections first "
        "(default: $ECHOLAB_WAIT or 0; a swarm's services start in any order)",
    )
    p.add_argument(
        "--pushgateway",
        type=host_port,
        default=os.environ.get("ECHOLAB_PUSHGATEWAY", ""),
        help="push what this run sends to a Prometheus Pushgateway at host:port, each second "
        "(default: $ECHOLAB_PUSHGATEWAY; compose sets pushgateway:9091, `make watch` starts it)",
    )
    groups = {mode: p.add_argument_group(title) for mode, title in GROUPS.items()}
    length = groups["sustained"].add_mutually_exclusive_group()
    for mode, options in MODES.items():
        for option, kind, default, text in options:
            group = length if option in ONE_OF else groups[mode]
            flag = f"--{option.replace('_', '-')}"
            if kind is FLAG:
                group.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=text)
                continue
            if default is not None:
                text += f" (default {default:g})"
            group.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=text)
    groups["idle"].add_argument(
        "--hold", type=seconds_or_zero, default=0.0, help="seconds to hold them open (default 0)"
    )
    return p


def mode_of(args: argparse.Namespace, parser: Parser) -> tuple[str, dict[str, Any]]:
    """The mode, and its options with their defaults; mixing two modes' options is an error."""
    modes_of = {option: mode for mode, options in MODES.items() for option, *_ in options}
    given = {option: mode for option, mode in modes_of.items() if option in vars(args)}
    modes = set(given.values())
    if len(modes) > 1:
        parser.error("options of different modes: " + ", ".join(f"--{n}" for n in sorted(given)))
    mode = modes.pop() if modes else "sustained"
    defaults = {option: default for option, _, default, _ in MODES[mode]}
    return mode, defaults | {option: getattr(args, option) for option in given}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    mode, options = mode_of(args, parser)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of sockets
    unreachable = accepting(args.target, args.port, args.wait)
    if unreachable:
        print(
            f"loadgen: {args.target}:{args.port} not reachable after {args.wait:g} s: "
            f"{unreachable}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    try:
        if mode == "idle":
            return idle_mode(args, options["idle"])
        count = ServerCount(args.target, args.stats_port)
        if count.warning:
            print(f"loadgen: warning: {count.warning}", file=sys.stderr, flush=True)
        target = f"{args.target}:{args.port}"
        size = len(MESSAGE) if mode == "experiment" else options["size"]
        pusher = Pusher(
            args.pushgateway,
            count.variant or args.target,
            count.before if size <= COUNTABLE_SIZE else None,
        )
        pusher.push(0, 0)
        totals: Totals
        result: ExperimentReport | SustainedReport
        if mode == "experiment":
            clients, repeat = options["clients"], options["repeat"]
            totals = run_experiment(args.target, args.port, clients, repeat, args.timeout)
            pusher.push(totals.sent, totals.echoed)
            result = experiment_report(target, totals, count.counted(), clients * repeat, size)
        else:
            if count.logs_per_message:
                print(
                    f"loadgen: note: {args.target} prints a line per message, which bounds the "
                    "throughput measured here; start it with ECHOLAB_QUIET=1 to measure its model",
                    file=sys.stderr,
                    flush=True,
                )
            load = Load(
                host=args.target,
                port=args.port,
                connections=options["connections"],
                size=options["size"],
                messages=options["messages"],
                duration=None if options["messages"] else options["duration"],
                rate=options["rate"],
                timeout=args.timeout,
                cgroup_cpu=options["cgroup_cpu"],
            )
            progress = Progress()

            def each_second(sent: int, echoed: int, failed: int) -> None:
                progress.update(sent, echoed, failed)
                pusher.push(sent, echoed)

            totals = run_load(load, options["procs"], each_second)
            progress.done()
            pusher.push(totals.sent, totals.echoed)
            result = sustained_report(
                target,
                totals,
                count.counted(),
                load.connections,
                size,
                options["procs"],
                options["rate"],
            )
    except KeyboardInterrupt:
        print("\nloadgen: interrupted", file=sys.stderr, flush=True)
        return 130
    except WorkerDied as exc:
        print(f"loadgen: {exc}", file=sys.stderr, flush=True)
        return 1
    if args.json:  # the sketch itself, so reports of several replicas merge (merge.py)
        result.latency_sketch = totals.recorder.to_sketch()
    return verdict(result, args.json)


def verdict(result: MeasuredReport, as_json: bool) -> int:
    """Show the result; exit 0 only if every message sent came back intact.

    A server that could not be reached at all gets one line, not a table of zeros.
    """
    unreachable = result.sent == 0 and result.errors
    if as_json or not unreachable:
        show(result, as_json)
    if unreachable:
        print(
            f"loadgen: cannot reach {result.target}: {result.first_error}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 1 if result.mismatched or result.missing or result.errors else 0


def idle_mode(args: argparse.Namespace, count: int) -> int:
    socks, failure = open_idle(args.target, args.port, count, args.timeout)
    result = IdleReport(
        target=f"{args.target}:{args.port}",
        idle_requested=count,
        idle_open=len(socks),
        idle_failure=failure,
    )
    show(result, args.json)
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(args.hold)
    for sock in socks:
        sock.close()
    if not socks and failure:
        print(f"loadgen: cannot reach {result.target}: {failure}", file=sys.stderr, flush=True)
    return 0 if failure is None else 1


def show(result: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json()), flush=True)
        return
    for key, value in result.to_json().items():
        if isinstance(value, dict):
            value = "  ".join(f"{k} {v}" for k, v in value.items())
        elif value is None:
            value = "-"
        print(f"{key:<20} {value}")
    sys.stdout.flush()


class Progress:
    """A live line on a terminal for runs longer than a couple of seconds; silent otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.start = time.monotonic()
        self.shown = False
        self.last = (0, time.monotonic())

    def update(self, sent: int, echoed: int, failed: int) -> None:
        now = time.monotonic()
        rate = (echoed - self.last[0]) / max(now - self.last[1], 1e-9)
        self.last = (echoed, now)
        if not self.enabled or now - self.start < PROGRESS_AFTER_S:
            return
        self.shown = True
        print(
            f"\r{now - self.start:6.1f} s  sent {sent}  echoed {echoed}  failed {failed}  "
            f"{rate:,.0f} msgs/s ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
