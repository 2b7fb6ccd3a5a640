"""The simulated hosts: node containers of the host engine, each running its own dockerd (the
node image, Debian's docker.io), on a network of their own; the images they run, loaded into
them or pulled from the lab's registry once it joins their network.

Every container, network and volume of a cluster carries the label ``echolab.cluster=<name>``
and the prefix ``echolab-cluster-<name>-``, so ``remove`` removes exactly its own, even beside
other clusters on the same engine.
"""

import ipaddress
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
from docker.types import Mount
from echolab_common.wait import until
from echolab_host import DockerError, engine, remote, speaking
from echolab_host import run as docker_cli
from echolab_host.compose import ROOT

from . import records
from . import registry as registries
from .errors import ClusterError

Log = Callable[[str], None]

NODE_IMAGE = "echolab-node"
LABEL = "echolab.cluster"
ENGINE_PORT = 2375  # each node's dockerd on the cluster's network (cluster/Dockerfile)
ENGINE_DEADLINE_S = 120
API_S = 120  # seconds one call to a node's engine may take unless told otherwise
IMAGES_S = 900  # saving the stack's images on the host, loading them into a node
BUILD_S = 1800

# Why these settings (a lab, not production): dockerd inside needs nearly every capability
# (network namespaces, iptables, mounts, cgroups), but this host refuses privileged containers
# because CAP_SYS_RESOURCE cannot be granted, so: all capabilities but that one, no seccomp or
# AppArmor filter, the host's cgroup tree writable, and /var/lib/docker on a volume (overlay2
# cannot stack on the node's own overlay root).
NODE_SETTINGS: dict[str, Any] = {
    "cap_add": ["ALL"],
    "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    "volumes": {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
}


