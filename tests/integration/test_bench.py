"""A tiny bench on the real compose.yaml: the bench driver, loadgen and the outputs, end to end.

A benchmark, not a test of speed: nothing here asserts how fast anything was, only that every
load was measured in interleaved rounds with both sides' CPU read, every echo was intact, each
cell carries its spread and its bound, and the JSON, tables and chart were written.  It runs
in a compose project of its own, so neither the user's lab nor the other tests' stack is touched.
"""

import json

import pytest
from echolab_bench import cli
from echolab_bench.measure import LOADS, SATURATED, bound_rule

pytestmark = pytest.mark.integration

MACHINE_KEYS = {
    "cpu",
    "cores",
    "kernel",
    "docker",
    "storage_driver",
    "base_image",
    "server_python",
    "loadgen_python",
    "uvloop",
    "ddsketch",
    "server_cpus",
    "loadgen_cpus",
    "load_average_at_start",
    "load_average_at_end",
}


def expected_bound(run, server_cores, loadgen_cores):
    client = run["loadgen_cpu_s"] / run["duration_s"] / loadgen_cores >= SATURATED
    server = run["server_cpu_s"] / run["duration_s"] / server_cores >= SATURATED
    return {(True, True): "both", (True, False): "client", (False, True): "server"}.get(
        (client, server), "elsewhere"
    )


def test_a_tiny_bench_writes_json_tables_and_chart(tmp_path):
    """One variant, two rounds (the order of rows in a round is tested in unit tests)."""
    argv = ["--quick", "--variants", "protocol", "--duration", "0.5", "--rounds", "2", "--no-c"]
    argv += ["--project", "echolab-test-bench", "--out", str(tmp_path)]
    assert cli.main(argv) == 0

    [results] = tmp_path.glob("*.json")
    data = json.loads(results.read_text())
    assert set(data["machine"]) >= MACHINE_KEYS
    assert data["machine"]["server_python"].startswith("3.")
    assert data["machine"]["ddsketch"] and data["machine"]["uvloop"]
    pinned = data["machine"]["server_cpus"] != "any"
    cores = (1, 1) if pinned and data["machine"]["cores"] == 2 else None
    assert list(data["rows"]) == ["protocol"]
    for row in data["rows"].values():
        assert [(c["connections"], c["size"]) for c in row["loads"]] == list(LOADS)
        for cell in row["loads"]:
            assert len(cell["runs"]) == 2
            assert cell["min"] <= cell["median"] <= cell["max"]
            assert cell["spread_flagged"] == (cell["spread"] > 0.2)
            assert cell["bound"] in cell["bounds"]
            for run in cell["runs"]:
                # Correctness, not speed: on a busy machine a 0.5 s window may end before some
                # connection's first echo (served < connections); every echo is still checked.
                assert run["echoed"] > 0 and 0 <= run["served"] <= cell["connections"]
                assert run["mismatched"] == run["missing"] == run["errors"] == 0
                assert run["server_cpu_s"] > 0, "the server's cgroup CPU counter was read"
                assert run["loadgen_cpu_s"] > 0, "loadgen's cgroup CPU counter was read"
                assert run["server_us_per_msg"] > 0 and run["loadgen_us_per_msg"] > 0
                if cores:
                    assert run["bound"] == expected_bound(run, *cores)
        assert row["idle"]["max_accepted"] == row["idle"]["max_tried"] == 200
        assert row["idle"]["memory"]["100"]["idle_open"] == 100

    tables = results.with_suffix(".md").read_text()
    assert "| protocol | " in tables and "memory, 100 idle" in tables
    assert all(line in tables for line in bound_rule()) and "at the start" in tables
    assert results.with_suffix(".png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = results.with_suffix(".svg").read_text()
    assert "<svg" in svg and "protocol" in svg
