"""Merges the JSON reports of loadgen replicas (processes on several hosts) into one report.

``python -m echolab_loadgen.merge node2.json node3.json [--server-before B --server-after A]``

Counts add up exactly. Percentiles of different processes cannot be averaged, so every report
carries its latency sketch (``loadgen --json``) and the quantiles are read once from the merged
sketch. The replicas run at the same time, each over its own window, so the rates add up too.
The server's own count comes from its ``/stats`` before and after (``echolab_loadgen.stats``),
summed over its replicas.
"""

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from echolab_common.cli import Parser
from echolab_common.record import OMITTED, Record, decode, extend

from .histogram import LatencyRecorder, LatencySummary
from .report import ExperimentReport, SustainedReport

SERVER_COUNTS = ("messages", "connections_total")  # the keys of a server's /stats it sums


@dataclass(kw_only=True)
class ReplicaRow(Record):
    """One loadgen replica's figures in the merged report."""

    replica: str
    sent: int
    echoed: int
    mismatched: int
    missing: int
    errors: int
    connections: int
    msgs_per_s: float
    mib_per_s: float
    duration_s: float
    p50_us: int
    p99_us: int


@dataclass(kw_only=True)
class Total(Record):
    """Every replica's counts and rates summed; latency from the merged sketch."""

    sent: int
    echoed: int
    mismatched: int
    missing: int
    errors: int
    connections: int
    msgs_per_s: float
    mib_per_s: float
    duration_s: float  # the longest replica's
    latency_us: LatencySummary


@dataclass(kw_only=True)
class CountedTotal(Total):
    """The total where the server's counts were read before and after the run."""

    server_counted: int | None  # None: a server replica went away during the run


@dataclass(kw_only=True)
class ServerReplica(Record):
    """One server replica's counts over the run; None where it went away."""

    address: str
    messages: int | None
    connections_total: int | None


@dataclass(kw_only=True)
class ServerCounts(Record):
    """Every server replica's counts, and their exact sum (None if one is unknown)."""

    messages: int | None
    connections_total: int | None
    rows: list[ServerReplica]


@dataclass(kw_only=True)
class MergedReport(Record):
    """The replicas of one run as one report: a row each, their total, the server's counts."""

    replicas: int
    total: Total | CountedTotal
    rows: list[ReplicaRow]
    server: ServerCounts | None = field(default=None, metadata=OMITTED)


def merge(
    reports: Mapping[str, Any],
    server_before: Mapping[str, Any] | None = None,
    server_after: Mapping[str, Any] | None = None,
) -> MergedReport:
    """One report from ``{label: loadgen --json report}`` (as parsed from JSON); the server's
    counts where both snapshots (``echolab_loadgen.stats`` output) are given.

    ValueError names the report that cannot be merged.
    """
    recorder = LatencyRecorder()
    rows = []
    for label, data in reports.items():
        try:
            report: ExperimentReport | SustainedReport = decode(
                ExperimentReport | SustainedReport, data
            )
            if report.latency_sketch is None:
                raise ValueError("no latency_sketch")
            recorder.merge(LatencyRecorder.from_sketch(report.latency_sketch))
        except ValueError as exc:
            raise ValueError(f"report {label}: not a loadgen --json report ({exc})") from None
        rows.append(
            ReplicaRow(
                replica=label,
                sent=report.sent,
                echoed=report.echoed,
                mismatched=report.mismatched,
                missing=report.missing,
                errors=report.errors,
                connections=report.connections,
                msgs_per_s=report.msgs_per_s,
                mib_per_s=report.mib_per_s,
                duration_s=report.duration_s,
                p50_us=report.latency_us.p50,
                p99_us=report.latency_us.p99,
            )
        )
    total = Total(
        sent=sum(row.sent for row in rows),
        echoed=sum(row.echoed for row in rows),
        mismatched=sum(row.mismatched for row in rows),
        missing=sum(row.missing for row in rows),
        errors=sum(row.errors for row in rows),
        connections=sum(row.connections for row in rows),
        msgs_per_s=round(sum(row.msgs_per_s for row in rows), 3),
        mib_per_s=round(sum(row.mib_per_s for row in rows), 3),
        duration_s=max((row.duration_s for row in rows), default=0.0),
        latency_us=recorder.summary(),
    )
    if server_before is None or server_after is None:
        return MergedReport(replicas=len(rows), total=total, rows=rows)
    server = server_counts(server_before, server_after)
    counted = extend(CountedTotal, total, server_counted=server.messages)
    return MergedReport(replicas=len(rows), total=counted, rows=rows, server=server)


