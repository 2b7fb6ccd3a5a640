"""Reports of several loadgen replicas merge into one: sums exact, quantiles from the merged
sketch (percentiles of different processes cannot be averaged)."""

import json
import random
from dataclasses import replace

import pytest
from echolab_loadgen.histogram import LatencyRecorder
from echolab_loadgen.merge import MergedReport, ServerReplica, main, merge, server_counts
from echolab_loadgen.report import SustainedReport

from .test_loadgen import run_json, serve  # noqa: F401 (serve is a fixture)


def report(samples, **counts):
    """A loadgen --json report of ``samples`` (the parts merge reads)."""
    recorder = LatencyRecorder()
    for micros in samples:
        recorder.record(micros)
    sent = len(samples)
    report = SustainedReport(
        target="server-poll:12345",
        sent=sent,
        echoed=sent,
        mismatched=0,
        missing=0,
        errors=0,
        server_counted=None,
        lost_updates=None,
        msgs_per_s=100.0,
        mib_per_s=0.1,
        duration_s=2.0,
        connections=4,
        size=64,
        latency_us=recorder.summary(),
        first_error=None,
        served=4,
        loadgen_cpu_percent=50.0,
        procs=1,
        rate=None,
        latency_sketch=recorder.to_sketch(),
    )
    return json.loads(json.dumps(replace(report, **counts).to_json()))  # as it travels


def test_merging_two_reports_gives_the_quantiles_of_one_sketch_of_both_sample_sets():
    rng = random.Random(9)
    fast = [rng.randint(50, 400) for _ in range(20_000)]
    slow = [int(rng.lognormvariate(9, 1)) for _ in range(3_000)] + [0, 0]  # zeros too
    both = LatencyRecorder()
    for micros in fast + slow:
        both.record(micros)
    merged = merge({"node2": report(fast), "node3": report(slow)})
    assert merged.total.latency_us == both.summary()
    assert merged.total.sent == len(fast) + len(slow)
    averaged = (report(fast)["latency_us"]["p99"] + report(slow)["latency_us"]["p99"]) / 2
    assert merged.total.latency_us.p99 != averaged, "the wrong way gives another answer"


def test_sums_are_exact_and_every_replica_has_a_row():
    merged = merge(
        {"a": report([100] * 7, errors=1, msgs_per_s=50.5), "b": report([200] * 5, missing=2)}
    )
    total = merged.total
    assert (total.sent, total.errors, total.missing) == (12, 1, 2)
    assert total.msgs_per_s == 150.5 and total.connections == 8
    assert [row.replica for row in merged.rows] == ["a", "b"]
    assert merged.replicas == 2
    assert list(merged.to_json()) == ["replicas", "total", "rows"]
    assert "server_counted" not in merged.to_json()["total"]


def test_server_counts_sum_every_replica_and_say_when_one_is_gone():
    before = {"replicas": {"node1": {"messages": 10, "connections_total": 1}}}
    after = {
        "replicas": {
            "node1": {"messages": 110, "connections_total": 3},
            "node2": {"messages": 90, "connections_total": 2},  # started during the run
        }
    }
    counts = server_counts(before, after)
    assert (counts.messages, counts.connections_total) == (190, 4)
    gone = server_counts(after, before)
    assert gone.messages is None
    assert ServerReplica(address="node2", messages=None, connections_total=None) in gone.rows
    merged = merge({"a": report([100])}, after, before).to_json()
    assert merged["total"]["server_counted"] is None, "a replica gone: the count is unknown"
    assert list(merged) == ["replicas", "total", "rows", "server"]


def test_real_reports_merge_from_files_with_the_servers_count(serve, capsys, tmp_path):  # noqa: F811
    base = serve()
    for name in ("node2", "node3"):
        code, result, _ = run_json(capsys, [*base, "--connections", "3", "--messages", "20"])
        assert code == 0
        (tmp_path / f"{name}.json").write_text("other log line\n" + json.dumps(result) + "\n")
    snapshot = {"replicas": {"10.0.0.5": {"messages": 0, "connections_total": 0}}}
    (tmp_path / "before.json").write_text(json.dumps(snapshot))
    snapshot["replicas"]["10.0.0.5"] = {"messages": 120, "connections_total": 6}
    (tmp_path / "after.json").write_text(json.dumps(snapshot))
    files = [str(tmp_path / n) for n in ("node2.json", "node3.json")]
    extra = ["--server-before", str(tmp_path / "before.json")]
    extra += ["--server-after", str(tmp_path / "after.json")]
    assert main([*files, *extra, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    merged = MergedReport.from_json(out)
    assert merged.to_json() == out, "the merged report reads back as it was written"
    assert merged.total.sent == merged.total.echoed == 120
    assert out["total"]["server_counted"] == 120
    assert main(files) == 0
    table = capsys.readouterr().out
    assert "node2" in table and "node3" in table and "all 2 replicas" in table


@pytest.mark.parametrize("content", ["", "{not json\n", '{"sent": 3}\n'])
def test_a_bad_report_is_one_line_and_exit_1(capsys, tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("echolab_loadgen.merge: ") and err.count("\n") == 1
