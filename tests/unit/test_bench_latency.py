"""make bench-latency without Docker: the ladder, who serves a load, capacity at a target, when
loadgen gets more processes, the one bound rule, and the tables and chart of a made-up run."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
from echolab_bench import latency, latency_output
from echolab_bench.generator import GENERATORS, echo_load_run
from echolab_bench.latency import (
    capacity_at,
    capacity_record,
    ladder,
    ladder_rounds,
    make_plan,
    more_procs,
    serves,
    summarize_rung,
)
from echolab_bench.latency_output import render_chart, render_tables
from echolab_bench.measure import BOUNDS, Target, bound, bound_rule, loadgen_run
from echolab_bench.output import legend
from echolab_bench.results import LatencyLoad, LatencyResults, LatencyRow
from echolab_server.variants import registry

from .bench_results import MACHINE, bench_run, summary_at

ROOT = Path(__file__).resolve().parents[2]


def rung(offered, p99, bound_label="elsewhere", missing=0):
    """A rung of one run at ``offered`` msgs/s with that p99."""
    return summarize_rung(offered, [replace(fake_run(offered, p99, bound_label), missing=missing)])


def test_the_ladder_climbs_from_well_below_capacity_to_past_it() -> None:
    rates = ladder(73_456, (0.1, 0.5, 1.0, 1.25))
    assert rates == [7_300, 37_000, 73_000, 92_000]  # two significant figures, ascending
    assert ladder(73_456, (1.25, 0.1)) == [7_300, 92_000]
    assert ladder(5, (0.1, 1.0)) == [1, 5]  # never below one message a second


def test_a_load_is_run_only_on_variants_that_serve_that_many_at_once() -> None:
    variants = registry()
    assert not serves(variants["simple"], 100)  # one at a time
    assert not serves(variants["pool"], 100)  # one per worker
    assert serves(variants["poll"], 1000) and serves(variants["threads"], 1000)
    assert serves(variants["select"], 1000)  # 1,000 + its own descriptors < FD_SETSIZE
    assert not serves(variants["select"], 1020)


def test_capacity_is_the_last_rate_before_p99_first_breaks_the_target() -> None:
    rungs = [rung(1000, 200), rung(5000, 400), rung(9000, 1500), rung(12000, 800)]
    held, top = capacity_at(rungs, 1000)
    assert held is not None and held.offered == 5000 and not top  # 12,000's p99 came back under
    held, top = capacity_at(list(reversed(rungs)), 1000)  # the order given does not matter
    assert held is not None and held.offered == 5000


def test_capacity_says_when_the_ladder_ended_first_or_nothing_held() -> None:
    held, top = capacity_at([rung(1000, 200), rung(2000, 300)], 1000)
    assert held is not None and held.offered == 2000 and top  # the knee is above the ladder
    assert capacity_at([rung(1000, 5000), rung(2000, 300)], 1000) == (None, False)
    # A lost echo breaks it too, whatever the p99.
    held, _ = capacity_at([rung(1000, 200), rung(2000, 300, missing=1)], 1000)
    assert held is not None and held.offered == 1000


def test_the_knee_is_looked_for_halfway_between_the_rates_that_held_and_broke() -> None:
    rungs = [rung(1000, 200), rung(5000, 400), rung(9000, 1500), rung(12000, 800)]
    assert latency.halfway(rungs, 1000) == 7000
    assert latency.halfway([*rungs, rung(7000, 1200)], 1000) == 6000
    assert latency.halfway([rung(19_000, 1184), rung(47_000, 3000)], 1000) == 9500  # to nothing
    assert latency.halfway([rung(1000, 200), rung(2000, 300)], 1000) is None  # above the top
    assert latency.halfway([rung(1000, 200), rung(1010, 3000)], 1000) is None  # nothing between
    assert latency.halfway([rung(1, 3000)], 1000) is None


def test_a_stored_run_is_read_at_another_target_from_its_rungs() -> None:
    results = fake_results()
    row = results.loads[0].rows["poll"]
    row.rungs = [rung(offered, p99) for offered, p99 in ((1000, 900), (5000, 4000), (9000, 20_000))]
    row = latency.retarget(results, 5000).loads[0].rows["poll"]
    assert results.plan.target_us == 5000
    assert row.capacity_at_target is not None and row.capacity_at_target.offered == 5000
    assert not row.capacity_at_target.ladder_top
    assert latency.retarget(results, 500).loads[0].rows["poll"].capacity_at_target is None


def test_loadgen_gets_more_processes_only_where_it_was_the_ceiling_and_may_use_more() -> None:
    assert more_procs("client", 1, 4) == 2
    assert more_procs("both", 2, 4) == 4
    assert more_procs("both", 2, 3) == 3
    assert more_procs("client", 1, 1) is None  # on 2 cores loadgen has one: it stays the ceiling
    assert more_procs("server", 1, 4) is None
    assert more_procs("elsewhere", 1, 4) is None


def test_one_rule_for_every_bound_in_code_tables_and_chart() -> None:
    assert [b.mark for b in BOUNDS.values()] == ["S", "C", "C+S", "E"]
    assert {bound(0.95, 0.5), bound(0.5, 0.95), bound(0.95, 0.95), bound(0.5, 0.5)} == set(BOUNDS)
    # Hollow exactly where loadgen was saturated (C and C+S), as the text says.
    assert [k for k, b in BOUNDS.items() if b.hollow] == ["client", "both"]
    rule = bound_rule()
    assert len(rule) == 4 and all(line in legend() for line in rule)
    assert "C+S" in rule[2] and "only the server's CPU per message" in rule[2]


def fake_run(rate, p99, bound_label, procs=1):
    return bench_run(
        msgs_per_s=rate,
        latency_us=summary_at(p99),
        bound=bound_label,
        server_cpu_percent=50.0,
        loadgen_cgroup_cpu_percent=40.0,
        procs=procs,
    )


def test_a_rung_is_the_median_p99_with_its_spread_and_that_runs_bound() -> None:
    runs = [fake_run(900, 300, "elsewhere"), fake_run(880, 900, "client")]
    runs.append(fake_run(910, 500, "server"))
    r = summarize_rung(1000, runs)
    assert (r.offered, r.achieved, r.p99_us) == (1000, 900, 500)
    assert r.bound == "server" and r.bounds == ["elsewhere", "client", "server"]
    assert (r.p99_min_us, r.p99_max_us) == (300, 900)
    assert r.p99_spread == 1.2 and r.spread_flagged


class FakeStack:
    loadgen_cores = 1


def test_rounds_interleave_rows_and_grow_loadgen_where_it_was_the_ceiling(monkeypatch) -> None:
    calls = []

    def fake_measure(stack, plan, target, load, duration, rate=None, procs=None, generator=None):
        assert generator is loadgen_run
        calls.append((target.name, rate, procs))
        # Row b saturates loadgen at its closed loop and higher rates with one process.
        saturated = target.name == "b" and (rate is None or rate > 500) and procs == 1
        capacity = {"a": 1000, "b": 2000}[target.name]
        p99 = 200 if rate is None or rate <= capacity * 0.8 else 5000
        return fake_run(rate or capacity, p99, "client" if saturated else "elsewhere", procs)

    monkeypatch.setattr(latency, "measure", fake_measure)
    monkeypatch.setattr(latency, "say", lambda text: None)
    argv = ["--quick", "--loadgen-cpus", "1-2", "--generator", "python"]
    args = latency.build_parser().parse_args(argv)
    plan = make_plan(args)
    targets = [Target(n, "variant", n, 12345, 8080, None, 1) for n in ("a", "b")]
    out = ladder_rounds(FakeStack(), plan, targets, (100, 64))
    # The ladder, then one rate halfway between the last that held and the first that broke.
    assert plan.refine == 1
    assert [r.offered for r in out["a"].rungs] == [250, 600, 750, 900, 1200]
    capacity = {name: row.capacity_at_target for name, row in out.items()}
    assert capacity["a"] is not None and capacity["a"].offered == 750  # 600 held, 900 broke
    assert capacity["b"] is not None and capacity["b"].offered == 1500  # 1,200 held, 1,800 broke
    # b's warm-up saturated one process: every later run of b had two, a's kept one.
    assert {p for n, _, p in calls if n == "a"} == {1}
    assert [p for n, _, p in calls if n == "b"][:2] == [1, 2]
    assert {p for n, _, p in calls[3:] if n == "b"} == {2}
    # Interleaved: consecutive rounds of one rate start with a different row.
    ladder_calls = [n for n, rate, _ in calls if rate is not None]
    assert ladder_calls[:4] == ["a", "b", "b", "a"]


def fake_results():
    def row(capacity, bound_label):
        rungs = [
            summarize_rung(rate, [fake_run(rate, 200 if rate < capacity else 3000, bound_label)])
            for rate in ladder(capacity, latency.QUICK_FRACTIONS)
        ]
        return LatencyRow(
            closed_loop=fake_run(capacity, 2000, bound_label),
            rungs=rungs,
            capacity_at_target=capacity_record(rungs, 1000),
        )

    args = ["--quick", "--server-cpus", "0", "--loadgen-cpus", "1"]
    plan = make_plan(latency.build_parser().parse_args(args))
    load = LatencyLoad(
        connections=100,
        size=64,
        left_out=["simple", "pool"],
        rows={"poll": row(40_000, "server"), "c-epoll": row(80_000, "both")},
    )
    return LatencyResults(
        started="2026-12-06T00:00:00+00:00",
        plan=plan,
        loads=[load],
        machine=MACHINE,
        finished="2026-12-06T00:10:00+00:00",
    )


def test_the_tables_give_capacity_the_ratio_to_c_and_say_where_loadgen_was_the_ceiling(
    tmp_path,
) -> None:
    tables = render_tables(fake_results(), "c-epoll")
    assert "**Capacity at p99 < 1 ms, 100 x 64 B**" in tables
    assert re.search(r"\| poll \| 36,000 \| S \| 200 \| 40,000 \(S\) \| 50% \|", tables)
    assert "Python's best at p99 < 1 ms: poll, 36,000 msgs/s, 50% of C's 72,000" in tables
    assert "C's figure is loadgen's ceiling" in tables
    ceiling = (
        "Loadgen as the ceiling, 100 x 64 B:\n\n- c-epoll: loadgen saturated (C+S) from 20,000"
    )
    assert ceiling in tables
    assert "Left out (they serve fewer at once): simple, pool." in tables
    assert "- load generator: C, bench/c/echo_load.c" in tables
    knee = "then up to 1 more per row, each halfway between its highest rate under a p99 of 1 ms"
    assert knee in tables
    assert all(line in tables for line in bound_rule())
    render_chart(fake_results(), tmp_path / "chart")
    svg = (tmp_path / "chart.svg").read_text()
    assert ">poll<" in svg and ">c-epoll<" in svg and "target p99 1 ms" in svg
    assert (tmp_path / "chart.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--variants", "nope"], "unknown variant nope"),
        (["--server-cpus", "1", "--loadgen-cpus", "1"], "share CPU 1"),
    ],
)
def test_bad_plans_are_one_line_errors(argv, message) -> None:
    with pytest.raises(latency.BenchError, match=message):
        make_plan(latency.build_parser().parse_args(argv))


def test_the_c_generator_drives_every_run_unless_python_is_asked_for() -> None:
    parse = latency.build_parser().parse_args
    plan = make_plan(parse(["--loadgen-cpus", "1-2"]))
    assert GENERATORS[plan.generator] is echo_load_run
    assert plan.procs == plan.max_procs == 1  # one thread: never grown
    python = make_plan(parse(["--loadgen-cpus", "1-2", "--generator", "python"]))
    assert GENERATORS[python.generator] is loadgen_run and python.max_procs == 2
    with pytest.raises(latency.BenchError, match="--procs is Python loadgen's"):
        make_plan(parse(["--procs", "2"]))


def test_bad_arguments_exit_2_with_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        latency.build_parser().parse_args(["--connections", "100,x"])
    assert exit_.value.code == 2
    assert "expected connection counts" in capsys.readouterr().err


def test_docs_latency_states_the_bound_rule_the_code_uses() -> None:
    page = (ROOT / "docs" / "latency.md").read_text()
    block = page.split("<!-- bound-rule: kept equal")[1].split("<!-- bound-rule: end -->")[0]
    assert block.splitlines()[1:] == bound_rule()
    assert latency_output.DOCS_BEGIN in page and latency_output.DOCS_END in page
