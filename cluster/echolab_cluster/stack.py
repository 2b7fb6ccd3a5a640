"""The swarm stack, generated from compose.yaml.

Why generate instead of keeping a second file: compose.yaml stays the one place that says what
the services are (images, commands, environment, hardening); this module only translates what
``docker stack deploy`` reads differently. It starts from ``docker compose config --format json``
(anchors merged, variables filled in) and knows every compose key it meets: a key it does not know
stops it with one line, so a new compose setting is never silently lost on the swarm.

What stack deploy needs (measured on Docker 20.10): no ``build`` (ignored), no ``profiles``
(rejected), no ``depends_on`` conditions (dropped); ``endpoint_mode: dnsrr`` because the default
VIP needs IPVS; published ports in ``mode: host`` (the routing mesh needs the VIP too); one-shot
tools as ``replicas: 0`` services with ``restart_policy: none`` (no ``replicated-job`` in 20.10),
scaled up when they are to run.
"""

import json
from typing import Any

from echolab_host import Compose

STACK = "echolab"
NETWORK = "lab"
# Node labels that say where things run: servers on echolab.server nodes, the client and loadgen
# on echolab.load nodes (one node may carry both when it is the only one).
SERVER_LABEL = "echolab.server"
LOAD_LABEL = "echolab.load"
TOOL_WAIT_S = 120  # how long a tool waits for its target: services start in any order

# compose key -> why it does not reach the stack
DROPPED = {
    "build": "stack deploy ignores it: images are built here and pushed or loaded onto nodes",
    "profiles": "stack deploy rejects it: the tools become services of 0 replicas instead",
    "depends_on": "stack deploy drops its conditions: every tool waits for its target itself",
    "security_opt": "swarm services have no such setting (stack deploy ignores it)",
    "pids_limit": "swarm services on Docker 20.10 have no such setting",
    "networks": "every service joins the stack's one overlay network",
    # Measured in the simulation: eleven servers checked every second on one loaded node missed
    # their checks, and the swarm replaced them mid-run; a task is also left out of the
    # service's DNS until its first check passes. Tools wait for their target instead, and
    # `make cluster` waits for every server's published stats.
    "healthcheck": "a swarm restarts a task whose checks fail, and busy nodes miss them",
}
KEPT = (
    "image",
    "command",
    "entrypoint",
    "environment",
    "logging",
    "init",
    "read_only",
    "cap_drop",
    "ulimits",
    "stdin_open",
    "tty",
)
TRANSLATED = ("mem_limit", "ports")
# Services that stay on one machine, and why: they are left out of the stack.
LOCAL_ONLY = {
    "profile grade": "grading runs on one machine, beside the student (make grade)",
    "profile observe": "Prometheus watches the servers of one machine's lab (make watch)",
    "profile ruler": "the C ruler and C load generator serve the bench, which runs on one machine",
    "profile registry": "the registry serves the nodes from outside the swarm, as for real hosts",
    "network_mode": "joins another container's network namespace, which no swarm service can",
}


class StackError(Exception):
    """compose.yaml has something this generator cannot carry over."""


def compose_config() -> dict[str, Any]:
    """compose.yaml with every profile, as ``docker compose config`` resolves it."""
    return Compose(profiles=["*"]).config()


def generate(config: dict[str, Any], registry: str | None = None) -> dict[str, Any]:
    """The stack (a dict in compose file format 3.8) for ``docker stack deploy``."""
    services = {
        name: service(name, spec, registry)
        for name, spec in config["services"].items()
        if not local_only(spec)
    }
    return {
        "version": "3.8",
        "services": services,
        "networks": {NETWORK: {"driver": "overlay", "attachable": True}},
    }


def images(config: dict[str, Any]) -> list[str]:
    """The images the stack runs (name:tag, as compose.yaml names them), each once."""
    return sorted({spec["image"] for spec in generate(config)["services"].values()})


def local_only(spec: dict[str, Any]) -> str | None:
    """Why a service stays off the swarm (a LOCAL_ONLY reason), or None."""
    for profile in spec.get("profiles", ()):
        if f"profile {profile}" in LOCAL_ONLY:
            return LOCAL_ONLY[f"profile {profile}"]
    if spec.get("network_mode"):
        return LOCAL_ONLY["network_mode"]
    return None


def service(name: str, spec: dict[str, Any], registry: str | None) -> dict[str, Any]:
    unknown = set(spec) - set(DROPPED) - set(KEPT) - set(TRANSLATED)
    if unknown:
        raise StackError(
            f"service {name}: compose key(s) {', '.join(sorted(unknown))} unknown to "
            "cluster/echolab_cluster/stack.py: say whether they carry over to the swarm"
        )
    out = {key: spec[key] for key in KEPT if spec.get(key) is not None}
    if registry:
        out["image"] = f"{registry}/{spec['image']}"
    tool = bool(spec.get("profiles"))
    if tool:
        out["environment"] = (out.get("environment") or {}) | {"ECHOLAB_WAIT": str(TOOL_WAIT_S)}
    out["networks"] = [NETWORK]
    out["ports"] = [
        {
            "target": port["target"],
            "published": int(port["published"]),
            "protocol": port.get("protocol", "tcp"),
            "mode": "host",
        }
        for port in spec.get("ports", [])
        if port.get("published")
    ]
    if not out["ports"]:
        del out["ports"]
    deploy: dict[str, Any] = {
        "endpoint_mode": "dnsrr",
        "replicas": 0 if tool else 1,
        "placement": {"constraints": [f"node.labels.{LOAD_LABEL if tool else SERVER_LABEL} == 1"]},
    }
    if tool:
        deploy["restart_policy"] = {"condition": "none"}
        # A tool's replicas are one run: an update that replaces its tasks (a new --args, a
        # --force) replaces them all at once, so they start together, never one after another.
        deploy["update_config"] = {"parallelism": 0}
    else:
        # A replica per node: replicas of a server are there to use more hosts.
        deploy["placement"]["max_replicas_per_node"] = 1
    if spec.get("mem_limit"):
        deploy["resources"] = {"limits": {"memory": str(spec["mem_limit"])}}
    out["deploy"] = deploy
    return out


def published(config: dict[str, Any], name: str, target: int) -> int:
    """The port where service ``name`` publishes its port ``target`` on every node it runs on."""
    for port in config["services"][name].get("ports", []):
        if port["target"] == target and port.get("published"):
            return int(port["published"])
    raise StackError(f"service {name} publishes no port for {target}")


def render(stack: dict[str, Any]) -> str:
    """The stack as text for ``docker stack deploy -c``: JSON, which YAML readers accept as is."""
    return json.dumps(stack, indent=2) + "\n"
