"""The pictures, drawn with matplotlib from a run's data (the JSON written beside each one).

Drawing is a pure function of that data, so ``--redraw`` re-renders without Docker and the unit
tests draw from hand-made data. Every figure names the run that made it in its footer.
"""

import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure  # no pyplot: files only, no display or global state
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patches import Patch

from .documents import (
    CostParameters,
    CostPoint,
    Measured,
    PoolParameters,
    RaceParameters,
    RaceResult,
    RunFacts,
    WaitingLine,
    WaitParameters,
)

EXACT, RACY, NEUTRAL = "tab:blue", "tab:red", "0.45"
WAITING, SERVED = "tab:orange", "tab:green"
VARIANT_COLOURS = {"select": "tab:red", "poll": "tab:orange", "epoll": "tab:blue"}

W = TypeVar("W", bound=WaitParameters)
CostKey = Literal["server_us_per_msg", "p50_us"]


def footer(run: RunFacts, variants: Sequence[str], parameters: Mapping[str, object]) -> str:
    """The run that made a picture, in three lines: when and from which commit, what ran with
    which parameters, and where (how far to trust its timings)."""
    said = ", ".join(f"{key}={value}" for key, value in parameters.items())
    return (
        f"Measured {run['date']} from echolab {run['commit']}.\n"
        f"Variants: {', '.join(variants)}; {said}.\n{run['note']}."
    )


def new_figure(
    size: tuple[float, float],
    run: RunFacts,
    variants: Sequence[str],
    parameters: Mapping[str, object],
) -> Figure:
    fig = Figure(figsize=size, layout=ConstrainedLayoutEngine(h_pad=0.12))
    fig.supxlabel(footer(run, variants, parameters), fontsize=8, color="0.3", x=0.01, ha="left")
    return fig


def save(fig: Figure, stem: Path) -> None:
    """``stem``.png and ``stem``.svg (text stays text in the SVG: small and searchable)."""
    fig.savefig(f"{stem}.png", dpi=110)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "echolab"}):
        fig.savefig(f"{stem}.svg", metadata={"Date": None})


def race_summary(variant: str, result: RaceResult) -> str:
    lost = result["lost_updates"]
    counted = len(result["points"])
    last = result["points"][-1][1] if result["points"] else 0
    if lost:
        return f"{variant}: {counted} messages, last total {last}: lost {lost} of {counted} updates"
    return f"{variant}: {counted} messages, last total {last}: exact"


