"""The results as Markdown tables and a chart (matplotlib: PNG and SVG), and the docs' block.

Every throughput cell shows its median, its min-max range, a flag where the spread is wide,
and what bound it: the reader must be able to tell a server's figure from loadgen's ceiling.
"""

import re
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure  # no pyplot: files only, no display or global state

from .measure import BOUNDS, SPREAD_FLAG, bound_rule
from .results import Cell, ClosedLoopResults, LatencyResults, Row

MIB = 1 << 20
BOUND_MARK = {key: b.mark for key, b in BOUNDS.items()}
C_KINDS = ("ruler", "yardstick")  # the C row: "yardstick" in results before the ruler was ours
HOLLOW_MEANS = "hollow: loadgen saturated\n(C or C+S): not the\nserver's figure"
RESULTS_BLOCK_BEGIN = "<!-- bench-results:begin (generated: python -m echolab_bench --readme) -->"
RESULTS_BLOCK_END = "<!-- bench-results:end -->"


def load_label(connections: int, size: int) -> str:
    return f"{connections} x {size // 1024} KiB" if size >= 1024 else f"{connections} x {size} B"


def row_label(name: str, row: Row) -> str:
    return name if row.kind == "variant" else f"{name} ({row.kind})"


def machine_lines(results: ClosedLoopResults | LatencyResults) -> list[str]:
    """When and where a run was measured: the machine, the images, the pinning."""
    m = results.machine
    start, end = (
        ", ".join(f"{x:.2f}" for x in loads)
        for loads in (m.load_average_at_start, m.load_average_at_end)
    )
    return [
        f"Measured {results.started} to {results.finished}.",
        "",
        f"- machine: {m.cpu}, {m.cores} cores, Linux {m.kernel}, Docker {m.docker} "
        f"({m.storage_driver}); load average (1, 5, 15 min) {start} at the start, {end} at "
        "the end",
        f"- images: {m.base_image}; server Python {m.server_python}, uvloop {m.uvloop}; "
        f"loadgen Python {m.loadgen_python}, ddsketch {m.ddsketch}",
        f"- pinning: servers on CPUs {m.server_cpus}, loadgen on CPUs {m.loadgen_cpus}",
    ]


def header(results: ClosedLoopResults) -> list[str]:
    """Where it ran and how, in a few lines."""
    plan = results.plan
    return [
        *machine_lines(results),
        f"- runs: {plan.rounds} interleaved rounds of {plan.duration_s:g} s per cell, "
        f"after a {plan.warmup_s:g} s warm-up; loadgen with {plan.procs} process(es); "
        f"simulated work per message {plan.work_delay_s * 1000:g} ms",
    ]


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def throughput(cell: Cell, row_connections: int) -> str:
    digits = 1 if cell.unit == "mib_per_s" else 0
    text = f"{fmt(cell.median, digits)}"
    if cell.served < row_connections:
        text += f" ({cell.served} served)"
    elif cell.missing or cell.mismatched:
        text += " (errors)"
    return text


