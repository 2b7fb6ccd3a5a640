"""``make bench``: every server variant in turn, under the same loads, from a loadgen container.

Everything runs in a compose project of its own (``echolab-bench``, without host ports) so that
it neither fights the user's lab nor measures across the host's port forwarding: loadgen talks to
each server over the compose network, as the lab's own containers do.  The server's CPU and
memory come from its container's cgroup counters, read before and after each run.

Writes ``bench/results/<timestamp>.json`` (every run), ``.md`` (tables) and ``.svg`` (chart).
"""

import argparse
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .cli import Parser, number, positive, seconds
from .report import render_chart, render_tables

REPO = Path(__file__).resolve().parents[2]
PROJECT = "echolab-bench"
# The tutorial's order, simplest first; variants added later come after, by name.
TUTORIAL_ORDER = {
    f"server-{v}": i
    for i, v in enumerate(("simple", "threads", "lock", "condition", "select", "poll", "pool"))
}
LOADS = ((1, 64), (10, 64), (100, 64), (10, 65536))  # (connections, message size)
IDLE_LEVELS = (0, 100, 1000, 10_000)  # 10,000: the C10K check for epoll, asyncio, prefork
IDLE_CAP = 10_000  # the most idle connections the probe tries: well past select's 1024
RUN_OVERHEAD_S = 1.0  # docker exec, connecting, the drain after the end (estimate only)
VARIANT_OVERHEAD_S = 20.0  # start, idle probes, stop (estimate only)


class BenchError(Exception):
    """Something the bench cannot go on without; reported as one line."""


@dataclass(frozen=True)
class Plan:
    variants: tuple
    extras: tuple  # (name, host, port)
    duration: float
    repeats: int
    warmup: float
    procs: int
    work_delay: float
    idle_levels: tuple  # empty: no idle probes
    idle_cap: int

    def estimate_s(self):
        rows = len(self.variants) + len(self.extras)
        per_load = self.warmup + self.repeats * self.duration + (self.repeats + 1) * RUN_OVERHEAD_S
        return rows * (len(LOADS) * per_load + VARIANT_OVERHEAD_S)


