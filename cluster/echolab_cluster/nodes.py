"""A simulated cluster on one machine: Docker-in-Docker nodes, a swarm over them, the stack.

Every node is a container of the host engine running its own dockerd (the node image, Debian's
docker.io); the swarm lives inside the nodes, so the host engine's own swarm state is never
touched. Every container, network and volume of a cluster carries the label
``echolab.cluster=<name>`` and the prefix ``echolab-cluster-<name>-``, so ``down`` removes exactly
its own, even beside other clusters on the same engine.

No wait here is a fixed sleep: each one polls the real condition against a deadline.
"""

import ipaddress
import json
import os
import shlex
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from echolab_loadgen.merge import last_json
from echolab_loadgen.stats import StatsUnavailable, fetch_stats

from . import registry as registries
from . import stack

NODE_IMAGE = "echolab-node"
LABEL = "echolab.cluster"
POLL_S = 0.5
ENGINE_DEADLINE_S = 120
SERVICE_DEADLINE_S = 180
PULL_DEADLINE_S = 600  # a first deploy through a registry: every node pulls before it starts
STATS_PORT = 8080  # the servers' stats port inside their containers
DONE = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}

# Why these flags (a lab, not production): dockerd inside needs nearly every capability (network
# namespaces, iptables, mounts, cgroups), but this host refuses --privileged because
# CAP_SYS_RESOURCE cannot be granted, so: all capabilities but that one, no seccomp or AppArmor
# filter, the host's cgroup tree writable, and /var/lib/docker on a volume (overlay2 cannot stack
# on the node's own overlay root).
NODE_FLAGS = (
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt=seccomp=unconfined",
    "--security-opt=apparmor=unconfined",
    "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw",
)


class ClusterError(Exception):
    """A step failed; the message is one line for the user."""