def render_tables(results: ClosedLoopResults) -> str:
    rows = results.rows
    out = [*header(results), ""]
    for i, (connections, size) in enumerate(results.plan.loads):
        unit = "MiB/s" if size >= 1024 else "msgs/s"
        out += [
            f"**{load_label(connections, size)}**",
            "",
            f"| variant | {unit} (median) | min - max | spread | bound | p99 us | server CPU % "
            "| server us/msg | loadgen CPU % | loadgen us/msg |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            cell = row.loads[i]
            digits = 1 if cell.unit == "mib_per_s" else 0
            spread = "-" if cell.spread is None else f"{100 * cell.spread:.0f}%"
            if cell.spread_flagged:
                spread += " !"
            out.append(
                f"| {row_label(name, row)} | {throughput(cell, connections)} "
                f"| {fmt(cell.min, digits)} - {fmt(cell.max, digits)} | {spread} "
                f"| {BOUND_MARK[cell.bound]} | {fmt(cell.p99_us)} "
                f"| {fmt(cell.server_cpu_percent)} | {fmt(cell.server_us_per_msg, 1)} "
                f"| {fmt(cell.loadgen_cpu_percent)} | {fmt(cell.loadgen_us_per_msg, 1)} |"
            )
        out.append("")
    out += [*legend(), ""]
    out += ratios(results)
    out += render_idle(rows)
    return "\n".join(out) + "\n"


def legend() -> list[str]:
    return [
        "bound (what limited the median run):",
        "",
        *bound_rule(),
        "",
        f"spread = (max - min) / median over the rounds; ! marks one above {SPREAD_FLAG:.0%}. "
        "CPU %: 100 is one core. us/msg: CPU microseconds of that container per echoed message "
        "(the kernel's TCP work in it included), which compares servers whatever bound the run. "
        "(N served): only N connections had an echo during the run (simple serves one at a "
        "time, pool one per worker).",
    ]


def ratios(results: ClosedLoopResults) -> list[str]:
    """Python against the C row at 10 and 100 connections x 64 B, where both ran."""
    rows = results.rows
    c = [name for name, row in rows.items() if row.kind in C_KINDS]
    if not c:
        return []
    cells = {name: {(x.connections, x.size): x for x in row.loads} for name, row in rows.items()}
    out = [
        "Python against C (the C row), 64-byte messages:",
        "",
        "| variant | 10 conn: msgs/s vs C | server us/msg vs C | 100 conn: msgs/s vs C "
        "| server us/msg vs C |",
        "|---|---:|---:|---:|---:|",
    ]
    base = cells[c[0]]
    for name, row in rows.items():
        if row.kind != "variant":
            continue
        parts = []
        for load in ((10, 64), (100, 64)):
            mine, theirs = cells[name].get(load), base.get(load)
            if mine is None or theirs is None:
                parts += ["-", "-"]
                continue
            parts.append(
                f"{mine.median / theirs.median:.0%} ({BOUND_MARK[mine.bound]} vs "
                f"{BOUND_MARK[theirs.bound]})"
            )
            cost, c_cost = mine.server_us_per_msg, theirs.server_us_per_msg
            parts.append(f"{cost / c_cost:.2f}x" if cost and c_cost else "-")
        out.append(f"| {name} | " + " | ".join(parts) + " |")
    out.append("")
    for load in ((10, 64), (100, 64)):
        theirs = base.get(load)
        python = {
            name: cells[name][load]
            for name, row in rows.items()
            if row.kind == "variant" and load in cells[name]
        }
        if not python or theirs is None:
            continue
        best = max(python, key=lambda name: python[name].median)
        cell = python[best]
        cost, c_cost = cell.server_us_per_msg, theirs.server_us_per_msg
        out.append(
            f"At {load[0]} connections the fastest Python variant, {best}, echoed "
            f"{cell.median:,.0f} msgs/s, {cell.median / theirs.median:.0%} of C's "
            f"{theirs.median:,.0f} (bound: {cell.bound} vs {theirs.bound})"
            + (f", at {cost / c_cost:.2f}x C's server CPU per message." if cost and c_cost else ".")
        )
    return [*out, ""]


def render_idle(rows: dict[str, Row]) -> list[str]:
    idle = {name: row.idle for name, row in rows.items() if row.idle is not None}
    if not idle:
        return []
    levels = list(next(iter(idle.values())).memory)
    head = [
        "variant",
        *(f"memory, {level} idle (MiB)" for level in levels),
        "most accepted",
        "the next one",
    ]
    out = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 2) + "|---|"]
    for name, probe in idle.items():
        cells = [name]
        for level in levels:
            memory = probe.memory[level]
            text = f"{memory.memory_bytes / MIB:.1f}"
            if memory.idle_open < int(level):
                text += f" ({memory.idle_open} open)"
            cells.append(text)
        most = probe.max_accepted
        cells.append(f"{most}" if probe.max_failure else f">= {most}")
        cells.append((probe.max_failure or f"all {probe.max_tried} served").replace("|", "/"))
        out.append("| " + " | ".join(cells) + " |")
    return [*out, ""]


