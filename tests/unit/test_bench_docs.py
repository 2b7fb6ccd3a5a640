"""The docs' generated result blocks are what today's code renders from the result files they
name: a changed table, rule or result file shows here, not only when someone reruns them."""

import re
import shutil
from pathlib import Path

from echolab_bench import latency
from echolab_bench.cli import BENCH_PAGE, C_ROW, load_results
from echolab_bench.latency_output import refresh_docs
from echolab_bench.output import refresh_results_block
from echolab_bench.results import ClosedLoopResults, LatencyResults

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
PICTURES = BENCH_PAGE.parent / "pictures" / "bench"
NAMED = re.compile(r"From `bench/results/(\S+)\.json`")


def rerendered(page: Path, tmp_path: Path) -> tuple[str, str]:
    """(the page's block's run, the page with that block rendered again from the run)."""
    found = NAMED.findall(page.read_text())
    assert len(found) == 1, f"{page.name} names {found} in its generated block"
    name = found[0]
    copy = Path(shutil.copy(page, tmp_path / page.name))
    if page == latency.DOCS:
        assert refresh_docs(
            copy, load_results(RESULTS / f"{name}.json", LatencyResults), name, C_ROW
        )
    else:
        stored = load_results(RESULTS / f"{name}.json", ClosedLoopResults)
        assert refresh_results_block(copy, stored, name)
    return name, copy.read_text()


def test_the_bench_pages_block_is_its_run_rendered_by_todays_code(tmp_path) -> None:
    name, fresh = rerendered(BENCH_PAGE, tmp_path)
    assert fresh == BENCH_PAGE.read_text(), f'stale: make bench ARGS="--readme {name}.json"'
    assert (PICTURES / f"{name}.svg").exists()


def test_the_latency_pages_block_is_its_run_rendered_by_todays_code(tmp_path) -> None:
    name, fresh = rerendered(latency.DOCS, tmp_path)
    assert fresh == latency.DOCS.read_text(), f'stale: make bench-latency ARGS="--docs {name}.json"'
    assert (PICTURES / f"{name}.svg").exists()
