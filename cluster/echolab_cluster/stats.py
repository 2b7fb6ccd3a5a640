"""The servers' counts on the cluster: each replica's /stats through its node's published stats
port (as ``curl host:port/stats`` on real hosts), and as a program inside the swarm sees them."""

from typing import Any

from echolab_common.wait import until
from echolab_host import speaking
from echolab_loadgen.merge import last_json
from echolab_loadgen.stats import StatsUnavailable, fetch_stats

from . import stack
from .hosts import Hosts
from .swarm import SERVICE_DEADLINE_S, Swarm

STATS_PORT = 8080  # the servers' stats port inside their containers


class ClusterStats:
    def __init__(self, hosts: Hosts, swarm: Swarm):
        self.hosts, self.swarm = hosts, swarm

    def current(self, name: str, port: int) -> dict[str, dict[str, Any]] | None:
        """The /stats of every running task of server ``name`` through its node's published stats
        ``port``, by node. None while one does not answer, or answers as another container than
        its task's own (an old task still ending on that node: its count is not this one's)."""
        stats = {}
        for node, container in self.swarm.running_tasks(name).items():
            try:
                stats[node] = fetch_stats(self.hosts.address(node), port)
            except StatsUnavailable:
                return None
            if stats[node].get("host") != container[:12]:
                return None
        return stats

    def servers(self, name: str, port: int, replicas: int, seconds: float = 60) -> dict[str, Any]:
        """Every replica's /stats of server ``name``, by node, through each node's published
        stats ``port``; waits until ``replicas`` replicas answer, each as its own task."""

        def read() -> dict[str, dict[str, Any]] | None:
            stats = self.current(name, port)
            return stats if stats is not None and len(stats) == replicas else None

        wanted = f"stats of {replicas} {name} replica(s)"
        return {"name": name, "replicas": until(read, wanted, seconds)}

    def wait_serving(
        self, config: dict[str, Any], name: str, seconds: float = SERVICE_DEADLINE_S
    ) -> dict[str, Any]:
        """Wait until every replica of server ``name`` runs and answers; their stats."""
        self.swarm.wait_running(name, seconds)
        running, _ = self.swarm.replicas(name)
        return self.servers(name, stack.published(config, name, STATS_PORT), running, seconds)

    def until_counted(
        self, name: str, port: int, node: str, messages: int, seconds: float = SERVICE_DEADLINE_S
    ) -> None:
        """Wait until the task of ``name`` running on ``node`` has counted ``messages``."""

        def enough() -> bool:
            stats = self.current(name, port) or {}
            return node in stats and stats[node]["messages"] >= messages

        until(enough, f"{messages} messages counted by {name} on {node}", seconds)

    def inside(self, name: str) -> dict[str, Any]:
        """Every replica's /stats as a program inside the swarm sees them: ``tasks.<name>``
        resolved on the overlay network, read by a one-shot container (no published port)."""
        with speaking(f"reading tasks.{name} from the overlay"):
            out = self.swarm.manager.containers.run(
                f"echolab-loadgen:{self.hosts.tag}",
                ["-m", "echolab_loadgen.stats", f"tasks.{name}"],
                entrypoint="python3",
                network=f"{stack.STACK}_{stack.NETWORK}",
                remove=True,
            )
        return last_json(out.decode())
