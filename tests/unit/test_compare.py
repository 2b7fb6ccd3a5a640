"""The compare table (each setup's median round, where it ran, every round's figure), and how
long a loadgen run on the cluster may take."""

from dataclasses import replace

import pytest
from echolab_cluster.compare import median_round, render
from echolab_cluster.errors import ClusterError
from echolab_cluster.load import BENCH_SLACK_S, deadline
from echolab_loadgen.histogram import LatencySummary
from echolab_loadgen.merge import MergedReport, ReplicaRow, ServerCounts, ServerReplica, Total


def report(msgs_per_s, servers=("node1",), load=("node2",), p50=900):
    """A merged report (``echolab_loadgen.merge``): what the table reads, the rest zeros."""
    counts = dict.fromkeys(("sent", "echoed", "mismatched", "missing", "errors", "connections"), 0)
    rates = {"msgs_per_s": msgs_per_s, "mib_per_s": 0.0, "duration_s": 1.0}
    latency = LatencySummary(p50=p50, p90=p50, p99=p50 * 10, p999=p50 * 10, max=p50 * 10)
    rows = [
        ReplicaRow(replica=f"{node}.{slot}", **counts, **rates, p50_us=p50, p99_us=p50 * 10)
        for slot, node in enumerate(load, 1)
    ]
    server = ServerCounts(
        messages=0,
        connections_total=0,
        rows=[ServerReplica(address=node, messages=0, connections_total=0) for node in servers],
    )
    total = Total(**counts, **rates, latency_us=latency)
    return MergedReport(replicas=len(rows), total=total, rows=rows, server=server)


def test_the_median_round_is_the_middle_one_or_the_lower_middle_one():
    rounds = [report(3000), report(1000), report(2000)]
    assert median_round(rounds) is rounds[2]
    assert median_round([*rounds, report(4000)]) is rounds[2]
    assert median_round([report(5)]) == report(5)


def test_a_row_per_setup_from_its_median_round_with_every_rounds_figure():
    bridge = replace(report(9000, load=("node3",)), server=None)
    runs = {
        "bridge": [bridge],
        "2 server replicas": [
            report(2500, ("node2", "node1"), ("node3",), p50=1500),
            report(2100, ("node1", "node2"), ("node3",), p50=1700),
            report(1900, ("node1", "node2"), ("node3",), p50=2000),
        ],
    }
    lines = render(runs).splitlines()
    assert lines[2:] == [
        "| bridge | node3 <- node3 | 9,000 | 900 | 9,000 | 9,000 |",
        "| 2 server replicas | node1, node2 <- node3 | 2,100 | 1,700 | 17,000 | "
        "2,500, 2,100, 1,900 |",
    ]


def test_a_loadgen_run_may_take_its_duration_and_the_slack():
    assert deadline(["--connections", "20", "--duration", "5"]) == BENCH_SLACK_S + 5
    assert deadline(["--messages", "100"]) == BENCH_SLACK_S
    with pytest.raises(ClusterError, match=r"--duration: not a number: 'soon'"):
        deadline(["--duration", "soon"])
