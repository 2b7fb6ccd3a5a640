"""``python -m echolab_cluster compare``: what leaving one machine changes, measured.

The same server (server-poll, quiet: no line per message) under the same load per loadgen
replica, four ways, on a cluster in its default layout (3 nodes, servers on node1):

- ``bridge``: server and loadgen inside one load node, on a bridge network of that node's own
  engine: the lab as it runs on one machine;
- ``overlay, 1 load node``: the server on node1, one loadgen replica on a load node, through
  the stack's overlay network;
- ``overlay, 2 load nodes``: the same with a loadgen replica on each load node;
- ``2 server replicas``: node2 turned server node, a replica there and on node1, one loadgen
  replica on node3 whose connections DNS round robin spreads over both.

Rounds interleave the setups, so a shared machine's drift hits every setup alike; each setup's
row is its median round by msgs/s, and the table lists every round's figure.
"""

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any

from docker.errors import NotFound
from echolab_host import speaking
from echolab_loadgen.merge import MergedReport, last_json, merge

from . import stack
from .errors import ClusterError
from .load import bench, deadline
from .nodes import Cluster

Load = Sequence[str]

TARGET = "server-poll"
BRIDGE_NODE = "node3"
BRIDGE_NETWORK = "echolab-compare"
BRIDGE_SERVER = "echolab-compare-server"
LAYOUT = {"node1": [stack.SERVER_LABEL], "node2": [stack.LOAD_LABEL], "node3": [stack.LOAD_LABEL]}


def on_a_bridge(cluster: Cluster, load: Load) -> MergedReport:
    """One loadgen run against the bridge server (``BridgeLab``), as a merged report."""
    args = ["--target", BRIDGE_SERVER, "--wait", str(stack.TOOL_WAIT_S), "--json", *load]
    with speaking(f"loadgen on {BRIDGE_NODE}'s bridge"):
        out = cluster.hosts.engine(BRIDGE_NODE, deadline(load)).containers.run(
            f"echolab-loadgen:{cluster.tag}", args, network=BRIDGE_NETWORK, remove=True
        )
    return merge({f"{BRIDGE_NODE}.bridge": last_json(out.decode())})


def on_two_replicas(cluster: Cluster, load: Load) -> MergedReport:
    swarm = cluster.swarm
    swarm.set_roles("node2", [stack.SERVER_LABEL])
    try:
        swarm.scale(TARGET, 2)
        return bench(cluster, TARGET, 1, load)
    finally:
        swarm.scale(TARGET, 1)
        swarm.set_roles("node2", LAYOUT["node2"])
        # The scale-down may have kept node2's replica: back to node1, as the layout says.
        swarm.pin(TARGET, "node1")
        swarm.unpin(TARGET, "node1")


SETUPS: dict[str, Callable[[Cluster, Load], MergedReport]] = {
    "bridge": on_a_bridge,
    "overlay, 1 load node": lambda cluster, load: bench(cluster, TARGET, 1, load),
    "overlay, 2 load nodes": lambda cluster, load: bench(cluster, TARGET, 2, load),
    "2 server replicas": on_two_replicas,
}


def compare(
    cluster: Cluster, rounds: int, load: Load, log: Callable[[str], None] = print
) -> dict[str, list[MergedReport]]:
    """``{setup: [merged report per round]}``, the load given as loadgen's options."""
    if cluster.swarm.node_labels() != LAYOUT:
        raise ClusterError("compare needs the default layout: `make cluster NODES=3` (SERVERS=1)")
    config = stack.compose_config()
    usual = {key: str(value) for key, value in config["services"][TARGET]["environment"].items()}
    quiet = usual | {"ECHOLAB_QUIET": "1"}
    runs: dict[str, list[MergedReport]] = {setup: [] for setup in SETUPS}
    cluster.swarm.set_environment(TARGET, quiet)
    try:
        with BridgeLab(cluster, config, quiet):
            for round_ in range(1, rounds + 1):
                for setup, run in SETUPS.items():
                    log(f"echolab-cluster: compare, round {round_} of {rounds}: {setup}")
                    runs[setup].append(run(cluster, load))
    finally:
        cluster.swarm.set_environment(TARGET, usual)
    return runs


class BridgeLab:
    """server-poll inside one node, on a bridge network of that node's own engine: the stack's
    image, command and environment, with no overlay between it and a loadgen beside it."""

    def __init__(self, cluster: Cluster, config: Mapping[str, Any], environment: Mapping[str, str]):
        self.engine = cluster.hosts.engine(BRIDGE_NODE)
        self.config, self.environment = config, environment

    def __enter__(self) -> "BridgeLab":
        server = self.config["services"][TARGET]
        with speaking(f"server {BRIDGE_SERVER} on {BRIDGE_NODE}"):
            self.engine.networks.create(BRIDGE_NETWORK)
            self.engine.containers.run(
                server["image"],
                server.get("command"),
                name=BRIDGE_SERVER,
                network=BRIDGE_NETWORK,
                environment=dict(self.environment),
                detach=True,
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Remove the server and its network, whichever of them were made."""
        with speaking(f"removing {BRIDGE_SERVER} from {BRIDGE_NODE}"):
            with suppress(NotFound):
                self.engine.containers.get(BRIDGE_SERVER).remove(force=True)
            for network in self.engine.networks.list(names=[BRIDGE_NETWORK]):
                if network.name == BRIDGE_NETWORK:  # the filter matches parts of names too
                    network.remove()


def median_round(reports: Sequence[MergedReport]) -> MergedReport:
    """The round whose msgs/s is the median (the lower middle one of an even count)."""
    ordered = sorted(reports, key=lambda report: report.total.msgs_per_s)
    return ordered[(len(ordered) - 1) // 2]


def where(report: MergedReport) -> str:
    """``server <- load``: the nodes of a merged report's server replicas and loadgen."""
    replicas = report.server.rows if report.server else []
    server = [row.address for row in replicas] or [BRIDGE_NODE]
    load = sorted({row.replica.split(".")[0] for row in report.rows})
    return f"{', '.join(sorted(server))} <- {', '.join(load)}"


def render(runs: Mapping[str, Sequence[MergedReport]]) -> str:
    """Each setup's median round as a Markdown table, with every round's msgs/s."""
    lines = [
        "| setup | server <- load | msgs/s | p50 us | p99 us | rounds, msgs/s |",
        "|---|---|---:|---:|---:|---|",
    ]
    for setup, reports in runs.items():
        median = median_round(reports)
        total = median.total
        each = ", ".join(f"{report.total.msgs_per_s:,.0f}" for report in reports)
        lines.append(
            f"| {setup} | {where(median)} | {total.msgs_per_s:,.0f} | "
            f"{total.latency_us.p50:,} | {total.latency_us.p99:,} | {each} |"
        )
    return "\n".join(lines)
