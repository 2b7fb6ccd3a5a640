"""Spreads one load over ``procs`` processes and merges what they measured."""

import multiprocessing
import signal

from .engine import P_ECHOED, P_FAILED, P_SENT, PROGRESS_SLOTS, Engine
from .histogram import LatencyRecorder

PROGRESS_PERIOD_S = 1.0
SUMMED = ("sent", "echoed", "echoed_in_window", "mismatched", "errors", "served", "cpu_s")


class WorkerDied(Exception):
    """A worker process ended without a report (killed, out of memory)."""


def _worker(load, first, count, progress, row, barrier, pipe):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and ends the run
    engine = Engine(load, first, count, progress, row)
    pipe.send(engine.run(go=lambda: barrier.wait(load.timeout + 30)))
    pipe.close()


def shares(total, parts):
    """Split ``total`` connections into ``parts`` (first index, count) pairs, as even as can be."""
    out, first = [], 0
    for i in range(parts):
        count = total // parts + (i < total % parts)
        out.append((first, count))
        first += count
    return [share for share in out if share[1]]


def run_load(load, procs, on_progress=None):
    """Run ``load`` in worker processes; ``on_progress(sent, echoed, failed)`` about once a second.

    Returns the summed counts, the longest worker's measured window, the CPU all workers used and
    one latency recorder holding every worker's histogram.
    """
    ctx = multiprocessing.get_context("spawn")  # fork would copy a threaded parent (the tests)
    parts = shares(load.connections, procs)
    progress = ctx.RawArray("q", len(parts) * PROGRESS_SLOTS)
    barrier = ctx.Barrier(len(parts))
    pipes, workers = [], []
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
        for proc in workers:
            proc.terminate()
        raise
    recorder = LatencyRecorder()
    merged = dict.fromkeys(SUMMED, 0) | {"elapsed_s": 0.0, "first_error": None}
    # Every worker reads the same container's counter over about the same window: the longest
    # reading is the container's, where a sum would count it once per worker.
    cgroup = [r["cgroup_cpu_s"] for r in reports if r["cgroup_cpu_s"] is not None]
    merged["cgroup_cpu_s"] = max(cgroup) if cgroup else None
    for report in reports:
        for key in SUMMED:
            merged[key] += report[key]
        merged["elapsed_s"] = max(merged["elapsed_s"], report["elapsed_s"])
        merged["first_error"] = merged["first_error"] or report["first_error"]
        recorder.merge(report["recorder"])
    merged["recorder"] = recorder
    return merged


def _collect(pipes, workers, progress, on_progress):
    reports = [None] * len(pipes)
    waiting = dict(enumerate(pipes))
    while waiting:
        for i in [i for i, pipe in waiting.items() if pipe.poll(PROGRESS_PERIOD_S / len(pipes))]:
            try:
                reports[i] = waiting.pop(i).recv()
            except EOFError:
                code = workers[i].join() or workers[i].exitcode
                raise WorkerDied(f"load worker {i} died (exit code {code})") from None
        if on_progress is not None and waiting:
            rows = range(0, len(progress), PROGRESS_SLOTS)
            on_progress(
                sum(progress[r + P_SENT] for r in rows),
                sum(progress[r + P_ECHOED] for r in rows),
                sum(progress[r + P_FAILED] for r in rows),
            )
    for proc in workers:
        proc.join()
    return reports
