"""What a run reports: one type per mode, each one JSON object (``loadgen --json``).

The keys and their order are a contract: the bench stores these reports in its result files
(bench/results) and the cluster merges them from other hosts (``merge``), so every field here is
a documented key, in the order loadgen has always printed them. The mode is the first key and a
type of its own, so a reader never guesses it from which keys are missing.

What a run counted before it is a report (``Totals``, ``LoadTotals``) holds the live latency
recorder; a report holds only its summary and, for ``--json``, its sketch.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from echolab_common.record import OMITTED, Record, decode

from .histogram import LatencyRecorder, LatencySketch, LatencySummary

MIB = 1 << 20
# The server counts recv() calls that returned data (the tutorial's unit), 1024 bytes at most
# each by default: only messages that fit in one recv() make its count comparable with ours.
COUNTABLE_SIZE = 1024


@dataclass(kw_only=True)
class Totals:
    """What the experiment counted, or a load worker: the start of every measured report."""

    sent: int
    echoed: int
    mismatched: int
    errors: int
    first_error: str | None
    elapsed_s: float
    recorder: LatencyRecorder


@dataclass(kw_only=True)
class LoadTotals(Totals):
    """A sustained load's counts: one worker's, or all workers' summed (``workers.run_load``)."""

    echoed_in_window: int  # throughput counts no echo of the drain after the window
    served: int  # connections that had an echo back before the end
    cpu_s: float  # the load's own processes
    cgroup_cpu_s: float | None  # its whole cgroup (--cgroup-cpu); None: not asked or unreadable


@dataclass(kw_only=True)
class Report(Record):
    """What every report starts with: its mode, and the server it ran against."""

    mode: str
    target: str  # host:port


@dataclass(kw_only=True)
class MeasuredReport(Report):
    """A run that sent messages: its counts, rates and latency."""

    sent: int
    echoed: int
    mismatched: int
    missing: int
    errors: int
    server_counted: int | None  # None: the server's /stats could not be read
    lost_updates: int | None  # None: not comparable (no count, or messages over one recv())
    msgs_per_s: float
    mib_per_s: float
    duration_s: float
    connections: int
    size: int
    latency_us: LatencySummary
    first_error: str | None


@dataclass(kw_only=True)
class ExperimentReport(MeasuredReport):
    """The tutorial's experiment: concurrent loops of one-message connections."""

    mode: Literal["experiment"] = "experiment"
    latency_sketch: LatencySketch | None = field(default=None, metadata=OMITTED)  # with --json


@dataclass(kw_only=True)
class SustainedReport(MeasuredReport):
    """A sustained load over open connections, closed or open loop (``rate``)."""

    mode: Literal["sustained"] = "sustained"
    served: int  # a server that serves some connections only (simple, pool) shows here
    loadgen_cpu_percent: float
    cgroup_cpu_s: float | None = field(
        default=None, metadata=OMITTED
    )  # with --cgroup-cpu, where readable
    procs: int
    rate: float | None  # None: closed loop
    latency_sketch: LatencySketch | None = field(default=None, metadata=OMITTED)  # with --json


@dataclass(kw_only=True)
class IdleReport(Report):
    """Idle connections held: how many were asked for, how many opened, why the next failed."""

    mode: Literal["idle"] = "idle"
    idle_requested: int
    idle_open: int
    idle_failure: str | None


AnyReport = ExperimentReport | SustainedReport | IdleReport


def read_report(data: Any) -> AnyReport:
    """A report of any mode from its JSON; ValueError where it is not one."""
    report: AnyReport = decode(AnyReport, data)
    return report


def measured(
    totals: Totals, counted: int | None, connections: int, size: int, in_window: int
) -> dict[str, Any]:
    """The fields every measured report has, from what a run counted (``in_window``: the echoes
    its throughput counts)."""
    elapsed = totals.elapsed_s
    return {
        "sent": totals.sent,
        "echoed": totals.echoed,
        "mismatched": totals.mismatched,
        "missing": totals.sent - totals.echoed - totals.mismatched,
        "errors": totals.errors,
        "server_counted": counted,
        "lost_updates": None if counted is None or size > COUNTABLE_SIZE else totals.sent - counted,
        "msgs_per_s": round(in_window / elapsed, 1) if elapsed else 0.0,
        "mib_per_s": round(in_window * size / MIB / elapsed, 3) if elapsed else 0.0,
        "duration_s": round(elapsed, 3),
        "connections": connections,
        "size": size,
        "latency_us": totals.recorder.summary(),
        "first_error": totals.first_error,
    }


def experiment_report(
    target: str, totals: Totals, counted: int | None, connections: int, size: int
) -> ExperimentReport:
    return ExperimentReport(
        target=target, **measured(totals, counted, connections, size, totals.echoed)
    )


def sustained_report(
    target: str,
    totals: LoadTotals,
    counted: int | None,
    connections: int,
    size: int,
    procs: int,
    rate: float | None,
) -> SustainedReport:
    elapsed = totals.elapsed_s
    cgroup = totals.cgroup_cpu_s
    return SustainedReport(
        target=target,
        **measured(totals, counted, connections, size, totals.echoed_in_window),
        served=totals.served,
        loadgen_cpu_percent=round(100 * totals.cpu_s / elapsed, 1) if elapsed else 0.0,
        cgroup_cpu_s=None if cgroup is None else round(cgroup, 4),
        procs=procs,
        rate=rate,
    )
