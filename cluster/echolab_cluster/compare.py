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

from echolab_loadgen.merge import MergedReport, last_json, merge

from . import stack
from .load import bench, deadline
from .nodes import ClusterError

TARGET = "server-poll"
BRIDGE_NODE = "node3"
BRIDGE_NETWORK = "echolab-compare"
BRIDGE_SERVER = "echolab-compare-server"
LAYOUT = {"node1": [stack.SERVER_LABEL], "node2": [stack.LOAD_LABEL], "node3": [stack.LOAD_LABEL]}


def on_a_bridge(cluster, load):
    """One loadgen run against the bridge server (``BridgeLab``), as a merged report."""
    run = ["run", "--rm", "--network", BRIDGE_NETWORK, f"echolab-loadgen:{cluster.tag}"]
    args = ["--target", BRIDGE_SERVER, "--wait", str(stack.TOOL_WAIT_S), "--json", *load]
    out = cluster.docker(BRIDGE_NODE, *run, *args, timeout=deadline(load))
    return merge({f"{BRIDGE_NODE}.bridge": last_json(out.stdout)})


def on_two_replicas(cluster, load):
    cluster.set_roles("node2", [stack.SERVER_LABEL])
    try:
        cluster.scale(TARGET, 2)
        return bench(cluster, TARGET, 1, load)
    finally:
        cluster.scale(TARGET, 1)
        cluster.set_roles("node2", LAYOUT["node2"])
        # The scale-down may have kept node2's replica: back to node1, as the layout says.
        cluster.pin(TARGET, "node1")
        cluster.unpin(TARGET, "node1")


SETUPS = {
    "bridge": on_a_bridge,
    "overlay, 1 load node": lambda cluster, load: bench(cluster, TARGET, 1, load),
    "overlay, 2 load nodes": lambda cluster, load: bench(cluster, TARGET, 2, load),
    "2 server replicas": on_two_replicas,
}


def compare(cluster, rounds, load, log=print):
    """``{setup: [merged report per round]}``, the load given as loadgen's options."""
    if cluster.node_labels() != LAYOUT:
        raise ClusterError("compare needs the default layout: `make cluster NODES=3` (SERVERS=1)")
    config = stack.compose_config()
    usual = {key: str(value) for key, value in config["services"][TARGET]["environment"].items()}
    quiet = usual | {"ECHOLAB_QUIET": "1"}
    runs = {setup: [] for setup in SETUPS}
    cluster.set_environment(TARGET, quiet)
    try:
        with BridgeLab(cluster, config, quiet):
            for round_ in range(1, rounds + 1):
                for setup, run in SETUPS.items():
                    log(f"echolab-cluster: compare, round {round_} of {rounds}: {setup}")
                    runs[setup].append(run(cluster, load))
    finally:
        cluster.set_environment(TARGET, usual)
    return runs


class BridgeLab:
    """server-poll inside one node, on a bridge network of that node's own engine: the stack's
    image, command and environment, with no overlay between it and a loadgen beside it."""

    def __init__(self, cluster, config, environment):
        self.cluster, self.config, self.environment = cluster, config, environment

    def __enter__(self):
        server = self.config["services"][TARGET]
        env = [f"--env={key}={value}" for key, value in self.environment.items()]
        self.cluster.docker(BRIDGE_NODE, "network", "create", BRIDGE_NETWORK)
        self.cluster.docker(
            *(BRIDGE_NODE, "run", "-d", "--name", BRIDGE_SERVER, "--network", BRIDGE_NETWORK),
            *(*env, server["image"], *server.get("command", [])),
        )
        return self

    def __exit__(self, *exc):
        self.cluster.docker(BRIDGE_NODE, "rm", "-f", BRIDGE_SERVER, check=False)
        self.cluster.docker(BRIDGE_NODE, "network", "rm", BRIDGE_NETWORK, check=False)


def median_round(reports: list[MergedReport]) -> MergedReport:
    """The round whose msgs/s is the median (the lower middle one of an even count)."""
    ordered = sorted(reports, key=lambda report: report.total.msgs_per_s)
    return ordered[(len(ordered) - 1) // 2]


def where(report: MergedReport) -> str:
    """``server <- load``: the nodes of a merged report's server replicas and loadgen."""
    replicas = report.server.rows if report.server else []
    server = [row.address for row in replicas] or [BRIDGE_NODE]
    load = sorted({row.replica.split(".")[0] for row in report.rows})
    return f"{', '.join(sorted(server))} <- {', '.join(load)}"


def render(runs: dict[str, list[MergedReport]]) -> str:
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