def run(argv, timeout=120, check=True, env=None):
    """A docker command; its stdout.  A failure becomes one line (the command's last words)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise BenchError(f"{argv[0]} not found: the bench needs Docker with Compose v2") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {shlex.join(argv)}") from None
    if check and done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise BenchError(f"{shlex.join(argv[:4])} ... failed: {last[0]}")
    return done.stdout


def succeeds(argv):
    return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0


class Stack:
    """The bench's own compose project: the repo's compose.yaml with host ports taken away."""

    def __init__(self, project, work_delay):
        self.project = project
        self.loadgen_container = f"{project}-loadgen"
        self.loadgen = (
            "docker",
            "exec",
            self.loadgen_container,
            "python3",
            "-m",
            "echolab_loadgen",
        )
        self.override = None
        self.env = os.environ | {"ECHOLAB_QUIET": "1", "ECHOLAB_WORK_DELAY": f"{work_delay:g}"}
        self.connected = []

    def compose(self, *args, timeout=300, check=True):
        files = ["-f", str(REPO / "compose.yaml"), "-f", self.override.name]
        cmd = ["docker", "compose", "-p", self.project, "--project-directory", str(REPO), *files]
        return run([*cmd, *args], timeout=timeout, check=check, env=self.env)

    def __enter__(self):
        services = run(
            ["docker", "compose", "-f", str(REPO / "compose.yaml"), "config", "--services"],
            env=self.env,
        ).split()
        servers = [s for s in services if s.startswith("server-")]
        self.servers = sorted(
            servers, key=lambda s: (TUTORIAL_ORDER.get(s, len(TUTORIAL_ORDER)), s)
        )
        self.override = tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="echolab-bench-")
        self.override.write(
            "services:\n" + "".join(f"  {s}:\n    ports: !reset []\n" for s in self.servers)
        )
        self.override.flush()
        self.down()  # leftovers of an interrupted run
        return self

    def __exit__(self, *exc):
        for container in self.connected:
            run(["docker", "network", "disconnect", self.network, container], check=False)
        self.down()
        self.override.close()

    def down(self):
        """Remove the stack; the loadgen container by name, as ``down`` leaves ``run -d`` ones."""
        run(["docker", "rm", "-f", self.loadgen_container], check=False)
        self.compose("--profile", "tools", "down", "--remove-orphans", timeout=120, check=False)

    def build(self, variants):
        print("bench: building the images", flush=True)
        run([str(REPO / "loadgen" / "fetch-wheels")], timeout=300)
        self.compose(
            "--profile",
            "tools",
            "build",
            "loadgen",
            *(f"server-{v}" for v in variants),
            timeout=1800,
        )

    def start_loadgen(self):
        """One long-lived loadgen container; each run is a ``docker exec`` into it (fast)."""
        self.compose(
            "--profile",
            "tools",
            "run",
            "-d",
            "--no-deps",
            "--name",
            self.loadgen_container,
            "--entrypoint",
            "sleep",
            "loadgen",
            "10800",
        )
        networks = run(
            [
                "docker",
                "inspect",
                "--format",
                "{{json .NetworkSettings.Networks}}",
                self.loadgen_container,
            ]
        )
        self.network = next(iter(json.loads(networks)))

    def start_server(self, variant):
        self.compose("up", "-d", "--wait", f"server-{variant}", timeout=120)
        return self.compose("ps", "-q", f"server-{variant}").strip()

    def stop_server(self, variant):
        self.compose("rm", "-s", "-f", f"server-{variant}", timeout=60)

    def attach(self, host):
        """A bring-your-own server's container joins the bench network; None if not a container.

        Already on it is fine; a container is only taken off again if the bench put it there.
        """
        if not succeeds(["docker", "inspect", host]):
            return None
        if succeeds(["docker", "network", "connect", self.network, host]):
            self.connected.append(host)
        return host


def loadgen(stack, *args, timeout):
    """One loadgen run in the bench's loadgen container; its JSON (exit 1 still has a result)."""
    out = run([*stack.loadgen, *args, "--json"], timeout=timeout, check=False)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise BenchError(f"loadgen gave no result for {shlex.join(args)}") from None


CGROUP_FILES = (
    "/sys/fs/cgroup/cpu.stat",
    "/sys/fs/cgroup/memory.current",
    "/sys/fs/cgroup/memory.stat",
    "/sys/fs/cgroup/cpuacct/cpuacct.usage",
    "/sys/fs/cgroup/memory/memory.usage_in_bytes",
    "/sys/fs/cgroup/memory/memory.stat",
)


def cgroup(container):
    """(CPU seconds used, memory in bytes) of a container, cgroup v2 or v1.

    Memory is usage less inactive page cache, as ``docker stats`` shows it.  ``grep`` runs
    inside the container because its own /sys/fs/cgroup is its cgroup, whatever the host's layout.
    """
    out = run(["docker", "exec", container, "grep", "-Hs", ".", *CGROUP_FILES], check=False)
    values = {}
    for line in out.splitlines():
        path, _, text = line.partition(":")
        name, _, number = text.rpartition(" ")
        values[f"{Path(path).name}:{name}".rstrip(":")] = int(number)
    if "cpu.stat:usage_usec" in values:
        cpu = values["cpu.stat:usage_usec"] / 1e6
        mem = values["memory.current"] - values.get("memory.stat:inactive_file", 0)
    elif "cpuacct.usage" in values:
        cpu = values["cpuacct.usage"] / 1e9
        mem = values["memory.usage_in_bytes"] - values.get("memory.stat:total_inactive_file", 0)
    else:
        raise BenchError(f"no cgroup counters readable in container {container}")
    return cpu, mem


def measure(stack, target, port, stats_port, connections, size, duration, procs, container):
    """One loadgen run, with the server container's CPU over it when there is a container."""
    args = [
        "--target",
        target,
        "--port",
        str(port),
        "--stats-port",
        str(stats_port),
        "--connections",
        str(connections),
        "--size",
        str(size),
        "--duration",
        str(duration),
        "--procs",
        str(procs),
        "--timeout",
        "2",
    ]
    before = cgroup(container)[0] if container else None
    result = loadgen(stack, *args, timeout=duration + 60)
    if before is not None and result["duration_s"]:
        # Over loadgen's measured window, not the wall time of the docker exec around it: the
        # server idles while loadgen starts, and counting that would make it look less busy.
        cpu = cgroup(container)[0] - before
        result["server_cpu_percent"] = round(100 * cpu / result["duration_s"], 1)
    return result


