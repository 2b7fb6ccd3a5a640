"""The host side's one layer over Docker, shared by the bench, the grader, the cluster, the
pictures and the integration tests:

- ``engine``: the Docker SDK for Python (containers, images, networks; a swarm's nodes, services
  and tasks) as objects, never the CLI's text;
- ``compose``: ``docker compose``, which has no SDK, through one runner;
- both fail with one line for the user (``DockerError``).

Waiting for a condition with a deadline is ``echolab_common.wait.until``.
"""

from .compose import Compose, ComposeError, ComposeTimeout, run
from .engine import DockerError, engine, one_line, patient, remote, speaking

__all__ = [
    "Compose",
    "ComposeError",
    "ComposeTimeout",
    "DockerError",
    "engine",
    "one_line",
    "patient",
    "remote",
    "run",
    "speaking",
]
