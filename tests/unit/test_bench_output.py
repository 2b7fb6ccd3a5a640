"""The bench without Docker: its command line, bounds, spread, rounds, tables, chart, page block."""

import pytest
from echolab_bench import measure
from echolab_bench.cli import build_parser as bench_parser
from echolab_bench.measure import LOADS, Plan, Target, bound, rounds, summarize
from echolab_bench.output import (
    RESULTS_BLOCK_BEGIN,
    RESULTS_BLOCK_END,
    refresh_results_block,
    render_chart,
    render_tables,
    styles,
)
from echolab_bench.results import ClosedLoopResults, PlanRecord, Row

from .bench_results import MACHINE, bench_run


def fake_run(msgs_per_s, bound_label="server"):
    return bench_run(msgs_per_s=msgs_per_s, mib_per_s=msgs_per_s / 16, bound=bound_label)


def fake_results(names):
    rows = {}
    for k, name in enumerate(names):
        kind = "ruler" if name == "c-epoll" else "extra" if name.startswith("x") else "variant"
        cells = [
            summarize(load, [fake_run(1000 * (k + 1) + d) for d in (0, 50, 100)]) for load in LOADS
        ]
        rows[name] = Row(kind=kind, address=f"{name}:12345", loads=cells)
    plan = PlanRecord(
        loads=LOADS,
        duration_s=2.0,
        rounds=3,
        warmup_s=0.5,
        procs=1,
        work_delay_s=0.0,
        server_cpus="0",
        loadgen_cpus="1",
    )
    return ClosedLoopResults(
        started="2026-11-26T00:00:00+00:00",
        plan=plan,
        machine=MACHINE,
        rows=rows,
        finished="2026-11-26T00:10:00+00:00",
    )


def test_bound_names_what_was_saturated() -> None:
    assert bound(0.95, 0.5) == "server"
    assert bound(0.5, 0.95) == "client"
    assert bound(0.92, 0.91) == "both"
    assert bound(0.5, 0.7) == "elsewhere"
    assert bound(None, 0.5) == "elsewhere"


def test_rounds_interleave_every_row_and_rotate_who_goes_first(monkeypatch) -> None:
    """Drift on a shared machine must land on every row alike: each round runs every row once,
    starting one row further along; warm-ups come first and are not in the cells."""
    order = []

    def fake_measure(stack, plan, target, load, duration):
        order.append((target.name, load, duration))
        return fake_run(1000)

    monkeypatch.setattr(measure, "measure", fake_measure)
    plan = Plan(("a", "b", "c"), (), None, LOADS[:1], 2.0, 4, 0.5, 1, 0.0, (), 0)
    targets = [Target(n, "variant", n, 1, 0, None, 1) for n in "abc"]
    cells = rounds(None, plan, targets, lambda *cell: None)
    load = LOADS[0]
    assert order[:3] == [(n, load, 0.5) for n in "abc"]
    assert [name for name, _, _ in order[3:]] == list("abcbcacababc")
    assert all(duration == 2.0 for _, _, duration in order[3:])
    assert {name: len(c[0].runs) for name, c in cells.items()} == {"a": 4, "b": 4, "c": 4}


def test_a_cell_is_the_median_with_its_range_spread_and_the_median_runs_bound() -> None:
    runs = [fake_run(100, "client"), fake_run(130, "server"), fake_run(90, "client")]
    cell = summarize((10, 64), runs)
    assert (cell.median, cell.min, cell.max) == (100, 90, 130)
    assert cell.spread == 0.4 and cell.spread_flagged
    assert cell.bound == "client" and cell.bounds == ["client", "server", "client"]
    steady = summarize((10, 64), [fake_run(100), fake_run(110), fake_run(105)])
    assert steady.spread is not None and steady.spread < 0.2 and not steady.spread_flagged


def test_thirteen_rows_all_reach_the_tables_and_the_chart(tmp_path) -> None:
    """11 variants plus two servers of one's own: none may silently drop off."""
    names = [f"v{k}" for k in range(11)] + ["c-epoll", "xmine"]
    results = fake_results(names)
    assert len(set(styles(len(names)))) == len(names)
    tables = render_tables(results)
    for name in names[:11]:
        assert f"| {name} | " in tables
    assert "| c-epoll (ruler) | " in tables and "| xmine (extra) | " in tables
    assert "Python against C" in tables
    # v10 is the fastest fake variant: 11,050 msgs/s against c-epoll's 12,050.
    assert "At 100 connections the fastest Python variant, v10, echoed 11,050 msgs/s, 92%" in tables
    render_chart(results, tmp_path / "chart")
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    svg = (tmp_path / "chart.svg").read_text()
    for name in names:
        assert f">{name}" in svg, f"{name} is missing from the chart's legend"


def test_the_results_block_is_replaced_and_the_rest_kept(tmp_path) -> None:
    page = tmp_path / "bench.md"
    page.write_text(f"before\n{RESULTS_BLOCK_BEGIN}\nold table\n{RESULTS_BLOCK_END}\nafter\n")
    assert refresh_results_block(page, fake_results(["poll"]), "20261126T000000Z")
    text = page.read_text()
    assert text.startswith("before\n") and text.endswith("after\n")
    assert "old table" not in text and "| poll | " in text and "20261126T000000Z.svg" in text
    page.write_text("no block here\n")
    assert not refresh_results_block(page, fake_results(["poll"]), "x")


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--duration", "nan"], "--duration: not a finite number: 'nan'"),
        (["--work-delay", "inf"], "--work-delay: not a finite number: 'inf'"),
        (["--work-delay", "2"], "--work-delay: must be at most 1"),
    ],
)
def test_the_bench_takes_loadgens_checked_numbers(capsys, argv, complaint):
    with pytest.raises(SystemExit) as exit_info:
        bench_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(f"bench: error: argument {complaint}") and err.count("\n") == 1