MEDIAN_KEYS = ("msgs_per_s", "mib_per_s", "server_cpu_percent", "loadgen_cpu_percent")


def median_of(runs):
    """Medians of each figure across the repeats, taken figure by figure."""
    out = {}
    for key in MEDIAN_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = round(statistics.median(values), 1) if values else None
    for key in ("p50", "p99", "max"):
        out[f"{key}_us"] = round(statistics.median(r["latency_us"][key] for r in runs))
    out["missing"] = max(r["missing"] + r["errors"] for r in runs)
    out["served"] = min(r["served"] for r in runs)
    out["mismatched"] = sum(r["mismatched"] for r in runs)
    return out


def bench_loads(stack, plan, target, port, stats_port, container):
    rows = []
    for connections, size in LOADS:
        common = (stack, target, port, stats_port, connections, size)
        measure(*common, plan.warmup, plan.procs, None)
        runs = [measure(*common, plan.duration, plan.procs, container) for _ in range(plan.repeats)]
        row = {"connections": connections, "size": size, "runs": runs, "median": median_of(runs)}
        print(
            f"  {connections:>3} x {size:>5} B  {row['median']['msgs_per_s']:>9,.0f} msgs/s  "
            f"p99 {row['median']['p99_us']:>7,} us  server CPU "
            f"{row['median']['server_cpu_percent'] or 0:>5.0f}%  loadgen CPU "
            f"{row['median']['loadgen_cpu_percent'] or 0:>5.0f}%",
            flush=True,
        )
        rows.append(row)
    return rows


def idle_costs(stack, plan, target, container):
    """Server memory with each of IDLE_LEVELS idle connections held, then the most it accepted."""
    memory = {}
    for level in plan.idle_levels:
        if level == 0:
            memory["0"] = {"idle_open": 0, "memory_bytes": cgroup(container)[1]}
            continue
        argv = [
            *stack.loadgen,
            "--target",
            target,
            "--idle",
            str(level),
            "--hold",
            "3",
            "--timeout",
            "2",
        ]
        argv.append("--json")
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
            line = proc.stdout.readline()  # printed once the connections are open, then held
            mem = cgroup(container)[1]
            proc.wait(timeout=60)
        held = json.loads(line) if line.strip() else {"idle_open": 0, "idle_failure": "no result"}
        memory[str(level)] = {
            "idle_open": held["idle_open"],
            "memory_bytes": mem,
            "idle_failure": held.get("idle_failure"),
        }
    probe = loadgen(
        stack, "--target", target, "--idle", str(plan.idle_cap), "--timeout", "2", timeout=600
    )
    return {
        "memory": memory,
        "max_accepted": probe["idle_open"],
        "max_failure": probe["idle_failure"],
        "max_tried": plan.idle_cap,
    }


def machine(stack):
    """Where the figures came from: they mean little without it.  Needs the loadgen container."""
    with open("/proc/cpuinfo") as cpuinfo:
        names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    dotenv = REPO / ".env"
    lines = dotenv.read_text().splitlines() if dotenv.exists() else []
    chosen = [line.removeprefix("BASE_IMAGE=") for line in lines if line.startswith("BASE_IMAGE=")]
    return {
        "cpu": names[0] if names else platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "docker": run(["docker", "version", "--format", "{{.Server.Version}}"]).strip(),
        "base_image": os.environ.get("BASE_IMAGE") or (chosen or ["python:3.12-slim"])[-1],
        "python": run([*stack.loadgen[:3], "python3", "-V"]).strip(),
    }


