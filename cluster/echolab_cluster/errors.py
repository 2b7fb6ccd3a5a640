"""The cluster's one error for the user, and the one place an SDK failure becomes it."""

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from docker.errors import DockerException
from echolab_host import DockerError, one_line


class ClusterError(DockerError):
    """A step failed; the message is one line for the user."""


@contextmanager
def step(what: str) -> Iterator[None]:
    """Run an SDK call: a refusal, or an engine that does not answer, as ClusterError naming
    ``what`` (the SDK lets requests' connection errors through unwrapped)."""
    try:
        yield
    except (DockerException, requests.RequestException) as exc:
        raise ClusterError(f"{what}: {one_line(exc)}") from None
