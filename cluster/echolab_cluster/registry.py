"""Images through a registry, the road every real swarm takes: ``make push`` tags and pushes the
lab's images, and every node pulls what it runs (docs/real-hosts.md).

A registry is named as ``host:port`` (``127.0.0.1:5000`` for the lab's own, ``make registry``).
The lab's registry speaks plain HTTP, so the nodes must list it in their engine's
insecure-registries, as real hosts would be told to; the host's engine trusts 127.0.0.1 already.
"""

import http.client
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from echolab_host import Compose, engine, speaking

from .errors import ClusterError

ANSWER_S = 5  # a registry that accepts no connection within this is not there
# What a manifest request accepts: a Docker 20.10 engine pushes schema 2 manifests.
MANIFESTS = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def split(registry: str) -> tuple[str, int]:
    """(host, port) of ``host:port``; ClusterError in one line for anything else."""
    host, sep, port = registry.rpartition(":")
    if not (sep and host and port.isdigit() and "/" not in registry):
        raise ClusterError(f"registry {registry!r}: give it as host:port (127.0.0.1:5000)")
    return host, int(port)


def check_answers(registry: str) -> None:
    """ClusterError unless something accepts a connection at ``registry``: whether it then
    speaks HTTP or HTTPS is the engine's business (a push tries both)."""
    host, port = split(registry)
    try:
        socket.create_connection((host, port), timeout=ANSWER_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"no registry answers at {registry} ({reason}); `make registry` starts the lab's own"
        ) from None


def push(
    registry: str, images: Sequence[str], tag: str, log: Callable[[str], None] = print
) -> dict[str, str]:
    """Tag each of ``images`` (names without a tag) ``registry/image:tag`` and push it; log the
    digest the registry gave each. Returns {image: digest}."""
    check_answers(registry)
    pushed = {}
    for image in images:
        target = f"{registry}/{image}:{tag}"
        with speaking(f"pushing {target}"):
            engine().images.get(f"{image}:{tag}").tag(f"{registry}/{image}", tag)
            progress = engine().api.push(f"{registry}/{image}", tag, stream=True, decode=True)
            pushed[image] = pushed_digest(progress, target)
        log(f"echolab: pushed {target} {pushed[image]}")
    return pushed


def pushed_digest(progress: Iterable[Mapping[str, Any]], target: str) -> str:
    """The digest the registry gave ``target``, from the engine's push progress (its closing
    ``aux`` record); ClusterError with the engine's reason if the push failed."""
    digest = None
    for record in progress:
        if "error" in record:
            lines = str(record["error"]).strip().splitlines() or ["(no message)"]
            raise ClusterError(f"push {target}: {lines[-1]}")
        digest = (record.get("aux") or {}).get("Digest", digest)
    if digest is None:
        raise ClusterError(f"push {target}: the engine reported no digest")
    return str(digest)


def digest(address: str, image: str, tag: str) -> str:
    """The digest of ``image:tag`` in the registry at ``address`` (host:port, plain HTTP, as the
    lab's): the Docker-Content-Digest of its manifest; ClusterError if it has no such image."""
    host, port = split(address)
    conn = http.client.HTTPConnection(host, port, timeout=ANSWER_S)
    try:
        conn.request("HEAD", f"/v2/{image}/manifests/{tag}", headers={"Accept": MANIFESTS})
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ClusterError(f"no registry answers at {address}: {exc}") from None
    finally:
        conn.close()
    if response.status != 200:
        raise ClusterError(f"the registry at {address} has no {image}:{tag} ({response.status})")
    return str(response.getheader("Docker-Content-Digest"))


def lab_registry() -> str:
    """The container of the lab's registry service (``make registry``), in the compose project
    of this checkout (COMPOSE_PROJECT_NAME, else compose.yaml's name)."""
    out = Compose(profiles=["registry"]).run("ps", "-q", "registry", check=False)
    container = out.stdout.strip()
    if out.returncode != 0 or not container:
        raise ClusterError("the lab's registry is not running: `make registry` first")
    return container