def parse_extra(text):
    name, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not (sep and colon and name and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT, got {text!r}")
    return name, host, int(port)


def build_parser():
    p = Parser(prog="bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--variants",
        help="comma-separated variant names (default: every server-* service in compose.yaml)",
    )
    p.add_argument("--duration", type=seconds, help="seconds per measured run (default 3)")
    p.add_argument("--repeats", type=positive(int), help="runs per load, medians shown (default 3)")
    p.add_argument("--procs", type=positive(int), default=1, help="loadgen processes (default 1)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 run of 1 s per load, idle probes up to 100: a smoke test",
    )
    p.add_argument(
        "--extra",
        type=parse_extra,
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="another echo server on the bench network "
        "(a container name is attached to it for the run); repeatable",
    )
    p.add_argument(
        "--work-delay",
        type=number(float, least=0, most=1),
        default=0.0,
        help="the servers' simulated work per message, seconds (default 0: off)",
    )
    p.add_argument("--no-idle", action="store_true", help="skip the idle-connection probes")
    p.add_argument(
        "--project",
        default=PROJECT,
        help=f"compose project name of the bench's stack (default {PROJECT})",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results",
        help="where the results go (default bench/results)",
    )
    return p


def make_plan(args, available):
    wanted = args.variants.split(",") if args.variants else available
    unknown = [v for v in wanted if v not in available]
    if unknown:
        raise BenchError(f"unknown variant {', '.join(unknown)}; known: {', '.join(available)}")
    duration = args.duration or (1.0 if args.quick else 3.0)
    repeats = args.repeats or (1 if args.quick else 3)
    return Plan(
        variants=tuple(wanted),
        extras=tuple(args.extra),
        duration=duration,
        repeats=repeats,
        warmup=min(1.0, duration),
        procs=args.procs,
        work_delay=args.work_delay,
        idle_levels=() if args.no_idle else (0, 100) if args.quick else IDLE_LEVELS,
        idle_cap=200 if args.quick else IDLE_CAP,
    )


def bench(args):
    started = datetime.now(UTC)
    results = {"started": started.isoformat(timespec="seconds")}
    with Stack(args.project, args.work_delay) as stack:
        available = [s.removeprefix("server-") for s in stack.servers]
        plan = make_plan(args, available)
        results["plan"] = {
            "loads": LOADS,
            "duration_s": plan.duration,
            "repeats": plan.repeats,
            "warmup_s": plan.warmup,
            "procs": plan.procs,
            "work_delay_s": plan.work_delay,
        }
        print(
            f"bench: {len(plan.variants)} variants + {len(plan.extras)} extra, {len(LOADS)} "
            f"loads x {plan.repeats} x {plan.duration:g} s: about "
            f"{plan.estimate_s() / 60:.0f} min on top of the image build",
            flush=True,
        )
        stack.build(plan.variants)
        stack.start_loadgen()
        results["machine"] = machine(stack)
        rows = {}
        for variant in plan.variants:
            print(f"bench: {variant}", flush=True)
            container = stack.start_server(variant)
            target = f"server-{variant}"
            try:
                rows[variant] = {
                    "kind": "variant",
                    "loads": bench_loads(stack, plan, target, 12345, 8080, container),
                }
                if plan.idle_levels:
                    rows[variant]["idle"] = idle_costs(stack, plan, target, container)
            finally:
                stack.stop_server(variant)
        for name, host, port in plan.extras:
            print(f"bench: {name} (extra, {host}:{port})", flush=True)
            container = stack.attach(host)
            rows[name] = {
                "kind": "extra",
                "address": f"{host}:{port}",
                "loads": bench_loads(stack, plan, host, port, 0, container),
            }
    results["rows"] = rows
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return started, results


def write(out_dir, started, results):
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / started.strftime("%Y%m%dT%H%M%SZ")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    tables = render_tables(results)
    stem.with_suffix(".md").write_text(tables)
    stem.with_suffix(".svg").write_text(render_chart(results))
    return stem, tables


def main(argv=None):
    args = build_parser().parse_args(argv)
    # A plain kill (or CI's timeout) ends the run like Ctrl-C, taking the bench stack down.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    clock = time.monotonic()
    try:
        started, results = bench(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; the bench stack was taken down", file=sys.stderr, flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    stem, tables = write(args.out, started, results)
    print(
        f"\n{tables}\nbench: done in {(time.monotonic() - clock) / 60:.1f} min; wrote "
        f"{stem}.json, .md and .svg",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
