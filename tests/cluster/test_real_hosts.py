"""docs/real-hosts.md, run: the lab's registry, `make push`, a swarm of three fresh nested nodes
that trust it, `docker stack deploy`, the tutorial's 2 x 100: every line of the page's command
block, in order, with only the addresses changed. Then: no image reached a node but by pull."""

import json
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.models.images import Image
from echolab_cluster import registry, stack
from echolab_cluster.nodes import PULL_DEADLINE_S, Cluster
from echolab_common.wait import until
from echolab_host import engine
from echolab_host.compose import ROOT

PAGE = ROOT / "docs" / "real-hosts.md"
NODES = 3
ON_HOSTS = "registry:5000"  # the registry as the nodes know it (registry.lan:5000 on the page)
LINE = re.compile(r"(build|host\d)\$ (.+?)(?:\s+# (.*))?")
SUMMARY = re.compile(r"Summary: sent (\d+), echoed (\d+), mismatched (\d+), failed (\d+) .*")
TOOL_S = 300
MAKE_VARIABLES = {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}


def page_commands() -> list[tuple[str, str, str]]:
    """(where, command, comment) of every line of the page's first ```sh block."""
    block = PAGE.read_text().split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [LINE.fullmatch(line.strip()) for line in block.splitlines() if line.strip()]
    assert lines and all(lines), "a line of the block is not `where$ command  # comment`"
    return [(m[1], m[2], m[3] or "") for m in lines if m]