def threads_vs_lock(data: Measured[RaceParameters, dict[str, RaceResult]], run: RunFacts) -> Figure:
    """The total each server printed against the message number, and the diagonal."""
    p = data["parameters"]
    fig = new_figure((8, 6), run, data["variants"], p)
    ax: Axes = fig.subplots()
    sent = p["clients"] * p["repeat"]
    ax.plot([0, sent], [0, sent], color=NEUTRAL, ls="--", lw=1, label="exact (total = message)")
    for variant, colour, marker in (("lock", EXACT, "o"), ("threads", RACY, "s")):
        result = data["results"][variant]
        xs, ys = zip(*result["points"], strict=True) if result["points"] else ((), ())
        ax.plot(
            xs, ys, ls="", marker=marker, ms=3, color=colour, label=race_summary(variant, result)
        )
    threads = data["results"]["threads"]
    if threads["points"] and threads["lost_updates"]:
        n, total = threads["points"][-1]
        ax.annotate(
            f"{threads['lost_updates']} updates lost",
            xy=(n, total),
            xytext=(n, (n + total) / 2),
            ha="right",
            va="center",
            arrowprops={"arrowstyle": "<->", "color": RACY},
            color=RACY,
        )
    ax.set_xlim(0, sent * 1.02)
    ax.set_ylim(0, sent * 1.02)
    ax.set_xlabel("message number (the n-th message the server counted)")
    ax.set_ylabel('total the server printed ("Total messages received: N")')
    ax.set_title(
        f"{p['clients']} clients x {p['repeat']} messages: threads' unguarded read-work-write "
        "loses updates, lock's does not",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(True, alpha=0.3)
    return fig


def timeline(data: Measured[W, WaitingLine], run: RunFacts, title: str) -> Figure:
    """Each client on its own row: connected and waiting for its echo, then served; the
    newcomer's wait, and when the server accepted it (its log)."""
    clients = data["results"]["clients"]
    server = data["results"]["server"]
    fig = new_figure((9, 2.6 + 0.4 * len(clients)), run, data["variants"], data["parameters"])
    ax: Axes = fig.subplots()
    rows = {c["client"]: len(clients) - i for i, c in enumerate(clients)}
    for c in clients:
        y = rows[c["client"]]
        echoed = c["echoed"]
        ax.broken_barh(
            [(c["connected"], max(echoed - c["connected"], 0.002))],
            (y - 0.3, 0.6),
            color=WAITING,
            hatch="//",
            edgecolor="0.2",
            lw=0.3,
        )
        ax.broken_barh([(echoed, c["left"] - echoed)], (y - 0.3, 0.6), color=SERVED)
    first, newcomer = clients[0], clients[-1]
    ax.axvline(first["left"], color=NEUTRAL, ls="--", lw=1)
    ax.text(first["left"], len(clients) + 0.55, " client 1 leaves", fontsize=8, va="bottom")
    y = rows[newcomer["client"]]
    # Docker's timestamp of the log line: when the line reached the engine, a little after the
    # server wrote it (tenths of a second on a loaded machine).
    label = f"the server's log: accept()ed client {newcomer['client']}"
    ax.plot([server["accepted_newcomer"]], [y + 0.45], marker="v", color="k", ls="", label=label)
    waited = data["results"]["waited_s"]
    ax.text(
        (newcomer["sent"] + newcomer["echoed"]) / 2,
        y,
        f"client {newcomer['client']} waits {waited:.2f} s for its echo",
        ha="center",
        va="center",
        fontsize=9,
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
    )
    ax.set_yticks(list(rows.values()), [f"client {c}" for c in rows])
    ax.set_ylim(0.2, len(clients) + 1.1)
    ax.set_xlim(-0.1, max(c["left"] for c in clients) + 0.3)
    ax.set_xlabel("time since client 1 connected (s)")
    fig.suptitle(title, fontsize=10)
    handles = [
        Patch(facecolor=WAITING, hatch="//", edgecolor="0.2", label="connected, no echo yet"),
        Patch(facecolor=SERVED, label="echoed: being served"),
        *ax.get_legend_handles_labels()[0],
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, ncols=2)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def simple_wait(data: Measured[WaitParameters, WaitingLine], run: RunFacts) -> Figure:
    return timeline(
        data,
        run,
        "simple serves one client at a time: client 2 is connected (the kernel's backlog) "
        "but not accepted until client 1 leaves",
    )


def pool_wait(data: Measured[PoolParameters, WaitingLine], run: RunFacts) -> Figure:
    workers = data["parameters"]["workers"]
    return timeline(
        data,
        run,
        f"pool: {workers} workers serve {workers} clients; client {workers + 1} is accepted "
        "at once but waits in the queue until a worker is free",
    )


def cost_points(points: Sequence[CostPoint], key: CostKey) -> list[tuple[int, float, float, float]]:
    """(idle connections, median, min, max) of ``key`` over each measured level's runs."""
    out: list[tuple[int, float, float, float]] = []
    for point in points:
        if "runs" in point:
            values = [r[key] for r in point["runs"]]
            out.append((point["idle"], statistics.median(values), min(values), max(values)))
    return out


def stop_of(points: Sequence[CostPoint]) -> tuple[int, int, str | None] | None:
    """The level a variant could not reach: (idle tried, idle opened, why), or None."""
    return next(
        ((p["idle"], p["idle_open"], p["idle_failure"]) for p in points if "runs" not in p), None
    )


def readiness_cost(
    data: Measured[CostParameters, dict[str, list[CostPoint]]], run: RunFacts
) -> Figure:
    """Server CPU and median latency per echo against the idle connections watched; where a
    variant stops (select at FD_SETSIZE), a line and what stopped it."""
    p = data["parameters"]
    fig = new_figure((12, 5.6), run, data["variants"], p)
    cpu: Axes
    latency: Axes
    cpu, latency = fig.subplots(1, 2)
    panels: tuple[tuple[Axes, CostKey], ...] = ((cpu, "server_us_per_msg"), (latency, "p50_us"))
    for variant, points in data["results"].items():
        colour = VARIANT_COLOURS.get(variant)
        for ax, key in panels:
            xs, median, low, high = zip(*cost_points(points, key), strict=True)
            errors = [
                [m - lo for m, lo in zip(median, low, strict=True)],
                [hi - m for m, hi in zip(median, high, strict=True)],
            ]
            ax.errorbar(xs, median, yerr=errors, marker="o", capsize=3, color=colour, label=variant)
        x, y = xs[-1], cost_points(points, "server_us_per_msg")[-1][1]
        cpu.annotate(
            f"{y:,.0f} us",
            (x, y),
            xytext=(6, 0),
            textcoords="offset points",
            color=colour,
            fontsize=8,
            va="center",
        )
        stop = stop_of(points)
        if stop:
            tried, opened, why = stop
            fd_setsize = p["fd_setsize"]
            assert fd_setsize is not None, "a variant stops only at a ceiling: select's"
            for ax in (cpu, latency):
                ax.axvline(fd_setsize, color=colour, ls=":", lw=1.2)
            cpu.annotate(
                f"{variant} stops at FD_SETSIZE = {fd_setsize}: it cannot watch\n"
                f"descriptor {fd_setsize} or above, so the server refuses\nthe newcomer. "
                f"Of {tried:,} idle tried, {opened:,} opened;\n{wrap(why)}",
                xy=(fd_setsize, 0.62),
                xycoords=("data", "axes fraction"),
                xytext=(8, 0),
                textcoords="offset points",
                fontsize=8,
                color=colour,
                va="center",
            )
    cpu.set_title("server CPU per echoed message (median; bars: min-max)", fontsize=10)
    cpu.set_ylabel("server CPU per echo (us, from its cgroup)")
    cpu.set_ylim(bottom=0)
    latency.set_title(
        "round trip of the busy client (median of its p50s; bars: min-max)", fontsize=10
    )
    latency.set_ylabel("median latency per echo (us, log scale)")
    latency.set_yscale("log")
    for ax in (cpu, latency):
        ax.set_xlabel("idle connections watched besides the busy one")
        ax.set_xlim(left=-300)
        ax.grid(True, alpha=0.3)
    cpu.legend(loc="upper left", fontsize=9)
    fig.suptitle(
        "select and poll hand the kernel every socket on every call (O(watched)); "
        "epoll gets back the ready ones only (O(ready))",
        fontsize=11,
    )
    return fig


def wrap(text: str | None, width: int = 38) -> str:
    words, lines = (text or "").split(), [""]
    for word in words:
        if len(lines[-1]) + len(word) + 1 > width:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return "\n".join(lines)


# Each picture's document, by name (read back from JSON, it is whichever its name says).
DRAW: dict[str, Callable[[Measured[Any, Any], RunFacts], Figure]] = {
    "threads-vs-lock": threads_vs_lock,
    "simple-wait": simple_wait,
    "readiness-cost": readiness_cost,
    "pool-wait": pool_wait,
}
