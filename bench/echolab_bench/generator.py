"""The latency ladder's load generators: the C one (bench/c/echo_load.c) unless asked otherwise.

Python loadgen paces one open loop per process from Python's event loop: at 100 connections its
own lag put every row's p99 over 1 ms at a tenth of capacity, C's included (docs/latency.md). The
C generator paces one epoll loop by the clock, times each echo by the kernel's arrival stamp and
prints loadgen's report (its SustainedReport keys), so ``measure`` reads either alike; its CPU
is its own container's cgroup's.
"""

from echolab_loadgen.report import SustainedReport

from .docker import Stack
from .measure import OWED_S, Generator, Target, last_report, loadgen_run


def echo_load_run(
    stack: Stack,
    target: Target,
    load: tuple[int, int],
    duration: float,
    rate: float | None,
    procs: int,
) -> SustainedReport:
    """One run of the C generator in its container: one thread, so ``procs`` is always 1."""
    connections, size = load
    args = [
        *("--target", target.host, "--port", str(target.port)),
        *("--connections", str(connections), "--size", str(size)),
        *("--duration", f"{duration:g}", "--timeout", str(OWED_S)),
        *(("--rate", f"{rate:g}") if rate else ()),
    ]
    return last_report(stack.generator(*args), SustainedReport, args, duration + 60, "echo_load")


# By the name --generator takes: how a run is made, and what the results call it.
GENERATORS: dict[str, Generator] = {"c": echo_load_run, "python": loadgen_run}
DESCRIPTIONS = {
    "c": "C, bench/c/echo_load.c (one thread, paced by the clock, echoes timed by the kernel)",
    "python": "Python loadgen (echolab_loadgen --rate)",
}
