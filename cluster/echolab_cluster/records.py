"""Docker's answers as records, and the changes made to a swarm's specs: pure functions over the
attrs dicts the Docker SDK returns (the Engine API's JSON), so they are tested without Docker
(tests/unit/test_cluster_records.py, on answers recorded from a simulated cluster)."""

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import stack

Attrs = Mapping[str, Any]

# A task in one of these states has ended: it runs no more and never will.
DONE = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned", "remove"})
# What the swarm tells a task it no longer wants: moved away (shutdown) or scaled away (remove).
UNWANTED = frozenset({"shutdown", "remove"})
ROLES = (stack.SERVER_LABEL, stack.LOAD_LABEL)


@dataclass(frozen=True)
class Node:
    """A swarm node: its hostname (node1...), whether it is ready, its roles (ROLES it has)."""

    id: str
    hostname: str
    ready: bool
    roles: tuple[str, ...]


def node(attrs: Attrs) -> Node:
    labels = attrs["Spec"].get("Labels") or {}
    return Node(
        id=attrs["ID"],
        hostname=attrs["Description"]["Hostname"],
        ready=attrs["Status"]["State"] == "ready",
        roles=tuple(role for role in ROLES if role in labels),
    )


def relabelled(labels: Mapping[str, str] | None, roles: Iterable[str]) -> dict[str, str]:
    """A node's labels with exactly ``roles`` of the ROLES (each ``=1``), its others kept."""
    wanted = set(roles)
    kept = {key: value for key, value in (labels or {}).items() if key not in ROLES}
    return kept | {role: "1" for role in ROLES if role in wanted}


@dataclass(frozen=True)
class SwarmTask:
    """A task as the swarm records it (the node by its swarm id)."""

    id: str
    slot: int
    node_id: str
    desired_state: str
    state: str
    exit_code: int | None
    container_id: str  # empty when no container was made (a task rejected before it started)
    error: str  # the swarm's reason when the task failed or was rejected

    @property
    def ended(self) -> bool:
        return self.state in DONE

    @property
    def stopping(self) -> bool:
        """Told to stop but its container still runs: until it ends, a published port of its
        node may answer with this old replica's stats."""
        return self.desired_state in UNWANTED and not self.ended


def task(attrs: Attrs) -> SwarmTask:
    status = attrs["Status"]
    container = status.get("ContainerStatus") or {}
    return SwarmTask(
        id=attrs["ID"],
        slot=attrs.get("Slot", 0),
        node_id=attrs.get("NodeID", ""),
        desired_state=attrs["DesiredState"],
        state=status["State"],
        exit_code=container.get("ExitCode"),
        container_id=container.get("ContainerID", ""),
        error=status.get("Err", ""),
    )


@dataclass(frozen=True)
class ServiceReplicas:
    """A stack service by its name in compose.yaml: replicas running, replicas wanted."""

    name: str
    running: int
    wanted: int


def service_replicas(attrs: Attrs) -> ServiceReplicas:
    """From a service listed with its status (``services.list(status=True)``)."""
    status = attrs["ServiceStatus"]
    return ServiceReplicas(
        name=attrs["Spec"]["Name"].removeprefix(f"{stack.STACK}_"),
        running=status["RunningTasks"],
        wanted=status["DesiredTasks"],
    )


@dataclass(frozen=True)
class Ran:
    """When a container ran, as its engine stamped it."""

    started: datetime
    finished: datetime


def moment(stamp: str) -> datetime:
    """An engine's timestamp (RFC 3339 in UTC, to the nanosecond) to the microsecond."""
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{fraction[:6]:0<6}+00:00")


def ran(container_attrs: Attrs) -> Ran | None:
    """When an ended container ran (from its inspect answer); None if it never started."""
    state = container_attrs["State"]
    if state.get("StartedAt", "").startswith("0001-"):  # Go's zero time: never started
        return None
    return Ran(moment(state["StartedAt"]), moment(state["FinishedAt"]))


@dataclass
class Task:
    """One task of a one-shot tool service: where it ran, how it ended, what it printed, and
    when its container ran (None when the swarm made none)."""

    id: str
    node: str
    state: str
    exit_code: int | None
    logs: str  # its stdout
    errors: str  # its stderr: a tool's per-connection failures, or why it could not start
    ran: Ran | None = None

    def last_words(self) -> str:
        """Its last line, from stderr if it wrote there (why it failed), else from stdout."""
        lines = (self.errors or self.logs).strip().splitlines()
        return lines[-1] if lines else "(no output)"


def with_environment(spec: Attrs, environment: Mapping[str, str]) -> dict[str, Any]:
    """A service spec whose containers get ``environment`` set (``--env-add``), others kept."""
    new = copy.deepcopy(dict(spec))
    container = new["TaskTemplate"]["ContainerSpec"]
    kept = [pair for pair in container.get("Env", []) if pair.split("=", 1)[0] not in environment]
    container["Env"] = kept + [f"{key}={value}" for key, value in environment.items()]
    return new


def with_run(spec: Attrs, replicas: int, args: Sequence[str]) -> dict[str, Any]:
    """A service spec that runs ``replicas`` new tasks with ``args``: forced, so every slot's
    task is replaced even when nothing else changed (``--force --replicas --args``)."""
    new = copy.deepcopy(dict(spec))
    template = new["TaskTemplate"]
    template["ForceUpdate"] = template.get("ForceUpdate", 0) + 1
    template["ContainerSpec"]["Args"] = list(args)
    new["Mode"] = {"Replicated": {"Replicas": replicas}}
    return new


def with_replicas(spec: Attrs, replicas: int) -> dict[str, Any]:
    new = copy.deepcopy(dict(spec))
    new["Mode"] = {"Replicated": {"Replicas": replicas}}
    return new


def with_constraint(spec: Attrs, constraint: str, present: bool) -> dict[str, Any]:
    """A service spec with ``constraint`` added (``present``) or removed."""
    new = copy.deepcopy(dict(spec))
    placement = new["TaskTemplate"].setdefault("Placement", {})
    others = [c for c in placement.get("Constraints", []) if c != constraint]
    placement["Constraints"] = [*others, constraint] if present else others
    return new


def address_on(container: Attrs, network: str) -> str:
    """A container's IPv4 address on ``network`` (empty while it is not attached)."""
    networks = container["NetworkSettings"]["Networks"]
    return networks[network]["IPAddress"] if network in networks else ""


def guest_address(network: Attrs, prefix: str) -> str | None:
    """The address of the first container on ``network`` whose name lacks ``prefix``: a guest
    of the cluster's network (the lab's registry), not one of its nodes."""
    for member in (network.get("Containers") or {}).values():
        if not member["Name"].startswith(prefix):
            return str(member["IPv4Address"]).split("/")[0]
    return None


def node_number(name: str) -> int:
    """N of ``nodeN`` (or of a node container's ``...-nodeN``): the order of a cluster's nodes."""
    return int(name.rsplit("node", 1)[1])
