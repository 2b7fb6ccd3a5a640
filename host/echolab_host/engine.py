"""The Docker engine through the Docker SDK for Python, with one-line errors."""

import contextlib
import functools
from collections.abc import Iterator

import docker
from docker.errors import APIError, DockerException
from requests.exceptions import RequestException

# Seconds an API call may take: `docker build`, a push or a pull is given its own timeout.
API_TIMEOUT_S = 120


class DockerError(Exception):
    """A step on Docker failed; the message is one line for the user."""


def one_line(exc: BaseException) -> str:
    """What an SDK error says, as one line: the engine's explanation when it gave one."""
    if isinstance(exc, APIError) and exc.explanation:
        text = str(exc.explanation)
    else:
        text = str(exc) or type(exc).__name__
    lines = text.strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


@functools.cache
def engine() -> docker.DockerClient:
    """The engine the docker command would use ($DOCKER_HOST, else the local socket)."""
    try:
        client = docker.from_env(timeout=API_TIMEOUT_S)
        client.ping()
    except DockerException as exc:
        raise DockerError(f"no Docker engine reachable: {one_line(exc)}") from None
    return client


@contextlib.contextmanager
def speaking(what: str) -> Iterator[None]:
    """An SDK error in the block (the engine's, or no answer in time) as one line:
    ``DockerError("<what>: <why>")``."""
    try:
        yield
    except (DockerException, RequestException) as exc:
        raise DockerError(f"{what}: {one_line(exc)}") from None


def remote(base_url: str, timeout: float = API_TIMEOUT_S) -> docker.DockerClient:
    """Another engine, e.g. ``tcp://10.0.9.2:2375``: a simulated cluster node's own dockerd."""
    try:
        return docker.DockerClient(base_url=base_url, timeout=int(timeout))
    except DockerException as exc:
        raise DockerError(f"engine at {base_url}: {one_line(exc)}") from None
