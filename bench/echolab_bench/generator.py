"""The latency ladder's load generators: the C one (bench/c/echo_load.c) unless asked otherwise.

Python loadgen paces one open loop per process from Python's event loop: at 100 connections its
own lag put every row's p99 over 1 ms at a tenth of capacity, C's included (docs/latency.md). The
C generator paces one epoll loop by the clock, times each echo by the kernel's arrival stamp and
reports the same keys, so ``measure`` reads either alike; its CPU is its own container's cgroup's.
"""

from collections.abc import Callable
from typing import Any

from .docker import Stack
from .measure import Target, json_report, loadgen_run

GENERATOR_TIMEOUT_S = 2  # echoes still owed this long after the window are missing


def echo_load_run(
    stack: Stack,
    target: Target,
    load: tuple[int, int],
    duration: float,
    rate: float | None,
    procs: int,
) -> dict[str, Any]:
    """One run of the C generator in its container: one thread, so ``procs`` is always 1."""
    connections, size = load
    args = [
        *("--target", target.host, "--port", str(target.port)),
        *("--connections", str(connections), "--size", str(size)),
        *("--duration", f"{duration:g}", "--timeout", str(GENERATOR_TIMEOUT_S)),
        *(("--rate", f"{rate:g}") if rate else ()),
    ]
    return json_report("echo_load", stack.generator, args, duration + 60)


# By the name --generator takes: how a run is made, and what the results call it.
Run = Callable[[Stack, Target, tuple[int, int], float, float | None, int], dict[str, Any]]
GENERATORS: dict[str, Run] = {"c": echo_load_run, "python": loadgen_run}
DESCRIPTIONS = {
    "c": "C, bench/c/echo_load.c (one thread, paced by the clock, echoes timed by the kernel)",
    "python": "Python loadgen (echolab_loadgen --rate)",
}