def styles(count: int) -> list[tuple[tuple[float, ...], str, str]]:
    """``count`` distinct (colour, marker, line) styles: tab10's colours with round markers and
    solid lines, then the same colours again with other markers and dashes, and so on."""
    colours = [matplotlib.colormaps["tab10"](i) for i in range(10)]
    looks = [("o", "-"), ("s", "--"), ("D", ":"), ("^", "-.")]
    return [(colours[i % 10], *looks[(i // 10) % len(looks)]) for i in range(count)]


def render_chart(results: ClosedLoopResults, stem: Path | str) -> None:
    """msgs/s (median, min-max bars) and p99 against connections, 64-byte loads; a line per row.

    Points where loadgen was saturated (C, C+S) are hollow: the figure is not the server's.
    Writes ``stem``.png and ``stem``.svg.
    """
    loads = [i for i, (_, size) in enumerate(results.plan.loads) if size < 1024]
    rows = results.rows
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    tput, p99 = fig.subplots(1, 2)
    for (name, row), (colour, marker, line) in zip(rows.items(), styles(len(rows)), strict=True):
        cells = [row.loads[i] for i in loads]
        xs = [c.connections for c in cells]
        median = [c.median for c in cells]
        errors = [[c.median - c.min for c in cells], [c.max - c.median for c in cells]]
        label = row_label(name, row)
        tput.errorbar(
            xs, median, yerr=errors, color=colour, ls=line, capsize=3, lw=1.5, label=label
        )
        p99.plot(xs, [c.p99_us for c in cells], color=colour, ls=line, lw=1.5)
        for x, y, p, c in zip(xs, median, [c.p99_us for c in cells], cells, strict=True):
            face = "white" if BOUNDS[c.bound].hollow else colour
            for axis, value in ((tput, y), (p99, p)):
                axis.plot([x], [value], marker=marker, color=colour, markerfacecolor=face, ms=7)
    for axis, title in (
        (tput, "throughput, msgs/s (median; bars: min-max)"),
        (p99, "p99 latency, us"),
    ):
        axis.set_xscale("log")
        axis.set_xticks(xs, [str(x) for x in xs])
        axis.set_xlabel("connections (64-byte messages)")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    p99.set_yscale("log")
    tput.set_ylim(bottom=0)
    m = results.machine
    fig.suptitle(
        f"echolab bench {results.started}: servers on CPUs {m.server_cpus}, loadgen on "
        f"CPUs {m.loadgen_cpus}, {results.plan.rounds} rounds"
    )
    fig.legend(loc="outside right upper", fontsize=9, title=HOLLOW_MEANS)
    fig.savefig(f"{stem}.png", dpi=110)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: small, searchable
        fig.savefig(f"{stem}.svg")


def results_block(results: ClosedLoopResults, name: str) -> str:
    """docs/bench.md's generated section: the tables and the chart of one result file."""
    return "\n".join(
        [
            RESULTS_BLOCK_BEGIN,
            f"From `bench/results/{name}.json` (tables: `{name}.md`; chart: `{name}.png`, `.svg`).",
            "",
            render_tables(results).rstrip("\n"),
            "",
            f"![throughput with min-max and p99 against connections](pictures/bench/{name}.svg)",
            RESULTS_BLOCK_END,
        ]
    )


def replace_block(path: Path, begin: str, end: str, block: str) -> bool:
    """Replace the text from ``begin`` to ``end`` in the file with ``block``; False if absent."""
    text = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        return False
    path.write_text(pattern.sub(lambda _: block, text, count=1))
    return True


def refresh_results_block(page: Path, results: ClosedLoopResults, name: str) -> bool:
    """Replace the generated block in ``page`` with ``results``'; False if it has no block."""
    return replace_block(page, RESULTS_BLOCK_BEGIN, RESULTS_BLOCK_END, results_block(results, name))
