"""A simulated cluster on one machine: Docker-in-Docker nodes (``hosts``), a swarm over them
(``swarm``), the stack, and the servers' counts (``stats``).

The cluster is named by $ECHOLAB_CLUSTER, else $ECHOLAB_TAG, so several can share one engine.
"""

import os
from typing import Any

from echolab_common.wait import until

from . import registry as registries
from . import stack
from .errors import ClusterError
from .hosts import Hosts, Log
from .stats import ClusterStats
from .swarm import SERVICE_DEADLINE_S, Swarm

PULL_DEADLINE_S = 600  # a first deploy through a registry: every node pulls before it starts


class Cluster:
    def __init__(self, name: str | None = None, tag: str | None = None):
        self.tag = tag or os.environ.get("ECHOLAB_TAG") or "latest"
        self.name = name or os.environ.get("ECHOLAB_CLUSTER") or self.tag
        self.hosts = Hosts(self.name, self.tag)
        self.swarm = Swarm(self.hosts)
        self.stats = ClusterStats(self.hosts, self.swarm)

    def up(
        self, count: int, servers: int = 1, registry: str | None = None, log: Log = print
    ) -> None:
        """Nodes, swarm, labels, images, stack: ``make cluster``. Cleans up if any step fails.

        Without ``registry`` the images go onto every node by ``docker load``. With one
        (``name:port`` of the lab's registry, ``make registry``), the registry joins the nodes'
        network under that name, every node's engine trusts it, and each node pulls what the
        stack runs there."""
        if self.hosts.nodes():
            raise ClusterError(f"cluster {self.name} exists already: `make cluster-down` first")
        if not 1 <= servers <= count:
            raise ClusterError(f"servers must be from 1 to the node count {count}")
        config = stack.compose_config()
        container = registries.lab_registry() if registry else None
        try:
            self.hosts.build_image(config, log)
            self.hosts.start(count, log, registry)
            if registry and container:
                self.hosts.join_registry(registry, container, log)
                self.hosts.check_pushed(stack.images(config), registry)
            self.swarm.form(count, servers, log)
            if not registry:
                self.hosts.load_images(stack.images(config), log)
            self.deploy(log, config, registry)
        except BaseException:
            log(f"echolab-cluster: {self.name}: failed, removing what was started")
            self.down(log=lambda _: None)
            raise

    def deploy(
        self, log: Log, config: dict[str, Any] | None = None, registry: str | None = None
    ) -> None:
        """Deploy the stack from compose.yaml; wait until every server answers on its stats.

        With a ``registry`` the stack names its images there, and the manager resolves each to
        the registry's digest (as ``docker stack deploy`` does by default), so every node pulls
        the very image that was pushed; without, the nodes run the images loaded into them."""
        config = config or stack.compose_config()
        self.swarm.deploy(stack.render(stack.generate(config, registry)), resolve=bool(registry))
        log(f"echolab-cluster: stack {stack.STACK} deployed, waiting for its servers")
        self.wait_deployed(config, PULL_DEADLINE_S if registry else SERVICE_DEADLINE_S)

    def wait_deployed(self, config: dict[str, Any], seconds: float = SERVICE_DEADLINE_S) -> None:
        """Wait until every server of the stack runs and answers on its published stats port."""
        servers = [name for name, spec in config["services"].items() if not spec.get("profiles")]

        def all_running() -> bool:
            counts = self.swarm.all_replicas()
            return all(counts.get(name) == (1, 1) for name in servers)

        until(all_running, "every server running", seconds)
        for name in servers:
            self.stats.wait_serving(config, name)

    def start_node(self, node: str) -> None:
        """Start a stopped node again and wait until the swarm sees it ready."""
        self.hosts.start_again(node)
        self.swarm.wait_ready(node)

    def down(self, log: Log = print) -> None:
        """Remove this cluster's node containers, their volumes and its network (the lab's
        registry, if it joined, leaves the network and keeps running)."""
        removed = self.hosts.remove()
        log(f"echolab-cluster: {self.name}: {removed} node(s) removed, nothing left")
