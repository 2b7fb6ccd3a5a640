"""What a bench run records, as the result files' unit tests build them: the machine, and a run
with every field loadgen and the bench fill in, at values a test overrides where it matters."""

from typing import Any

from echolab_bench.results import BenchRun, Machine
from echolab_loadgen.histogram import LatencySummary

MACHINE = Machine(
    cpu="CPU",
    cores=2,
    kernel="6",
    docker="20.10",
    storage_driver="overlay2",
    base_image="base",
    server_python="3.11.2",
    loadgen_python="3.11.2",
    uvloop="0.21.0",
    ddsketch="3.0.1",
    server_cpus="0",
    loadgen_cpus="1",
    load_average_at_start=[0.1, 0.2, 0.3],
    load_average_at_end=[0.9, 0.5, 0.4],
)


def summary_at(p99: int) -> LatencySummary:
    """A summary around ``p99``: p50 a quarter of it, p99.9 twice, p90 and max alike."""
    return LatencySummary(p50=p99 // 4, p90=p99 // 2, p99=p99, p999=p99 * 2, max=p99 * 2)


def bench_run(**fields: Any) -> BenchRun:
    """A run of 100 connections x 64 B that echoed everything; ``fields`` override."""
    run = {
        "target": "server-poll:12345",
        "sent": 2000,
        "echoed": 2000,
        "mismatched": 0,
        "missing": 0,
        "errors": 0,
        "server_counted": 2000,
        "lost_updates": 0,
        "msgs_per_s": 1000.0,
        "mib_per_s": 0.061,
        "duration_s": 2.0,
        "connections": 100,
        "size": 64,
        "latency_us": summary_at(500),
        "first_error": None,
        "served": 100,
        "loadgen_cpu_percent": 60.0,
        "procs": 1,
        "rate": None,
        "server_cpu_s": 1.9,
        "server_cpu_percent": 95.0,
        "server_us_per_msg": 20.0,
        "loadgen_cpu_s": 1.2,
        "loadgen_cgroup_cpu_percent": 60.0,
        "loadgen_us_per_msg": 15.0,
        "bound": "server",
    }
    return BenchRun(**(run | fields))
