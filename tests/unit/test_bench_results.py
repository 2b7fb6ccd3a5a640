"""Every committed result file loads into the bench's types and writes back the same JSON, byte
for byte, so a change to a type that would strand a stored run fails here first."""

import json
from pathlib import Path

import pytest
from echolab_bench import cli
from echolab_bench.docker import BenchError
from echolab_bench.results import ClosedLoopResults, FirstResults, LatencyResults
from echolab_common.record import decode

from .test_bench_latency import fake_results as fake_latency_results
from .test_bench_output import fake_results as fake_closed_loop_results

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
STORED = sorted(RESULTS.glob("*.json"))
FIRST_FORMAT = {"20261125T154416Z", "20261125T160338Z", "20261125T170016Z"}


def test_there_are_result_files_of_every_format():
    stems = {path.stem for path in STORED}
    assert FIRST_FORMAT.issubset(stems)
    assert any(stem.endswith("-latency") for stem in stems)
    assert stems - FIRST_FORMAT - {s for s in stems if s.endswith("-latency")}


@pytest.mark.parametrize("path", STORED, ids=lambda path: path.name)
def test_a_stored_run_loads_into_its_type_and_writes_back_byte_for_byte(path):
    text = path.read_text()
    results = decode(ClosedLoopResults | LatencyResults | FirstResults, json.loads(text))
    expected = (
        LatencyResults
        if path.stem.endswith("-latency")
        else FirstResults
        if path.stem in FIRST_FORMAT
        else ClosedLoopResults
    )
    assert type(results) is expected
    assert json.dumps(results.to_json(), indent=1) + "\n" == text


@pytest.mark.parametrize("results", [fake_closed_loop_results(["poll"]), fake_latency_results()])
def test_what_a_run_writes_reads_back_as_the_same_results(results):
    written = json.loads(json.dumps(results.to_json()))
    assert type(results).from_json(written) == results


def test_the_readme_refuses_a_first_format_or_latency_file_in_one_line():
    with pytest.raises(BenchError, match="first format") as first:
        cli.readme_only(RESULTS / "20261125T154416Z.json")
    latency = next(path for path in STORED if path.stem.endswith("-latency"))
    with pytest.raises(BenchError, match="cannot read") as other:
        cli.readme_only(latency)
    assert "\n" not in str(first.value) + str(other.value)
