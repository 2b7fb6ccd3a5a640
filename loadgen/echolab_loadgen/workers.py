"""Spreads one load over ``procs`` processes and merges what they measured."""

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import Any

from .engine import P_ECHOED, P_FAILED, P_SENT, PROGRESS_SLOTS, Engine, Load
from .histogram import LatencyRecorder
from .report import LoadTotals

PROGRESS_PERIOD_S = 1.0

OnProgress = Callable[[int, int, int], object]  # (sent, echoed, failed) so far, all workers


class WorkerDied(Exception):
    """A worker process ended without a report (killed, out of memory)."""


def _worker(
    load: Load, first: int, count: int, progress: Any, row: int, barrier: Barrier, pipe: Connection
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and ends the run
    engine = Engine(load, first, count, progress, row)
    pipe.send(engine.run(go=lambda: barrier.wait(load.timeout + 30)))
    pipe.close()


def shares(total: int, parts: int) -> list[tuple[int, int]]:
    """Split ``total`` connections into ``parts`` (first index, count) pairs, as even as can be."""
    out, first = [], 0
    for i in range(parts):
        count = total // parts + (i < total % parts)
        out.append((first, count))
        first += count
    return [share for share in out if share[1]]


def run_load(load: Load, procs: int, on_progress: OnProgress | None = None) -> LoadTotals:
    """Run ``load`` in worker processes; ``on_progress(sent, echoed, failed)`` about once a second.

    Returns the summed counts, the longest worker's measured window, the CPU all workers used and
    one latency recorder holding every worker's histogram.
    """
    ctx = multiprocessing.get_context("spawn")  # fork would copy a threaded parent (the tests)
    parts = shares(load.connections, procs)
    progress = ctx.RawArray("q", len(parts) * PROGRESS_SLOTS)
    barrier = ctx.Barrier(len(parts))
    pipes: list[Connection] = []
    workers: list[BaseProcess] = []
    for row, (first, count) in enumerate(parts):
        ours, theirs = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker, args=(load, first, count, progress, row, barrier, theirs), daemon=True
        )
        proc.start()
        theirs.close()
        pipes.append(ours)
        workers.append(proc)
    try:
        reports = _collect(pipes, workers, progress, on_progress)
    except KeyboardInterrupt:
        for worker in workers:
            worker.terminate()
        raise
    recorder = LatencyRecorder()
    for report in reports:
        recorder.merge(report.recorder)
    # Every worker reads the same container's counter over about the same window: the longest
    # reading is the container's, where a sum would count it once per worker.
    cgroup = [r.cgroup_cpu_s for r in reports if r.cgroup_cpu_s is not None]
    return LoadTotals(
        sent=sum(r.sent for r in reports),
        echoed=sum(r.echoed for r in reports),
        echoed_in_window=sum(r.echoed_in_window for r in reports),
        mismatched=sum(r.mismatched for r in reports),
        errors=sum(r.errors for r in reports),
        served=sum(r.served for r in reports),
        cpu_s=sum(r.cpu_s for r in reports),
        cgroup_cpu_s=max(cgroup) if cgroup else None,
        elapsed_s=max((r.elapsed_s for r in reports), default=0.0),
        first_error=next((r.first_error for r in reports if r.first_error), None),
        recorder=recorder,
    )


def _collect(
    pipes: list[Connection],
    workers: list[BaseProcess],
    progress: Any,
    on_progress: OnProgress | None,
) -> list[LoadTotals]:
    reports: list[LoadTotals | None] = [None] * len(pipes)
    waiting = dict(enumerate(pipes))
    while waiting:
        for i in [i for i, pipe in waiting.items() if pipe.poll(PROGRESS_PERIOD_S / len(pipes))]:
            try:
                reports[i] = waiting.pop(i).recv()
            except EOFError:
                workers[i].join()
                raise WorkerDied(
                    f"load worker {i} died (exit code {workers[i].exitcode})"
                ) from None
        if on_progress is not None and waiting:
            rows = range(0, len(progress), PROGRESS_SLOTS)
            on_progress(
                sum(progress[r + P_SENT] for r in rows),
                sum(progress[r + P_ECHOED] for r in rows),
                sum(progress[r + P_FAILED] for r in rows),
            )
    for worker in workers:
        worker.join()
    return [report for report in reports if report is not None]
