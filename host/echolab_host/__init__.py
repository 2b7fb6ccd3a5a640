"""The host side's one layer over Docker, shared by the bench, the grader, the cluster, the
pictures and the integration tests:

- ``engine``: the Docker SDK for Python (containers, images, networks; a swarm's nodes, services
  and tasks) as objects, never the CLI's text;
- ``compose``: ``docker compose``, which has no SDK, through one runner;
- ``process``: ``Exec``, a process in a running container, read with deadlines;
- all fail with one line for the user (``DockerError``).

Waiting for a condition with a deadline is ``echolab_common.wait.until``.
"""

from .compose import Compose, ComposeError, ComposeTimeout, run
from .engine import API_TIMEOUT_S, DockerError, engine, one_line, remote, speaking
from .process import Exec, exec_output

__all__ = [
    "API_TIMEOUT_S",
    "Compose",
    "ComposeError",
    "ComposeTimeout",
    "DockerError",
    "Exec",
    "engine",
    "exec_output",
    "one_line",
    "remote",
    "run",
    "speaking",
]