def server_counts(before: Mapping[str, Any], after: Mapping[str, Any]) -> ServerCounts:
    """Each server replica's counts over the run, and their exact sum.

    A replica missing from ``before`` started during the run (its counters began at 0); one
    missing from ``after`` went away, and its count is unknown (None).
    """
    rows = []
    for address in sorted(set(before["replicas"]) | set(after["replicas"])):
        old = before["replicas"].get(address, dict.fromkeys(SERVER_COUNTS, 0))
        new = after["replicas"].get(address)
        counts = {key: None if new is None else new[key] - old[key] for key in SERVER_COUNTS}
        rows.append(ServerReplica(address=address, **counts))
    return ServerCounts(
        messages=exact_sum([row.messages for row in rows]),
        connections_total=exact_sum([row.connections_total for row in rows]),
        rows=rows,
    )


def exact_sum(counts: list[int | None]) -> int | None:
    """The sum, or None where a count is unknown."""
    known = [count for count in counts if count is not None]
    return sum(known) if len(known) == len(counts) else None


def render(merged: MergedReport) -> str:
    """The merged report as a table: a row per replica, the total, the server's counts."""
    head = f"{'replica':<24} {'sent':>9} {'echoed':>9} {'errors':>7} {'msgs/s':>10} "
    head += f"{'p50 us':>8} {'p99 us':>8}"
    lines = [head]
    for row in merged.rows:
        lines.append(
            f"{row.replica:<24} {row.sent:>9} {row.echoed:>9} {row.errors:>7} "
            f"{row.msgs_per_s:>10,.0f} {row.p50_us:>8} {row.p99_us:>8}"
        )
    total = merged.total
    lat = total.latency_us
    lines.append(
        f"{'all ' + str(merged.replicas) + ' replicas':<24} {total.sent:>9} "
        f"{total.echoed:>9} {total.errors:>7} {total.msgs_per_s:>10,.0f} "
        f"{lat.p50:>8} {lat.p99:>8}"
    )
    lines.append(
        f"latency of all replicas (merged sketch), us: p50 {lat.p50}  p90 {lat.p90}  "
        f"p99 {lat.p99}  p999 {lat.p999}  max {lat.max}"
    )
    server = merged.server
    if server:
        for replica in server.rows:
            lines.append(
                f"server replica {replica.address:<15} messages {fmt(replica.messages)}  "
                f"connections {fmt(replica.connections_total)}"
            )
        lines.append(
            f"server, all replicas: messages {fmt(server.messages)} "
            f"(sent {total.sent})  connections {fmt(server.connections_total)}"
        )
    return "\n".join(lines)


def fmt(value: int | None) -> str:
    return "unknown (replica gone)" if value is None else str(value)


def last_json(text: str) -> Any:
    """The last line of ``text`` that is a JSON object (logs may hold other lines too)."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError("no JSON object in it")


def read_json(path: Path) -> Any:
    try:
        return last_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="echolab_loadgen.merge", description="Merge loadgen --json reports.")
    parser.add_argument("reports", nargs="+", type=Path, help="report files (loadgen --json)")
    parser.add_argument("--server-before", type=Path, help="echolab_loadgen.stats output")
    parser.add_argument("--server-after", type=Path, help="echolab_loadgen.stats output")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if (args.server_before is None) != (args.server_after is None):
        parser.error("--server-before and --server-after go together")
    try:
        reports = {path.stem: read_json(path) for path in args.reports}
        snapshots = [read_json(p) if p else None for p in (args.server_before, args.server_after)]
        merged = merge(reports, *snapshots)
    except ValueError as exc:
        print(f"echolab_loadgen.merge: {exc}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(merged.to_json()) if args.json else render(merged), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