class Road:
    """The page's machines: this checkout is build$, node N of a fresh cluster is hostN$."""

    def __init__(self, cluster: Cluster, project: str, workdir: Path):
        self.cluster, self.workdir = cluster, workdir
        # `make registry` under a project of its own, on a port that was free a moment ago: not
        # an ephemeral one, which Docker 20.10 renumbers when the container joins the nodes'
        # network (seen here: `make push` then found nothing at the port compose had said).
        # A user's shell, not make's: under `make test-cluster` a make's variables would have
        # `make stack` say "make[1]: Entering directory" into stack.yml.
        port = free_port()
        shell = {key: value for key, value in os.environ.items() if key not in MAKE_VARIABLES}
        self.env = shell | {"COMPOSE_PROJECT_NAME": project, "ECHOLAB_REGISTRY_PORT": port}
        self.pushed_to = f"127.0.0.1:{port}"  # the registry as this machine reaches it
        self.token = ""

    def compose(self, *args: str) -> str:
        out = subprocess.run(
            ["docker", "compose", "--profile", "registry", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def on_build(self, command: str) -> str:
        if command.startswith("make push "):
            command = command.replace("registry.lan:5000", self.pushed_to)
        command = command.replace("registry.lan:5000", ON_HOSTS)
        command = command.replace("stack.yml", str(self.workdir / "stack.yml"))
        hosts = self.cluster.hosts
        command = re.sub(r"\bhost(\d)\b", lambda m: hosts.address(f"node{m[1]}"), command)
        out = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        assert out.returncode == 0, f"build$ {command}: {out.stderr.strip()[-800:]}"
        return out.stdout

    def on_host(self, host: str, command: str) -> str:
        command = command.replace("<host1 address>", self.cluster.hosts.address("node1"))
        command = command.replace("<token>", self.token)
        command = re.sub(r"\bhost(\d)\b", r"node\1", command)
        container = self.cluster.hosts.container(int(host.removeprefix("host")))
        out = subprocess.run(
            ["docker", "exec", "-w", "/root", container, "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=TOOL_S,
        )
        assert out.returncode == 0, f"{host}$ {command}: {out.stderr.strip()[-800:]}"
        return out.stdout


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Road]:
    """Three bare nodes whose engines trust the registry, as the page's daemon.json says; the
    page's commands do the rest. Everything is removed at the end, also on failure."""
    name = uuid.uuid4().hex[:8]
    cluster = Cluster(name=f"test-reg-{name}", tag=os.environ.get("ECHOLAB_TAG"))
    road = Road(cluster, f"echolab-test-reg-{name}", tmp_path_factory.mktemp("real-hosts"))
    try:
        cluster.hosts.build_image(stack.compose_config(), log=lambda _: None)
        cluster.hosts.start(NODES, log=lambda _: None, registry=ON_HOSTS)
        yield road
    finally:
        cluster.down(log=lambda _: None)
        road.compose("down", "--volumes")
        forget(road.pushed_to)


def forget(registry_address: str) -> None:
    """Drop the names `make push` gave this machine's images in the test's registry (the
    images stay, under their own names): tags first, then any digest left."""
    for key in ("RepoTags", "RepoDigests"):
        for image in engine().images.list(filters={"reference": f"{registry_address}/*"}):
            for name in image.attrs.get(key) or []:
                if name.startswith(f"{registry_address}/"):
                    engine().images.remove(name)


def test_the_real_hosts_page_runs_and_every_node_pulls_what_it_runs(road, config):
    cluster = road.cluster
    out: dict[str, str] = {}
    clients: set[str] = set()
    for where, command, comment in page_commands():
        if comment.startswith("until") and command.startswith("docker service ls"):
            cluster.wait_deployed(config, PULL_DEADLINE_S)
        if comment.startswith("until") and command.startswith("docker service ps"):
            tasks = cluster.swarm.wait_ended(clients, TOOL_S)
        if command.startswith("docker stack rm"):
            pulled = evidence(cluster, config)  # before the stack goes
        update = command.startswith("docker service update")
        before = cluster.swarm.task_ids("client") if update else set()
        out[command] = road.on_build(command) if where == "build" else road.on_host(where, command)
        if command == "make registry":
            registry_container = road.compose("ps", "-q", "registry")
            cluster.hosts.join_registry(ON_HOSTS, registry_container, lambda _: None)
        elif command.startswith("make stack"):
            stack_file = road.workdir / "stack.yml"
            subprocess.run(
                ["docker", "cp", stack_file, f"{cluster.hosts.container(1)}:/root/"], check=True
            )
        elif command.startswith("docker swarm join-token"):
            road.token = out[command].strip()
        elif update:
            clients = until(lambda old=before: new(cluster, old, 2), "2 new client tasks", 60)

    # The tutorial's lesson, across hosts: clients on the load nodes, 2 x 100 counted exactly.
    assert {task.node for task in tasks} <= {"node2", "node3"}
    assert [(task.state, task.exit_code) for task in tasks] == [("complete", 0)] * 2
    (logs,) = (text for command, text in out.items() if command.startswith("docker service logs"))
    summaries = [SUMMARY.fullmatch(line) for line in logs.splitlines()]
    assert [m.groups() for m in summaries if m] == [("100", "100", "0", "0")] * 2
    (stats,) = (text for command, text in out.items() if command.startswith("curl"))
    assert json.loads(stats)["messages"] == 200

    # Only by pull: every image on a node is the registry's, by its digest (pulled by digest, as
    # the service pins it, an image has its repository and digest but no tag).
    digests = {
        image.rsplit(":", 1)[0]: registry.digest(road.pushed_to, *image.rsplit(":", 1))
        for image in stack.images(config)
    }
    for service, image in pulled["services"].items():
        named = config["services"][service]["image"]
        assert image == f"{ON_HOSTS}/{named}@{digests[named.rsplit(':', 1)[0]]}", service
    for node, images in pulled["images"].items():
        for repository, digest in images.items():
            assert repository.startswith(f"{ON_HOSTS}/"), f"{repository} on {node}: not pulled"
            assert digest == digests[repository.removeprefix(f"{ON_HOSTS}/")], f"{node}: {images}"
    assert set(pulled["images"]["node1"]) == {f"{ON_HOSTS}/echolab-server"}  # what it runs
    for task in tasks:
        assert f"{ON_HOSTS}/echolab-client" in pulled["images"][task.node]
    for node, actions in pulled["events"].items():
        assert "load" not in actions and "import" not in actions, f"{node}: {actions}"
        assert "pull" in actions or not pulled["images"][node], f"{node}: {actions}"


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def new(cluster: Cluster, before: set[str], count: int) -> set[str]:
    tasks = cluster.swarm.task_ids("client") - before
    return tasks if len(tasks) >= count else set()


def evidence(cluster: Cluster, config: dict) -> dict:
    """What each node's engine holds and logged of images, and the image each service runs."""
    swarm = cluster.swarm
    services = {}
    for name in stack.generate(config)["services"]:
        spec = swarm.manager.services.get(swarm.service(name)).attrs["Spec"]
        services[name] = spec["TaskTemplate"]["ContainerSpec"]["Image"]
    images, events = {}, {}
    for i in range(1, NODES + 1):
        node = f"node{i}"
        on_node = cluster.hosts.engine(node)
        images[node] = repositories(on_node.images.list())
        logged = on_node.events(
            since=0, until=int(time.time()), filters={"type": "image"}, decode=True
        )
        events[node] = {event["Action"] for event in logged}
    return {"services": services, "images": images, "events": events}


def repositories(images: list[Image]) -> dict[str, str]:
    """{repository: digest} of a node's images, as `docker image ls --digests` lists them:
    ``<none>`` for what an image lacks (a loaded image has no digest)."""
    found: dict[str, str] = {}
    for image in images:
        digests = image.attrs.get("RepoDigests") or []
        tags = image.attrs.get("RepoTags") or []
        for name in digests:
            repository, digest = name.split("@")
            found[repository] = digest
        for name in tags:
            found.setdefault(name.rsplit(":", 1)[0], "<none>")
        if not (digests or tags):
            found.setdefault("<none>", "<none>")
    return found
