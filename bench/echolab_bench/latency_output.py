"""``make bench-latency``'s results as Markdown and a chart: p99 (log) against offered rate.

The capacity table comes first (the figure engineers size by), then every rate of every row,
then the rule that says what each bound lets you compare. Where loadgen was saturated, the
text and the chart say so: such a figure is loadgen's, not the server's.
"""

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from .generator import DESCRIPTIONS
from .measure import BOUNDS, SPREAD_FLAG, bound_rule
from .output import HOLLOW_MEANS, fmt, machine_lines, replace_block, styles
from .results import LatencyLoad, LatencyPlan, LatencyResults, LatencyRow

DOCS_BEGIN = '<!-- latency-results:begin (generated: make bench-latency ARGS="--docs X.json") -->'
DOCS_END = "<!-- latency-results:end -->"


def header(results: LatencyResults) -> list[str]:
    """Where it ran and how: the bench's machine lines, then the ladder's plan."""
    plan = results.plan
    generator = plan.generator or "python"
    procs = f", {plan.procs} process(es) to start with, at most {plan.max_procs}"
    return [
        *machine_lines(results),
        f"- load generator: {DESCRIPTIONS[generator]}{procs if generator == 'python' else ''}",
        f"- runs: per row, after a {plan.warmup:g} s warm-up, its closed-loop capacity (the "
        f"median of {plan.rounds} interleaved rounds), then offered rates at "
        f"{', '.join(f'{f:g}' for f in plan.fractions)} x that capacity, each in "
        f"{plan.rounds} interleaved rounds of {plan.duration:g} s, open loop (--rate: "
        "latency from each message's due time)"
        + (
            f", then up to {plan.refine} more per row, each halfway between its highest rate "
            f"under a p99 of {plan.refine_target_us / 1000:g} ms and its lowest over it"
            if plan.refine and plan.refine_target_us
            else ""
        ),
    ]


def capacity_text(row: LatencyRow) -> str:
    held = row.capacity_at_target
    if held is None:
        lowest = row.rungs[0]
        return f"none (p99 {lowest.p99_us:,} us at {lowest.offered:,})"
    text = f"{held.offered:,}"
    if held.ladder_top:
        text = f">= {text} (p99 held up to the ladder's top)"
    return text


