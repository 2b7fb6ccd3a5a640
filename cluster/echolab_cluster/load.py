"""Load from many nodes: loadgen replicas on the load nodes at once, their reports merged with
the server's own counts (``make cluster-bench``), and the deadline a run of loadgen deserves."""

import itertools
from collections.abc import Sequence

from echolab_loadgen.merge import MergedReport, last_json, merge

from . import stack
from .errors import ClusterError
from .nodes import Cluster
from .stats import STATS_PORT

BENCH_LOAD = ["--connections", "20", "--duration", "5"]
BENCH_SLACK_S = 120  # beyond the load's own duration: starting, waiting for the target, logs


def bench(cluster: Cluster, target: str, replicas: int | None, load: Sequence[str]) -> MergedReport:
    """Run loadgen replicas against ``target`` and merge their reports with the server's stats."""
    if not cluster.hosts.nodes():
        raise ClusterError(f"no cluster {cluster.name}: `make cluster` first")
    load = loadgen_options(load)
    replicas = replicas or len(cluster.swarm.load_nodes())
    config = stack.compose_config()
    before = cluster.stats.wait_serving(config, target)
    running = len(before["replicas"])
    args = ["--target", target, "--json", *load]
    tasks = cluster.swarm.run_tool("loadgen", replicas, args, deadline(load))
    after = cluster.stats.servers(target, stack.published(config, target, STATS_PORT), running)
    reports = {}
    for slot, task in enumerate(tasks, 1):
        try:
            reports[f"{task.node}.{slot}"] = last_json(task.logs)
        except ValueError:
            raise ClusterError(
                f"loadgen on {task.node} ended {task.state}: {task.last_words()}"
            ) from None
    return merge(reports, before, after)


def loadgen_options(load: Sequence[str]) -> list[str]:
    """The options after ``--``, else the default load."""
    return [arg for arg in load if arg != "--"] or BENCH_LOAD


def deadline(load: Sequence[str]) -> float:
    """Seconds a loadgen run with options ``load`` may take: its own duration (0 when given by
    messages) and the slack to start, wait for its target and report."""
    for flag, value in itertools.pairwise(load):
        if flag == "--duration":
            try:
                return BENCH_SLACK_S + float(value)
            except ValueError:
                raise ClusterError(f"--duration: not a number: {value!r}") from None
    return BENCH_SLACK_S
