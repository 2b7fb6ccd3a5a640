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
from pathlib import Path

from echolab_common.cli import Parser

from .histogram import LatencyRecorder

SUMMED = ("sent", "echoed", "mismatched", "missing", "errors", "connections")
RATES = ("msgs_per_s", "mib_per_s")
SERVER_COUNTS = ("messages", "connections_total")


def merge(reports, server_before=None, server_after=None):
    """One report from ``{label: report}``; the server's counts where both snapshots are given.

    ValueError names the report that cannot be merged.
    """
    recorder = LatencyRecorder()
    rows = []
    for label, report in reports.items():
        try:
            recorder.merge(LatencyRecorder.from_json(report["latency_sketch"]))
            rows.append(
                {"replica": label}
                | {key: report[key] for key in (*SUMMED, *RATES, "duration_s")}
                | {"p50_us": report["latency_us"]["p50"], "p99_us": report["latency_us"]["p99"]}
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"report {label}: not a loadgen --json report ({exc})") from None
    total = {key: sum(row[key] for row in rows) for key in SUMMED}
    total |= {key: round(sum(row[key] for row in rows), 3) for key in RATES}
    total["duration_s"] = max((row["duration_s"] for row in rows), default=0.0)
    total["latency_us"] = recorder.summary()
    out = {"replicas": len(rows), "total": total, "rows": rows}
    if server_before is not None and server_after is not None:
        out["server"] = server_counts(server_before, server_after)
        total["server_counted"] = out["server"]["messages"]
    return out


def server_counts(before, after):
    """Each server replica's counts over the run, and their exact sum.

    A replica missing from ``before`` started during the run (its counters began at 0); one
    missing from ``after`` went away, and its count is unknown (None).
    """
    rows = []
    for address in sorted(set(before["replicas"]) | set(after["replicas"])):
        old = before["replicas"].get(address, dict.fromkeys(SERVER_COUNTS, 0))
        new = after["replicas"].get(address)
        rows.append(
            {"address": address}
            | {key: None if new is None else new[key] - old[key] for key in SERVER_COUNTS}
        )
    totals = {
        key: None if any(row[key] is None for row in rows) else sum(row[key] for row in rows)
        for key in SERVER_COUNTS
    }
    return totals | {"rows": rows}


def render(merged):
    """The merged report as a table: a row per replica, the total, the server's counts."""
    head = f"{'replica':<24} {'sent':>9} {'echoed':>9} {'errors':>7} {'msgs/s':>10} "
    head += f"{'p50 us':>8} {'p99 us':>8}"
    lines = [head]
    for row in merged["rows"]:
        lines.append(
            f"{row['replica']:<24} {row['sent']:>9} {row['echoed']:>9} {row['errors']:>7} "
            f"{row['msgs_per_s']:>10,.0f} {row['p50_us']:>8} {row['p99_us']:>8}"
        )
    total = merged["total"]
    lat = total["latency_us"]
    lines.append(
        f"{'all ' + str(merged['replicas']) + ' replicas':<24} {total['sent']:>9} "
        f"{total['echoed']:>9} {total['errors']:>7} {total['msgs_per_s']:>10,.0f} "
        f"{lat['p50']:>8} {lat['p99']:>8}"
    )
    lines.append(
        f"latency of all replicas (merged sketch), us: p50 {lat['p50']}  p90 {lat['p90']}  "
        f"p99 {lat['p99']}  p999 {lat['p999']}  max {lat['max']}"
    )
    server = merged.get("server")
    if server:
        for row in server["rows"]:
            lines.append(
                f"server replica {row['address']:<15} messages {fmt(row['messages'])}  "
                f"connections {fmt(row['connections_total'])}"
            )
        lines.append(
            f"server, all replicas: messages {fmt(server['messages'])} "
            f"(sent {total['sent']})  connections {fmt(server['connections_total'])}"
        )
    return "\n".join(lines)


def fmt(value):
    return "unknown (replica gone)" if value is None else str(value)


def last_json(text):
    """The last line of ``text`` that is a JSON object (logs may hold other lines too)."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError("no JSON object in it")


def read_json(path):
    try:
        return last_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def main(argv=None):
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
    print(json.dumps(merged) if args.json else render(merged), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