def capacity_table(load: LatencyLoad, target_ms: float, c_row: str) -> list[str]:
    rows = load.rows
    c = rows[c_row].capacity_at_target if c_row in rows else None
    out = [
        f"**Capacity at p99 < {target_ms:g} ms, {load.connections} x {load.size} B**",
        "",
        f"| row | msgs/s offered, p99 < {target_ms:g} ms | bound there | p99 us there "
        "| closed loop msgs/s (bound) | vs C |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        held = row.capacity_at_target
        closed = row.closed_loop
        ratio = "-"
        if held and c and name != c_row:
            ratio = f"{held.offered / c.offered:.0%}"
        out.append(
            f"| {name} | {capacity_text(row)} "
            f"| {BOUNDS[held.bound].mark if held else '-'} "
            f"| {fmt(held.p99_us) if held else '-'} "
            f"| {closed.msgs_per_s:,.0f} ({BOUNDS[closed.bound].mark}) | {ratio} |"
        )
    out.append("")
    python = {
        n: r.capacity_at_target for n, r in rows.items() if n != c_row and r.capacity_at_target
    }
    if python and c:
        best = max(python, key=lambda n: python[n].offered)
        mine = python[best]
        out.append(
            f"Python's best at p99 < {target_ms:g} ms: {best}, {mine.offered:,} msgs/s, "
            f"{mine.offered / c.offered:.0%} of C's {c.offered:,} (bound "
            f"{BOUNDS[mine.bound].mark} vs {BOUNDS[c.bound].mark}"
            + (
                "; C's figure is loadgen's ceiling, so the share overstates Python)."
                if c.bound in ("client", "both")
                else ")."
            )
        )
        out.append("")
    if load.left_out:
        out += [f"Left out (they serve fewer at once): {', '.join(load.left_out)}.", ""]
    return out


def loadgen_notes(load: LatencyLoad, plan: LatencyPlan) -> list[str]:
    """Where loadgen was the ceiling, or ran with more processes: said, row by row."""
    notes = []
    for name, row in load.rows.items():
        saturated = [r for r in row.rungs if r.bound in ("client", "both")]
        if saturated:
            first = saturated[0]
            notes.append(
                f"- {name}: loadgen saturated ({BOUNDS[first.bound].mark}) from "
                f"{first.offered:,} msgs/s offered, with {first.procs} process(es) on "
                f"{plan.max_procs} CPU(s) it may use: from there on the figures are loadgen's "
                "ceiling, not the server's; more loadgen CPUs (--loadgen-cpus) would lift it."
            )
        grown = [r for r in row.rungs if r.procs > plan.procs]
        if grown:
            notes.append(
                f"- {name}: loadgen ran with {grown[0].procs} processes from "
                f"{grown[0].offered:,} msgs/s offered (one process was the ceiling)."
            )
    heading = f"Loadgen as the ceiling, {load.connections} x {load.size} B:"
    return [heading, "", *notes, ""] if notes else []


def ladder_table(load: LatencyLoad) -> list[str]:
    out = [
        f"**Every rate, {load.connections} x {load.size} B**",
        "",
        "| row | offered msgs/s | achieved | p50 us | p99 us | p99 min - max | p99.9 us | bound "
        "| server CPU % | loadgen CPU % | loadgen procs |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, row in load.rows.items():
        for r in row.rungs:
            flag = " !" if r.spread_flagged else ""
            errors = " (errors)" if r.missing or r.mismatched else ""
            out.append(
                f"| {name} | {r.offered:,} | {r.achieved:,}{errors} | {r.p50_us:,} "
                f"| {r.p99_us:,}{flag} | {r.p99_min_us:,} - {r.p99_max_us:,} "
                f"| {r.p999_us:,} | {BOUNDS[r.bound].mark} "
                f"| {fmt(r.server_cpu_percent)} | {fmt(r.loadgen_cpu_percent)} "
                f"| {r.procs} |"
            )
    return [*out, ""]


def render_tables(results: LatencyResults, c_row: str) -> str:
    plan = results.plan
    target_ms = plan.target_us / 1000
    out = [*header(results), ""]
    for load in results.loads:
        out += capacity_table(load, target_ms, c_row)
    for load in results.loads:
        out += loadgen_notes(load, plan)
    for load in results.loads:
        out += ladder_table(load)
    out += [
        "bound (what limited the run whose p99 is the median):",
        "",
        *bound_rule(),
        "",
        f"p99 min - max: over the rounds; ! marks a spread (max - min) / median above "
        f"{SPREAD_FLAG:.0%}. Latencies are from each message's due time to its full echo, so a "
        "server (or a loadgen) that falls behind shows it. (errors): a message lost or wrong.",
    ]
    return "\n".join(out) + "\n"


def render_chart(results: LatencyResults, stem: Path | str) -> None:
    """p99 (log) against offered msgs/s, a line per row, a panel per load; the target dashed."""
    loads = results.loads
    target = results.plan.target_us
    fig = Figure(figsize=(6.5 * len(loads) + 1, 6.2), layout="constrained")
    axes = fig.subplots(1, len(loads), squeeze=False)[0]
    names = list(dict.fromkeys(n for load in loads for n in load.rows))
    look = dict(zip(names, styles(len(names)), strict=True))
    for axis, load in zip(axes, loads, strict=True):
        for name, row in load.rows.items():
            colour, marker, line = look[name]
            xs = [r.offered for r in row.rungs]
            ys = [r.p99_us for r in row.rungs]
            axis.plot(xs, ys, color=colour, ls=line, lw=1.5, label=name)
            for x, y, r in zip(xs, ys, row.rungs, strict=True):
                face = "white" if BOUNDS[r.bound].hollow else colour
                axis.plot([x], [y], marker=marker, color=colour, markerfacecolor=face, ms=6)
        axis.axhline(target, color="grey", ls="--", lw=1)
        axis.annotate(
            f"target p99 {target / 1000:g} ms",
            (0, target),
            xycoords=("axes fraction", "data"),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=8,
            color="grey",
        )
        axis.set_yscale("log")
        axis.set_xlabel("offered load, msgs/s")
        axis.set_ylabel("p99 latency, us (log)")
        axis.set_title(f"{load.connections} connections x {load.size} B")
        axis.grid(True, which="both", alpha=0.3)
        axis.set_xlim(left=0)
    m = results.machine
    fig.suptitle(
        f"echolab latency under load, {results.started}\nservers on CPUs {m.server_cpus}, "
        f"loadgen on CPUs {m.loadgen_cpus}; median p99 of {results.plan.rounds} rounds"
    )
    handles, labels = axes[0].get_legend_handles_labels()
    for axis in axes[1:]:
        for h, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=min(len(labels), 7),
        fontsize=9,
        title=HOLLOW_MEANS.replace("\n", " "),
    )
    fig.savefig(f"{stem}.png", dpi=110)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(f"{stem}.svg")


def refresh_docs(page: Path, results: LatencyResults, name: str, c_row: str) -> bool:
    """Replace the generated block of ``page`` (docs/latency.md) with one run's capacity tables
    and chart; False if the page has no block."""
    plan = results.plan
    lines = [
        DOCS_BEGIN,
        f"From `bench/results/{name}.json` (every rate: `{name}.md`; chart: `{name}.png`, `.svg`).",
        "",
        *header(results),
        "",
    ]
    for load in results.loads:
        lines += capacity_table(load, plan.target_us / 1000, c_row)
    for load in results.loads:
        lines += loadgen_notes(load, plan)
    lines += [f"![p99 against offered load](pictures/bench/{name}.svg)", DOCS_END]
    return replace_block(page, DOCS_BEGIN, DOCS_END, "\n".join(lines))
