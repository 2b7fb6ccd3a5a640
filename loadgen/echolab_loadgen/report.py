"""The bench's results as Markdown tables and an SVG chart (hand-written: no plotting library)."""

import math
from xml.sax.saxutils import escape

MIB = 1 << 20
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#000000",
    "#aec7e8",
)


def load_label(connections, size):
    return f"{connections} x {size // 1024} KiB" if size >= 1024 else f"{connections} x {size} B"


def render_tables(results):
    plan, rows = results["plan"], results["rows"]
    m = results["machine"]
    out = [
        f"Measured {results['started']} on {m['cpu']} ({m['cores']} cores), Linux {m['kernel']}, "
        f"Docker {m['docker']}, {m['python']} ({m['base_image']}); medians of "
        f"{plan['repeats']} runs of {plan['duration_s']:g} s after a {plan['warmup_s']:g} s "
        f"warm-up, loadgen with {plan['procs']} process(es), over the compose network; "
        f"simulated work per message: {plan.get('work_delay_s', 0) * 1000:g} ms.",
        "",
    ]
    loads = [tuple(load) for load in plan["loads"]]
    head = ["variant"]
    for connections, size in loads:
        unit = "MiB/s" if size >= 1024 else "msgs/s"
        head += [f"{load_label(connections, size)} {unit}", "p99 us"]
    head += ["server CPU %", "loadgen CPU %"]
    out += ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    starved = failed = False
    for name, row in rows.items():
        cells = [name if row["kind"] == "variant" else f"{name} (extra)"]
        by_load = {(r["connections"], r["size"]): r["median"] for r in row["loads"]}
        for load in loads:
            med = by_load[load]
            value = med["mib_per_s"] if load[1] >= 1024 else med["msgs_per_s"]
            text = f"{value:,.1f}" if load[1] >= 1024 else f"{value:,.0f}"
            if med["served"] < load[0]:
                text += f" ({med['served']} served)"
                starved = True
            elif med["missing"]:
                text += " *"
                failed = True
            cells += [text, f"{med['p99_us']:,}" if med["p99_us"] else "-"]
        busiest = by_load[max(loads, key=lambda load: (load[1] < 1024, load[0]))]
        cells += [fmt(busiest["server_cpu_percent"]), fmt(busiest["loadgen_cpu_percent"])]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("CPU columns: at the busiest 64-byte load; 100% is one core.")
    if starved:
        out.append(
            "(N served): only N of the connections had an echo back during the run; the others "
            "waited all along (simple serves one connection at a time, the pool one per worker). "
            "Their first messages, echoed after the end, are in p99 (with a waiting time as long "
            "as the run) only where they are more than 1% of the messages."
        )
    if failed:
        out.append("`*`: some echoes were missing or connections failed in a run (see the JSON).")
    out += ["", *render_idle(rows), ""]
    return "\n".join(out)


def fmt(value):
    return "-" if value is None else f"{value:.0f}"


def render_idle(rows):
    idle = {name: row["idle"] for name, row in rows.items() if "idle" in row}
    if not idle:
        return []
    levels = list(next(iter(idle.values()))["memory"])
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
            cell = probe["memory"][level]
            text = f"{cell['memory_bytes'] / MIB:.1f}"
            if cell["idle_open"] < int(level):
                text += f" ({cell['idle_open']} open)"
            cells.append(text)
        most = probe["max_accepted"]
        cells.append(f"{most}" if probe["max_failure"] else f">= {most}")
        cells.append(escape(probe["max_failure"] or f"all {probe['max_tried']} served"))
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_chart(results, width=1000, height=420):
    """Two panels: msgs/s and p99 latency against connections (64-byte loads), a line per row."""
    loads = [tuple(load) for load in results["plan"]["loads"] if load[1] < 1024]
    series = {}
    for name, row in results["rows"].items():
        by_load = {(r["connections"], r["size"]): r["median"] for r in row["loads"]}
        series[name] = [by_load[load] for load in loads]
    xs = [c for c, _ in loads]
    panel_w, top, bottom, left = (width - 260) // 2, 40, height - 50, 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    panels = (
        ("throughput, msgs/s (64-byte messages)", "msgs_per_s", False),
        ("p99 latency, us (log scale)", "p99_us", True),
    )
    for i, (title, key, log) in enumerate(panels):
        x0 = left + i * (panel_w + 40)
        values = [m[key] or 0 for points in series.values() for m in points]
        y_of = Axis(values, top, bottom, log)
        parts.append(
            f'<text x="{x0 + panel_w / 2}" y="{top - 15}" text-anchor="middle" '
            f'font-weight="bold">{escape(title)}</text>'
        )
        parts.append(
            f'<rect x="{x0}" y="{top}" width="{panel_w}" height="{bottom - top}" '
            f'fill="none" stroke="#999"/>'
        )
        for tick, label in y_of.ticks:
            y = y_of(tick)
            parts.append(
                f'<line x1="{x0}" x2="{x0 + panel_w}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="#eee"/><text x="{x0 - 5}" y="{y + 4:.1f}" '
                f'text-anchor="end">{label}</text>'
            )
        x_of = {x: x0 + 20 + k * (panel_w - 40) / max(len(xs) - 1, 1) for k, x in enumerate(xs)}
        for x, px in x_of.items():
            parts.append(f'<text x="{px:.1f}" y="{bottom + 18}" text-anchor="middle">{x}</text>')
        parts.append(
            f'<text x="{x0 + panel_w / 2}" y="{bottom + 38}" text-anchor="middle">'
            "connections</text>"
        )
        for color, points in zip(COLORS, series.values(), strict=False):
            coords = " ".join(
                f"{x_of[x]:.1f},{y_of(m[key] or 0):.1f}" for x, m in zip(xs, points, strict=True)
            )
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
            for xy in coords.split():
                cx, cy = xy.split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
    legend_x = left + 2 * panel_w + 55  # right of both panels
    for k, (color, name) in enumerate(zip(COLORS, series, strict=False)):
        y = top + 10 + k * 20
        parts.append(
            f'<rect x="{legend_x}" y="{y - 9}" width="14" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 20}" y="{y}">{escape(name)}</text>'
        )
    parts.append("</svg>\n")
    return "\n".join(parts)


class Axis:
    """Maps values to y pixels (linear from 0, or log10), with round tick values."""

    def __init__(self, values, top, bottom, log):
        self.top, self.bottom, self.log = top, bottom, log
        high = max([*values, 1])
        if log:
            self.low_exp = (
                math.floor(math.log10(max(min(v for v in values if v > 0), 1)))
                if any(v > 0 for v in values)
                else 0
            )
            self.high_exp = max(math.ceil(math.log10(high)), self.low_exp + 1)
            self.ticks = [(10**e, f"{10**e:,}") for e in range(self.low_exp, self.high_exp + 1)]
        else:
            step = 10 ** math.floor(math.log10(high))
            step = next(s * step for s in (0.2, 0.5, 1, 2) if high / (s * step) <= 6)
            self.high = step * math.ceil(high / step)
            self.ticks = [
                (t * step, f"{t * step:,.0f}") for t in range(round(self.high / step) + 1)
            ]

    def __call__(self, value):
        span = self.bottom - self.top
        if self.log:
            exp = math.log10(max(value, 10**self.low_exp))
            return self.bottom - span * (exp - self.low_exp) / (self.high_exp - self.low_exp)
        return self.bottom - span * value / self.high
