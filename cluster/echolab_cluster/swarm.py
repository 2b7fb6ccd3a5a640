"""The swarm inside the nodes, through node1's engine (the manager): membership and the nodes'
roles, the stack's services and their tasks, placement, scaling, and one-shot tools run as
services. The host engine's own swarm state is never touched.

No wait here is a fixed sleep: each one polls the real condition against a deadline.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import docker
from docker.models.services import Service
from echolab_common.wait import until
from echolab_host import run as docker_cli
from echolab_host import speaking

from . import records, stack
from .errors import ClusterError
from .hosts import Hosts, Log
from .records import Node, ServiceReplicas, SwarmTask, Task

MANAGER = "node1"
SWARM_PORT = 2377
SERVICE_DEADLINE_S = 180
NODES_DEADLINE_S = 120
TASKS_DEADLINE_S = 60  # for the swarm to make the tasks an update asks for
DEPLOY_S = 300


class Swarm:
    """The swarm of ``hosts``' nodes, managed from node1."""

    def __init__(self, hosts: Hosts):
        self.hosts = hosts

    @property
    def manager(self) -> docker.DockerClient:
        """node1's engine: every swarm-wide question and change goes to the manager."""
        return self.hosts.engine(MANAGER)

    # -- membership and roles -------------------------------------------------------------------

    def form(self, count: int, servers: int, log: Log) -> None:
        """node1 initialises the swarm, the others join; node1..node``servers`` get the server
        role, the rest the load role (a lone node both)."""
        address = self.hosts.address(MANAGER)
        with speaking("forming the swarm"):
            self.manager.swarm.init(advertise_addr=address)
            self.manager.swarm.reload()
            token = self.manager.swarm.attrs["JoinTokens"]["Worker"]
            for i in range(2, count + 1):
                self.hosts.engine(f"node{i}").swarm.join(
                    remote_addrs=[f"{address}:{SWARM_PORT}"], join_token=token
                )
        ready = f"{count} ready swarm nodes"
        until(lambda: len(self.ready_nodes()) == count, ready, NODES_DEADLINE_S)
        for i in range(1, count + 1):
            roles = ([stack.SERVER_LABEL] if i <= servers else []) + (
                [stack.LOAD_LABEL] if i > servers or count == 1 else []
            )
            self.set_roles(f"node{i}", roles)
        log(f"echolab-cluster: swarm of {count}; servers on node1..node{servers}")

    def nodes(self) -> list[Node]:
        with speaking("listing the swarm's nodes"):
            return [records.node(n.attrs) for n in self.manager.nodes.list()]

    def ready_nodes(self) -> list[str]:
        return [node.hostname for node in self.nodes() if node.ready]

    def wait_ready(self, node: str) -> None:
        until(lambda: node in self.ready_nodes(), f"{node} ready in the swarm", NODES_DEADLINE_S)

    def node_labels(self) -> dict[str, list[str]]:
        """{node: its roles}, the labels of ``stack.SERVER_LABEL`` and ``LOAD_LABEL`` it has."""
        return {node.hostname: list(node.roles) for node in self.nodes()}

    def load_nodes(self) -> list[str]:
        return [node.hostname for node in self.nodes() if stack.LOAD_LABEL in node.roles]

    def set_roles(self, hostname: str, roles: Iterable[str]) -> None:
        """Label ``hostname`` for servers, load or both (``stack.SERVER_LABEL``, ``LOAD_LABEL``)."""
        with speaking(f"labelling {hostname}"):
            for node in self.manager.nodes.list():
                if node.attrs["Description"]["Hostname"] == hostname:
                    spec = dict(node.attrs["Spec"])
                    spec["Labels"] = records.relabelled(spec.get("Labels"), roles)
                    node.update(spec)
                    return
        raise ClusterError(f"no node {hostname} in the swarm")

    def hostnames(self) -> dict[str, str]:
        """{swarm node id: hostname}."""
        return {node.id: node.hostname for node in self.nodes()}

    # -- the stack's services -------------------------------------------------------------------

    def deploy(self, text: str, resolve: bool) -> None:
        """``docker stack deploy`` of the stack file ``text`` on node1 (the SDK has no stacks).
        Without ``resolve`` the nodes run the images loaded into them as they are."""
        flags = [] if resolve else ["--resolve-image", "never"]
        docker_cli(
            [
                *("docker", "exec", "-i", self.hosts.container(1), "docker", "stack", "deploy"),
                *(*flags, "--prune", "-c", "-", stack.STACK),
            ],
            stdin=text,
            timeout=DEPLOY_S,
        )

    def service(self, name: str) -> str:
        return f"{stack.STACK}_{name}"

    def _service(self, name: str) -> Service:
        with speaking(f"service {self.service(name)}"):
            return self.manager.services.get(self.service(name))

    def _update(self, name: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Write ``change(spec)`` as service ``name``'s spec, at the version it was read at."""
        service = self._service(name)
        spec = change(service.attrs["Spec"])
        with speaking(f"updating {self.service(name)}"):
            self.manager.api.update_service(
                service.id,
                service.version,
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=spec.get("Labels"),
                mode=spec["Mode"],
                update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"),
                endpoint_spec=spec.get("EndpointSpec"),
            )

    def all_replicas(self) -> dict[str, tuple[int, int]]:
        """{service: (running, wanted)} of the stack, from one listing."""
        with speaking("listing the services"):
            listed = self.manager.services.list(status=True)
        counts: list[ServiceReplicas] = [records.service_replicas(s.attrs) for s in listed]
        return {count.name: (count.running, count.wanted) for count in counts}

    def replicas(self, name: str) -> tuple[int, int]:
        """(running, wanted) replicas of a stack service."""
        counts = self.all_replicas()
        if name not in counts:
            raise ClusterError(f"no service {self.service(name)} in the swarm")
        return counts[name]

    def wait_running(self, name: str, seconds: float = SERVICE_DEADLINE_S) -> None:
        """Wait until every wanted replica of ``name`` runs its service's current spec (and at
        least one is wanted), and no replica told to stop still runs."""

        def all_running() -> bool:
            _, wanted = self.replicas(name)
            current = self.tasks(name, {"desired-state": "running", "_up-to-date": "true"})
            running = [task for task in current if task.state == "running"]
            return len(running) == wanted > 0 and not self.stopping_tasks(name)

        until(all_running, f"service {name} running", seconds)

    def set_environment(self, name: str, environment: Mapping[str, str]) -> None:
        """Set variables of service ``name``; returns once the swarm has replaced its tasks."""
        self._update(name, lambda spec: records.with_environment(spec, environment))
        self.wait_running(name)

    def scale(self, name: str, count: int, seconds: float = SERVICE_DEADLINE_S) -> None:
        self._update(name, lambda spec: records.with_replicas(spec, count))
        self.wait_running(name, seconds)

    def pin(self, name: str, node: str) -> None:
        """Constrain server ``name`` to ``node``; wait until its running tasks are there.

        Servers only: any change to a tool's service runs its ended tasks again with their last
        arguments (tools go where the node labels say, ``set_roles``)."""
        constraint = f"node.hostname=={node}"
        self._update(name, lambda spec: records.with_constraint(spec, constraint, present=True))
        until(
            lambda: set(self.running_tasks(name)) <= {node} and not self.stopping_tasks(name),
            f"{name} only on {node}",
            SERVICE_DEADLINE_S,
        )

    def unpin(self, name: str, node: str) -> None:
        constraint = f"node.hostname=={node}"
        self._update(name, lambda spec: records.with_constraint(spec, constraint, present=False))

    # -- tasks ----------------------------------------------------------------------------------

    def tasks(self, name: str, filters: Mapping[str, str] | None = None) -> list[SwarmTask]:
        """The tasks of service ``name`` (``filters`` as the Engine API's task filters)."""
        with speaking(f"listing the tasks of {self.service(name)}"):
            found = self.manager.api.tasks(
                filters={"service": self.service(name), **(filters or {})}
            )
        return [records.task(attrs) for attrs in found]

    def task_ids(self, name: str) -> set[str]:
        return {task.id for task in self.tasks(name)}

    def stopping_tasks(self, name: str) -> list[SwarmTask]:
        """Tasks of ``name`` told to stop whose containers still run (``SwarmTask.stopping``)."""
        return [task for task in self.tasks(name) if task.stopping]

    def running_tasks(self, name: str) -> dict[str, str]:
        """{node: container id} of the tasks of ``name`` running now."""
        hostnames = self.hostnames()
        return {
            hostnames.get(task.node_id, "?"): task.container_id
            for task in self.tasks(name, {"desired-state": "running"})
            if task.state == "running"
        }

    def run_tool(self, name: str, count: int, args: Sequence[str], seconds: float) -> list[Task]:
        """Run the one-shot service ``name`` (client, loadgen) as ``count`` replicas with
        ``args`` and wait until every one has ended: its tasks, slot by slot."""
        return self.wait_ended(self.start_tool(name, count, args), seconds)

    def start_tool(self, name: str, count: int, args: Sequence[str]) -> set[str]:
        """Start ``count`` replicas of ``name`` with ``args``; the new tasks' ids.

        One forced update replaces every slot's task at once (the stack's update_config for
        tools), so the replicas start together. Scaling to 0 first raced with the scale-up: an
        ended task could keep its slot (no new task), or a slot could get two.
        """
        before = self.task_ids(name)
        self._update(name, lambda spec: records.with_run(spec, count, args))

        def new_tasks() -> set[str]:
            new = self.task_ids(name) - before
            return new if len(new) >= count else set()

        return until(new_tasks, f"{count} new {name} task(s)", TASKS_DEADLINE_S)

    def wait_ended(self, ids: set[str], seconds: float) -> list[Task]:
        return until(lambda: self.ended(ids), "tasks ending", seconds)

    def ended(self, ids: set[str]) -> list[Task]:
        """The tasks ``ids``, with what they printed, once every one has ended; else none."""
        with speaking("inspecting tasks"):
            listed = self.manager.api.tasks(filters={"id": sorted(ids)})
        found = [records.task(attrs) for attrs in listed]
        gone = set(ids) - {task.id for task in found}
        if gone:
            raise ClusterError(f"task(s) {', '.join(sorted(gone))} no longer in the swarm")
        if not all(task.ended for task in found):
            return []
        hostnames = self.hostnames()
        return [
            Task(
                task.id,
                hostnames.get(task.node_id, "?"),
                task.state,
                task.exit_code,
                *self.output(task, hostnames.get(task.node_id)),
            )
            for task in sorted(found, key=lambda task: task.slot)
        ]

    def output(self, task: SwarmTask, node: str | None) -> tuple[str, str, records.Ran | None]:
        """(stdout, stderr, when it ran) of an ended task, read from its container on its
        node; the swarm's reason as stderr when it made no container."""
        if not (node and task.container_id):
            return "", task.error, None
        with speaking(f"the output of task {task.id} on {node}"):
            container = self.hosts.engine(node).containers.get(task.container_id)
            stdout = container.logs(stdout=True, stderr=False)
            stderr = container.logs(stdout=False, stderr=True)
        return (
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
            records.ran(container.attrs),
        )