def run(args, *, input=None, check=True, timeout=300):
    """A command on the host; ClusterError with its last stderr line if it fails."""
    try:
        out = subprocess.run(
            args, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{shlex.join(args[:6])} ...: no answer in {timeout} s") from None
    if check and out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ClusterError(f"{shlex.join(args[:8])}: {reason}")
    return out


def until(what, check, seconds):
    """Poll ``check()`` until it returns something true; ClusterError naming ``what`` if not."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ClusterError(f"{what}: not within {seconds} s")
        time.sleep(POLL_S)


@dataclass
class Task:
    """One task of a one-shot tool service: where it ran, how it ended, what it printed."""

    id: str
    node: str
    state: str
    exit_code: int | None
    logs: str  # its stdout
    errors: str  # its stderr: a tool's per-connection failures, or why it could not start

    def last_words(self):
        """Its last line, from stderr if it wrote there (why it failed), else from stdout."""
        lines = (self.errors or self.logs).strip().splitlines()
        return lines[-1] if lines else "(no output)"


class Cluster:
    def __init__(self, name=None, tag=None):
        self.tag = tag or os.environ.get("ECHOLAB_TAG") or "latest"
        self.name = name or os.environ.get("ECHOLAB_CLUSTER") or self.tag
        self.prefix = f"echolab-cluster-{self.name}"
        self.label = f"{LABEL}={self.name}"

    # -- the nodes, seen from the host ----------------------------------------------------------

    def container(self, i):
        return f"{self.prefix}-node{i}"

    def nodes(self):
        """The node containers of this cluster, node1 first."""
        out = run(
            ["docker", "ps", "-a", "--filter", f"label={self.label}", "--format", "{{.Names}}"]
        )
        names = out.stdout.split()
        return sorted(names, key=lambda n: int(n.rsplit("node", 1)[1]))

    def docker(self, node, *args, input=None, check=True, timeout=300):
        """A docker command run by the engine inside ``node`` (a container name or node1...)."""
        node = node if node.startswith(self.prefix) else f"{self.prefix}-{node}"
        flags = ["-i"] if input is not None else []
        return run(
            ["docker", "exec", *flags, node, "docker", *args],
            input=input,
            check=check,
            timeout=timeout,
        )

    def manager(self, *args, **kwargs):
        return self.docker("node1", *args, **kwargs)

    # -- up -------------------------------------------------------------------------------------

    def up(self, count, servers=1, registry=None, log=print):
        """Nodes, swarm, labels, images, stack: ``make cluster``. Cleans up if any step fails.

        Without ``registry`` the images go onto every node by ``docker load``. With one
        (``name:port`` of the lab's registry, ``make registry``), the registry joins the nodes'
        network under that name, every node's engine trusts it, and each node pulls what the
        stack runs there."""
        if self.nodes():
            raise ClusterError(f"cluster {self.name} exists already: `make cluster-down` first")
        if not 1 <= servers <= count:
            raise ClusterError(f"servers must be from 1 to the node count {count}")
        config = stack.compose_config()
        container = registries.lab_registry() if registry else None
        try:
            self.build_node_image(config, log)
            self.start_nodes(count, log, registry)
            if registry:
                self.join_registry(registry, container, log)
                self.check_pushed(config, registry)
            self.form_swarm(count, servers, log)
            if not registry:
                self.load_images(config, log)
            self.deploy(log, config, registry)
        except BaseException:
            log(f"echolab-cluster: {self.name}: failed, removing what was started")
            self.down(log=lambda _: None)
            raise

    def build_node_image(self, config, log):
        """The node image, on the base image the lab's own images use: compose resolves it (the
        environment, else ``.env``, else its default), so the nodes and the lab never differ."""
        base = config["x-build"]["args"]["BASE_IMAGE"]
        log(f"echolab-cluster: node image {NODE_IMAGE}:{self.tag} (from {base})")
        run(
            [
                *("docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}"),
                *("-t", f"{NODE_IMAGE}:{self.tag}", str(stack.ROOT / "cluster")),
            ],
            timeout=1800,
        )

    def start_nodes(self, count, log, registry=None):
        """``count`` nodes on a network of their own; with ``registry`` (a plain-HTTP one), each
        node's engine trusts it (``dockerd --insecure-registry``: daemon.json's
        insecure-registries on a real host)."""
        trust = [f"--insecure-registry={registry}"] if registry else []
        run(["docker", "network", "create", "--label", self.label, self.prefix])
        for i in range(1, count + 1):
            name = self.container(i)
            run(
                [
                    *("docker", "run", "-d", "--name", name, "--hostname", f"node{i}"),
                    *("--network", self.prefix, "--label", self.label),
                    *("--env", f"ECHOLAB_NODE={name}"),
                    f"--mount=type=volume,dst=/var/lib/docker,volume-label={self.label}",
                    *NODE_FLAGS,
                    f"{NODE_IMAGE}:{self.tag}",
                    *trust,
                ]
            )
        log(f"echolab-cluster: {count} node(s) started, waiting for their engines")
        for i in range(1, count + 1):
            self.wait_engine(f"node{i}")

    def wait_engine(self, node):
        until(
            f"the engine in {node}",
            lambda: self.docker(
                node, "info", "--format", "{{.ServerVersion}}", check=False
            ).stdout.strip(),
            ENGINE_DEADLINE_S,
        )

    def join_registry(self, registry, container, log):
        """Connect the lab's registry ``container`` to the nodes' network, under the name the
        nodes know it by (``registry``'s host part)."""
        host, _ = registries.split(registry)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise ClusterError(
                f"registry {registry}: the nodes reach the lab's registry by a name on their "
                "network, say REGISTRY=registry:5000"
            )
        run(["docker", "network", "connect", "--alias", host, self.prefix, container])
        log(f"echolab-cluster: the lab's registry joins the nodes as {registry}")

    def registry_address(self, registry):
        """Where the host reaches the registry the nodes know as ``registry``: its address on
        the nodes' network, and the port the nodes use."""
        host, port = registries.split(registry)
        fmt = "{{range .Containers}}{{.Name}} {{.IPv4Address}}\n{{end}}"
        out = run(["docker", "network", "inspect", "-f", fmt, self.prefix]).stdout
        for line in out.splitlines():
            name, _, cidr = line.partition(" ")
            if name and not name.startswith(self.prefix):
                return f"{cidr.split('/')[0]}:{port}"
        raise ClusterError(f"no registry {host} on the nodes' network {self.prefix}")

    def check_pushed(self, config, registry):
        """Every image of the stack is in the registry: else one line, before any node waits."""
        address = self.registry_address(registry)
        for image in stack.images(config):
            name, tag = image.rsplit(":", 1)
            try:
                registries.digest(address, name, tag)
            except ClusterError as exc:
                raise ClusterError(
                    f"{exc}: push the images first (make push REGISTRY=127.0.0.1:5000)"
                ) from None

    def address(self, node):
        """The address of ``node`` (node1...) on the cluster's own network."""
        fmt = f'{{{{(index .NetworkSettings.Networks "{self.prefix}").IPAddress}}}}'
        return run(["docker", "inspect", "-f", fmt, f"{self.prefix}-{node}"]).stdout.strip()

    def form_swarm(self, count, servers, log):
        addr = self.address("node1")
        self.manager("swarm", "init", "--advertise-addr", addr)
        token = self.manager("swarm", "join-token", "-q", "worker").stdout.strip()
        for i in range(2, count + 1):
            self.docker(f"node{i}", "swarm", "join", "--token", token, f"{addr}:2377")
        until(f"{count} ready swarm nodes", lambda: len(self.ready_nodes()) == count, 120)
        for i in range(1, count + 1):
            roles = ([stack.SERVER_LABEL] if i <= servers else []) + (
                [stack.LOAD_LABEL] if i > servers or count == 1 else []
            )
            self.set_roles(f"node{i}", roles)
        log(f"echolab-cluster: swarm of {count}; servers on node1..node{servers}")

    def ready_nodes(self):
        out = self.manager("node", "ls", "--format", "{{.Hostname}} {{.Status}}", check=False)
        return [line.split()[0] for line in out.stdout.splitlines() if line.endswith(" Ready")]

    def load_nodes(self):
        return [node for node, roles in self.node_labels().items() if stack.LOAD_LABEL in roles]

    def node_labels(self):
        """{node: its roles}, the labels of ``stack.SERVER_LABEL`` and ``LOAD_LABEL`` it has."""
        ids = self.manager("node", "ls", "-q").stdout.split()
        fmt = "{{.Description.Hostname}} {{json .Spec.Labels}}"
        out = self.manager("node", "inspect", "-f", fmt, *ids)
        roles = {}
        for line in out.stdout.splitlines():
            node, labels = line.split(" ", 1)
            labels = json.loads(labels) or {}
            roles[node] = [
                role for role in (stack.SERVER_LABEL, stack.LOAD_LABEL) if role in labels
            ]
        return roles

    def set_roles(self, node, roles):
        """Label ``node`` for servers, load or both (``stack.SERVER_LABEL``, ``LOAD_LABEL``)."""
        flags = [f"--label-add={role}=1" for role in roles]
        flags += [f"--label-rm={role}" for role in self.node_labels()[node] if role not in roles]
        self.manager("node", "update", *flags, node)

    def load_images(self, config, log):
        """``docker save`` once on the host, ``docker load`` into every node, in parallel: the
        images the stack runs."""
        images = stack.images(config)
        log(f"echolab-cluster: loading {', '.join(images)} into every node")
        with tempfile.NamedTemporaryFile(prefix="echolab-images-", suffix=".tar") as tar:
            run(["docker", "save", "-o", tar.name, *images], timeout=900)
            with ThreadPoolExecutor() as pool:
                jobs = [pool.submit(self.load_into, node, tar.name) for node in self.nodes()]
                for job in jobs:
                    job.result()

    def load_into(self, container, tar):
        with open(tar, "rb") as data:
            out = subprocess.run(
                ["docker", "exec", "-i", container, "docker", "load", "-q"],
                stdin=data,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
        if out.returncode != 0:
            raise ClusterError(f"docker load into {container}: {out.stderr.strip()}")

    def deploy(self, log, config=None, registry=None):
        """Deploy the stack from compose.yaml; wait until every server answers on its stats.

        With a ``registry`` the stack names its images there, and the manager resolves each to
        the registry's digest (as ``docker stack deploy`` does by default), so every node pulls
        the very image that was pushed; without, the nodes run the images loaded into them."""
        config = config or stack.compose_config()
        text = stack.render(stack.generate(config, registry))
        resolve = [] if registry else ["--resolve-image", "never"]
        self.manager("stack", "deploy", *resolve, "--prune", "-c", "-", stack.STACK, input=text)
        log(f"echolab-cluster: stack {stack.STACK} deployed, waiting for its servers")
        self.wait_deployed(config, PULL_DEADLINE_S if registry else SERVICE_DEADLINE_S)

    def wait_deployed(self, config, seconds=SERVICE_DEADLINE_S):
        """Wait until every server of the stack runs and answers on its published stats port."""
        servers = [name for name, spec in config["services"].items() if not spec.get("profiles")]

        def all_running():
            counts = self.all_replicas()
            return all(counts.get(name) == (1, 1) for name in servers)

        until("every server running", all_running, seconds)
        for name in servers:
            self.wait_serving(config, name)

    def wait_serving(self, config, name, seconds=SERVICE_DEADLINE_S):
        """Wait until every replica of server ``name`` runs and answers; their stats."""
        self.wait_running(name, seconds)
        running, _ = self.replicas(name)
        return self.server_stats(name, stack.published(config, name, STATS_PORT), running, seconds)

    # -- services -------------------------------------------------------------------------------

    def service(self, name):
        return f"{stack.STACK}_{name}"

    def replicas(self, name):
        """(running, wanted) replicas of a stack service."""
        counts = self.all_replicas()
        if name not in counts:
            raise ClusterError(f"no service {self.service(name)} in the swarm")
        return counts[name]

    def all_replicas(self):
        """{service: (running, wanted)} of the stack, from one ``docker service ls``."""
        out = self.manager("service", "ls", "--format", "{{.Name}} {{.Replicas}}")
        counts = {}
        for line in out.stdout.splitlines():
            svc, replicas = line.split()[:2]
            running, wanted = replicas.split("/")
            counts[svc.removeprefix(f"{stack.STACK}_")] = (int(running), int(wanted))
        return counts

    def wait_running(self, name, seconds=SERVICE_DEADLINE_S):
        """Wait until every wanted replica of ``name`` runs (and at least one is wanted)."""

        def all_running():
            running, wanted = self.replicas(name)
            return running == wanted > 0 and not self.stopping_tasks(name)

        until(f"service {name} running", all_running, seconds)

    def set_environment(self, name, environment):
        """Set variables of service ``name``; returns once the swarm has replaced its tasks
        (``service update`` without --detach waits until the service has converged)."""
        flags = [f"--env-add={key}={value}" for key, value in environment.items()]
        self.manager(
            "service", "update", "--quiet", *flags, self.service(name), timeout=SERVICE_DEADLINE_S
        )

    def scale(self, name, count, seconds=SERVICE_DEADLINE_S):
        self.manager("service", "scale", "--detach", f"{self.service(name)}={count}")
        self.wait_running(name, seconds)

    def task_ids(self, name):
        out = self.manager("service", "ps", "-q", "--no-trunc", self.service(name))
        return set(out.stdout.split())

    def run_tool(self, name, count, args, seconds):
        """Run the one-shot service ``name`` (client, loadgen) as ``count`` replicas with
        ``args`` and wait until every one has ended: its tasks, slot by slot."""
        return self.wait_ended(self.start_tool(name, count, args), seconds)

    def start_tool(self, name, count, args):
        """Start ``count`` replicas of ``name`` with ``args``; the new tasks' ids.

        One forced update replaces every slot's task at once (the stack's update_config for
        tools), so the replicas start together. Scaling to 0 first raced with the scale-up: an
        ended task could keep its slot (no new task), or a slot could get two.
        """
        svc = self.service(name)
        before = self.task_ids(name)
        self.manager(
            "service",
            "update",
            "--detach",
            "--force",
            "--replicas",
            str(count),
            "--args",
            shlex.join(args),
            svc,
        )

        def new_tasks():
            new = self.task_ids(name) - before
            return new if len(new) >= count else None

        return until(f"{count} new {name} task(s)", new_tasks, 60)

    def wait_ended(self, ids, seconds):
        return until("tasks ending", lambda: self.ended(ids), seconds)

    def task_output(self, task_id):
        """(stdout, stderr) of a task: ``docker service logs`` keeps the two streams apart."""
        out = self.manager("service", "logs", "--raw", task_id, check=False)
        return out.stdout, out.stderr

    def stopping_tasks(self, name):
        """Tasks of ``name`` told to stop (moved: Shutdown; scaled away: Remove) whose containers
        still run: until they end, a published port of theirs may answer with an old replica's
        stats. (``--filter desired-state=`` knows no Remove, hence no filter.)"""
        out = self.manager(
            "service", "ps", "--format", "{{.DesiredState}} {{.CurrentState}}", self.service(name)
        )
        return [
            line
            for line in out.stdout.splitlines()
            if line.split()[0].lower() in ("shutdown", "remove")
            and line.split()[1].lower() not in DONE
        ]

    def ended(self, ids):
        """The tasks ``ids`` once every one has ended, else None."""
        tasks = self.task_records(ids)
        if any(t["Status"]["State"] not in DONE for t in tasks):
            return None
        nodes = self.node_names()
        return [
            Task(
                t["ID"],
                nodes.get(t.get("NodeID"), "?"),
                t["Status"]["State"],
                t["Status"].get("ContainerStatus", {}).get("ExitCode"),
                *self.task_output(t["ID"]),
            )
            for t in sorted(tasks, key=lambda t: t.get("Slot", 0))
        ]

    def task_records(self, ids, check=True):
        """The swarm's record of each task of ``ids``. With ``check=False`` a task reaped
        meanwhile is left out, instead of failing the call; the others still print."""
        out = self.manager("inspect", "--type", "task", "-f", "{{json .}}", *ids, check=check)
        return [json.loads(line) for line in out.stdout.splitlines()]

    def node_names(self):
        out = self.manager("node", "ls", "--format", "{{.ID}} {{.Hostname}}")
        return dict(line.split() for line in out.stdout.splitlines())

    def running_tasks(self, name):
        """{node: container id} of the tasks of ``name`` running now."""
        out = self.manager(
            "service",
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            self.service(name),
        )
        if not out.stdout.split():
            return {}
        tasks = self.task_records(out.stdout.split(), check=False)  # reaped since: left out
        nodes = self.node_names()
        return {
            nodes.get(t.get("NodeID"), "?"): t["Status"]["ContainerStatus"]["ContainerID"]
            for t in tasks
            if t["Status"]["State"] == "running"
        }

    def current_stats(self, name, port):
        """The /stats of every running task of server ``name`` through its node's published stats
        ``port``, by node. None while one does not answer, or answers as another container than
        its task's own (an old task still ending on that node: its count is not this one's)."""
        stats = {}
        for node, container in self.running_tasks(name).items():
            try:
                stats[node] = fetch_stats(self.address(node), port)
            except StatsUnavailable:
                return None
            if stats[node].get("host") != container[:12]:
                return None
        return stats

    def server_stats(self, name, port, replicas, seconds=60):
        """Every replica's /stats of server ``name``, by node, through each node's published
        stats ``port`` (as on real hosts: ``curl host:port/stats``); waits until ``replicas``
        replicas answer, each as its own task."""

        def read():
            stats = self.current_stats(name, port)
            return stats if stats is not None and len(stats) == replicas else None

        wanted = f"stats of {replicas} {name} replica(s)"
        return {"name": name, "replicas": until(wanted, read, seconds)}

    def replica_stats(self, name):
        """Every replica's /stats as a program inside the swarm sees them: ``tasks.<name>``
        resolved on the overlay network, read by a one-shot container (no published port)."""
        out = self.manager(
            "run",
            "--rm",
            "--network",
            f"{stack.STACK}_{stack.NETWORK}",
            "--entrypoint",
            "python3",
            f"echolab-loadgen:{self.tag}",
            "-m",
            "echolab_loadgen.stats",
            f"tasks.{name}",
        )
        return last_json(out.stdout)

    def until_counted(self, name, port, node, messages, seconds=SERVICE_DEADLINE_S):
        """Wait until the task of ``name`` running on ``node`` has counted ``messages``."""

        def enough():
            stats = self.current_stats(name, port) or {}
            return node in stats and stats[node]["messages"] >= messages

        until(f"{messages} messages counted by {name} on {node}", enough, seconds)

    def pin(self, name, node):
        """Constrain server ``name`` to ``node``; wait until its running tasks are there.

        Servers only: any change to a tool's service runs its ended tasks again with their last
        arguments (tools go where the node labels say, ``set_roles``)."""
        self.manager(
            "service",
            "update",
            "--detach",
            "--constraint-add",
            f"node.hostname=={node}",
            self.service(name),
        )
        until(
            f"{name} only on {node}",
            lambda: set(self.running_tasks(name)) <= {node} and not self.stopping_tasks(name),
            SERVICE_DEADLINE_S,
        )

    def unpin(self, name, node):
        self.manager(
            "service",
            "update",
            "--detach",
            "--constraint-rm",
            f"node.hostname=={node}",
            self.service(name),
        )

    def stop_node(self, node):
        """Stop a node's container: its engine ends its containers and leaves the swarm."""
        run(["docker", "stop", "-t", "20", f"{self.prefix}-{node}"])

    def start_node(self, node):
        """Start a stopped node again and wait until the swarm sees it ready."""
        run(["docker", "start", f"{self.prefix}-{node}"])
        self.wait_engine(node)
        until(f"{node} ready in the swarm", lambda: node in self.ready_nodes(), 120)

    # -- down -----------------------------------------------------------------------------------

    def down(self, log=print):
        """Remove this cluster's node containers, their volumes and its network (the lab's
        registry, if it joined, leaves the network and keeps running)."""
        nodes = self.nodes()
        if nodes:
            run(["docker", "rm", "-f", "-v", *nodes])
        guests = run(
            ["docker", "ps", "-q", "--filter", f"network={self.prefix}"], check=False
        ).stdout.split()
        for guest in guests:
            run(["docker", "network", "disconnect", "-f", self.prefix, guest])
        volumes = run(["docker", "volume", "ls", "-q", "--filter", f"label={self.label}"])
        if volumes.stdout.split():
            run(["docker", "volume", "rm", "-f", *volumes.stdout.split()])
        networks = run(["docker", "network", "ls", "-q", "--filter", f"label={self.label}"])
        if networks.stdout.split():
            run(["docker", "network", "rm", *networks.stdout.split()])
        log(f"echolab-cluster: {self.name}: {len(nodes)} node(s) removed, nothing left")