class Hosts:
    """The node containers of cluster ``name``, their network and volumes, seen from the host."""

    def __init__(self, name: str, tag: str):
        self.name, self.tag = name, tag
        self.prefix = f"echolab-cluster-{name}"
        self.label = f"{LABEL}={name}"
        self._engines: dict[tuple[str, float], docker.DockerClient] = {}

    def container(self, i: int) -> str:
        return f"{self.prefix}-node{i}"

    def nodes(self) -> list[str]:
        """The nodes (node1...) of this cluster, running or not, node1 first."""
        with speaking(f"listing the nodes of {self.name}"):
            found = engine().containers.list(all=True, filters={"label": self.label})
        names = [c.name.removeprefix(f"{self.prefix}-") for c in found if c.name]
        return sorted(names, key=records.node_number)

    def address(self, node: str) -> str:
        """The address of ``node`` (node1...) on the cluster's own network."""
        with speaking(f"inspecting {node} of {self.name}"):
            attrs = engine().containers.get(f"{self.prefix}-{node}").attrs
        return records.address_on(attrs, self.prefix)

    def engine(self, node: str, timeout: float = API_S) -> docker.DockerClient:
        """The Docker engine inside ``node``, through its port on the cluster's network (one
        client per address: a node started again may have another)."""
        url = f"tcp://{self.address(node)}:{ENGINE_PORT}"
        if (url, timeout) not in self._engines:
            self._engines[url, timeout] = remote(url, timeout)
        return self._engines[url, timeout]

    def build_image(self, config: dict[str, Any], log: Log) -> None:
        """The node image, on the base image the lab's own images use: compose resolves it (the
        environment, else ``.env``, else its default), so the nodes and the lab never differ."""
        base = config["x-build"]["args"]["BASE_IMAGE"]
        log(f"echolab-cluster: node image {NODE_IMAGE}:{self.tag} (from {base})")
        with speaking(f"building {NODE_IMAGE}:{self.tag}"):
            engine().images.build(
                path=str(ROOT / "cluster"),
                tag=f"{NODE_IMAGE}:{self.tag}",
                buildargs={"BASE_IMAGE": base},
                rm=True,
                timeout=BUILD_S,
            )

    def start(self, count: int, log: Log, registry: str | None = None) -> None:
        """``count`` nodes on a network of their own; with ``registry`` (a plain-HTTP one), each
        node's engine trusts it (``dockerd --insecure-registry``: daemon.json's
        insecure-registries on a real host)."""
        labels = {LABEL: self.name}
        trust = [f"--insecure-registry={registry}"] if registry else []
        with speaking(f"starting the nodes of {self.name}"):
            engine().networks.create(self.prefix, labels=labels)
            for i in range(1, count + 1):
                name = self.container(i)
                volume = Mount("/var/lib/docker", None, type="volume", labels=labels)
                engine().containers.run(
                    f"{NODE_IMAGE}:{self.tag}",
                    trust,
                    name=name,
                    hostname=f"node{i}",
                    network=self.prefix,
                    labels=labels,
                    environment={"ECHOLAB_NODE": name},
                    mounts=[volume],
                    detach=True,
                    **NODE_SETTINGS,
                )
        log(f"echolab-cluster: {count} node(s) started, waiting for their engines")
        for i in range(1, count + 1):
            self.wait_engine(f"node{i}")

    def wait_engine(self, node: str) -> None:
        def answers() -> bool:
            try:
                with speaking(f"the engine in {node}"):
                    return bool(self.engine(node).ping())
            except DockerError:  # refused, or no address yet
                return False

        until(answers, f"the engine in {node}", ENGINE_DEADLINE_S)

    def join_registry(self, registry: str, container: str, log: Log) -> None:
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
        with speaking(f"connecting the registry to {self.prefix}"):
            engine().networks.get(self.prefix).connect(container, aliases=[host])
        log(f"echolab-cluster: the lab's registry joins the nodes as {registry}")

    def registry_address(self, registry: str) -> str:
        """Where the host reaches the registry the nodes know as ``registry``: its address on
        the nodes' network, and the port the nodes use."""
        host, port = registries.split(registry)
        with speaking(f"inspecting {self.prefix}"):
            attrs = engine().networks.get(self.prefix).attrs
        address = records.guest_address(attrs, self.prefix)
        if address is None:
            raise ClusterError(f"no registry {host} on the nodes' network {self.prefix}")
        return f"{address}:{port}"

    def check_pushed(self, images: Sequence[str], registry: str) -> None:
        """Every one of ``images`` is in the registry: else one line, before any node waits."""
        address = self.registry_address(registry)
        for image in images:
            name, tag = image.rsplit(":", 1)
            try:
                registries.digest(address, name, tag)
            except ClusterError as exc:
                raise ClusterError(
                    f"{exc}: push the images first (make push REGISTRY=127.0.0.1:5000)"
                ) from None

    def load_images(self, images: Sequence[str], log: Log) -> None:
        """Save ``images`` once on the host (one archive: the layers they share go once; the
        SDK saves one image at a time, hence ``docker save``), load it into every node, in
        parallel."""
        log(f"echolab-cluster: loading {', '.join(images)} into every node")
        with tempfile.NamedTemporaryFile(prefix="echolab-images-", suffix=".tar") as tar:
            docker_cli(["docker", "save", "-o", tar.name, *images], timeout=IMAGES_S)
            with ThreadPoolExecutor() as pool:
                jobs = [pool.submit(self.load_into, node, tar.name) for node in self.nodes()]
                for job in jobs:
                    job.result()

    def load_into(self, node: str, tar: str) -> None:
        with open(tar, "rb") as data, speaking(f"loading images into {node}"):
            self.engine(node, IMAGES_S).images.load(data)

    def stop(self, node: str) -> None:
        """Stop a node's container: its engine ends its containers and leaves the swarm."""
        with speaking(f"stopping {node}"):
            engine().containers.get(f"{self.prefix}-{node}").stop(timeout=20)

    def start_again(self, node: str) -> None:
        """Start a stopped node and wait until its engine answers."""
        with speaking(f"starting {node}"):
            engine().containers.get(f"{self.prefix}-{node}").start()
        self.wait_engine(node)

    def remove(self) -> int:
        """Remove this cluster's node containers, their volumes and its network (a guest on the
        network, the lab's registry, leaves it and keeps running); how many nodes there were."""
        host = engine()
        with speaking(f"removing cluster {self.name}"):
            nodes = host.containers.list(all=True, filters={"label": self.label})
            for node in nodes:
                node.remove(force=True, v=True)
            for guest in host.containers.list(filters={"network": self.prefix}):
                host.networks.get(self.prefix).disconnect(guest, force=True)
            for volume in host.volumes.list(filters={"label": self.label}):
                volume.remove(force=True)
            for network in host.networks.list(filters={"label": self.label}):
                network.remove()
        return len(nodes)
