"""Images through a registry, the road every real swarm takes: ``make push`` tags and pushes the
lab's images, and every node pulls what it runs (docs/real-hosts.md).

A registry is named as ``host:port`` (``127.0.0.1:5000`` for the lab's own, ``make registry``).
The lab's registry speaks plain HTTP, so the nodes must list it in their engine's
insecure-registries, as real hosts would be told to; the host's engine trusts 127.0.0.1 already.
"""

import http.client
import socket
import subprocess

from . import nodes, stack  # nodes imports this module: its names are read at call time

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


def split(registry):
    """(host, port) of ``host:port``; ClusterError in one line for anything else."""
    host, sep, port = registry.rpartition(":")
    if not (sep and host and port.isdigit() and "/" not in registry):
        raise nodes.ClusterError(f"registry {registry!r}: give it as host:port (127.0.0.1:5000)")
    return host, int(port)


def check_answers(registry):
    """ClusterError unless something accepts a connection at ``registry``: whether it then
    speaks HTTP or HTTPS is the engine's business (``docker push`` tries both)."""
    host, port = split(registry)
    try:
        socket.create_connection((host, port), timeout=ANSWER_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise nodes.ClusterError(
            f"no registry answers at {registry} ({reason}); `make registry` starts the lab's own"
        ) from None


def push(registry, images, tag, log=print):
    """Tag each of ``images`` (names without a tag) ``registry/image:tag`` and push it; log the
    digest the registry gave each. Returns {image: digest}."""
    check_answers(registry)
    pushed = {}
    for image in images:
        target = f"{registry}/{image}:{tag}"
        nodes.run(["docker", "tag", f"{image}:{tag}", target])
        out = nodes.run(["docker", "push", target], timeout=1800)
        pushed[image] = pushed_digest(out.stdout, target)
        log(f"echolab: pushed {target} {pushed[image]}")
    return pushed


def pushed_digest(output, target):
    """The digest in ``docker push``'s closing line (``<tag>: digest: sha256:... size: N``)."""
    for line in reversed(output.splitlines()):
        words = line.split()
        if "digest:" in words:
            return words[words.index("digest:") + 1]
    raise nodes.ClusterError(f"docker push {target}: no digest in its output")


def digest(address, image, tag):
    """The digest of ``image:tag`` in the registry at ``address`` (host:port, plain HTTP, as the
    lab's): the Docker-Content-Digest of its manifest; ClusterError if it has no such image."""
    host, port = split(address)
    conn = http.client.HTTPConnection(host, port, timeout=ANSWER_S)
    try:
        conn.request("HEAD", f"/v2/{image}/manifests/{tag}", headers={"Accept": MANIFESTS})
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise nodes.ClusterError(f"no registry answers at {address}: {exc}") from None
    finally:
        conn.close()
    if response.status != 200:
        raise nodes.ClusterError(
            f"the registry at {address} has no {image}:{tag} ({response.status})"
        )
    return response.getheader("Docker-Content-Digest")


def lab_registry():
    """The container of the lab's registry service (``make registry``), in the compose project
    of this checkout (COMPOSE_PROJECT_NAME, else compose.yaml's name)."""
    out = subprocess.run(
        ["docker", "compose", "--profile", "registry", "ps", "-q", "registry"],
        cwd=stack.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    container = out.stdout.strip()
    if out.returncode != 0 or not container:
        raise nodes.ClusterError("the lab's registry is not running: `make registry` first")
    return container
