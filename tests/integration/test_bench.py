"""A tiny bench on the real compose.yaml: loadgen, the bench driver and its outputs, end to end.

A benchmark, not a test of speed: nothing here asserts how fast anything was, only that every
load was measured, every echo was intact, and the JSON, tables and chart were written.  It runs
in a compose project of its own, so neither the user's lab nor the other tests' stack is touched.
"""

import json

import pytest
from echolab_loadgen import bench

pytestmark = pytest.mark.integration


def test_a_tiny_bench_writes_json_tables_and_chart(tmp_path):
    argv = [
        "--quick",
        "--variants",
        "poll",
        "--duration",
        "0.5",
        "--project",
        "echolab-test-bench",
        "--out",
        str(tmp_path),
    ]
    assert bench.main(argv) == 0

    [results] = tmp_path.glob("*.json")
    data = json.loads(results.read_text())
    assert list(data["rows"]) == ["poll"]
    row = data["rows"]["poll"]
    assert [(r["connections"], r["size"]) for r in row["loads"]] == list(bench.LOADS)
    for load in row["loads"]:
        [run] = load["runs"]
        assert run["echoed"] > 0 and run["served"] == load["connections"]
        assert run["mismatched"] == run["missing"] == run["errors"] == 0
        assert run["server_cpu_percent"] > 0, "the server's cgroup CPU counter was read"
    assert row["idle"]["max_accepted"] == row["idle"]["max_tried"] == 200
    assert row["idle"]["memory"]["100"]["idle_open"] == 100
    assert data["machine"]["cores"] >= 1 and data["machine"]["python"].startswith("Python 3.")

    tables = results.with_suffix(".md").read_text()
    assert "| poll | " in tables and "memory, 100 idle" in tables
    chart = results.with_suffix(".svg").read_text()
    assert chart.startswith("<svg") and ">poll</text>" in chart
