"""The real compose.yaml, brought up by testcontainers in a compose project of its own (the
``lab`` fixture in conftest.py), and what the tests ask of it.

The stack gets its own project name and ephemeral host ports (an override file, generated
here, replaces every published port), so ``make test`` never fights the user's running lab.
testcontainers' DockerCompose runs ``up --wait`` on the default services (the servers) and
``down`` at the end; every other compose command (one-shot tools, ``logs``, ``ps``) goes
through echolab_host.Compose with the same project and files, and containers through the
Docker SDK (echolab_host.engine).
"""

import contextlib
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docker.errors import NotFound
from echolab_common.wait import Timeout, until
from echolab_host import Compose, DockerError, engine, run
from echolab_server.variants import registry, variant_names
from testcontainers.compose import DockerCompose

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = variant_names()
DEADLINE = 120.0  # seconds any one compose command may take
SUMMARY = re.compile(r"Summary: sent (\d+), echoed (\d+), mismatched (\d+), failed (\d+)")


def summary(output: str) -> tuple[int, int, int, int]:
    """The client's last line: sent, echoed, mismatched, failed."""
    match = SUMMARY.search(output)
    assert match, f"no summary line in: {output[-500:]!r}"
    return tuple(int(n) for n in match.groups())


def one_per_family(where: Callable[[type], bool] = lambda server: True) -> list[str]:
    """The first variant of each family that satisfies ``where``: a check of what a family's
    shared code does, without running every member."""
    first = {}
    for name, server in registry().items():
        if where(server):
            first.setdefault(server.family, name)
    return list(first.values())


def compose_config(*profiles: str) -> dict:
    """compose.yaml as Compose itself reads it (anchors merged, variables filled in)."""
    return Compose(profiles=profiles).config()


def docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    try:
        engine()
    except DockerError as exc:
        return f"{exc}; start one, or run `make test`"
    try:
        run(["docker", "compose", "version"])
    except DockerError:
        return "the Compose v2 plugin is missing; `make setup` installs it"
    return None


def found(name: str) -> bool:
    """Whether a container of that name or id exists (``docker inspect`` would succeed)."""
    try:
        engine().containers.get(name)
    except NotFound:
        return False
    return True


def remove(name: str) -> None:
    """Remove a container, running or not, if it is there (``docker rm --force``)."""
    with contextlib.suppress(NotFound):
        engine().containers.get(name).remove(force=True)


class Lab:
    """The running test stack: its services' ports, stats and logs, and one-shot tool runs.

    ``stack`` is testcontainers' (up, down, ports); ``compose`` the same project and files for
    any other compose command.
    """

    def __init__(self, stack: DockerCompose, compose: Compose) -> None:
        self.stack = stack
        self.compose = compose

    def compose_run(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = DEADLINE,
    ) -> subprocess.CompletedProcess[str]:
        """A compose command; ``env`` adds variables that compose.yaml interpolates."""
        return self.compose.run(*args, check=check, env=env, stdin=stdin, timeout=timeout)

    def run(
        self, service: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm -T --no-deps service args``: a tool container on the lab's
        network; the test decides which servers run, so compose starts none for the tool."""
        run = ("run", "--rm", "-T", "--no-deps", service, *args)
        return self.compose_run(*run, stdin=stdin, check=False)

    @contextlib.contextmanager
    def start(
        self, service: str, *args: str, name: str | None = None
    ) -> Iterator[subprocess.Popen[str]]:
        """Like ``run``, but in the background, with stdin and stdout as pipes, for the length
        of a ``with`` block; ``name`` names the container, for ``docker kill`` or ``docker
        network disconnect``. Still running at the end of the block (a test failed): killed,
        with its container."""
        naming = ["--name", name] if name else []
        process = self.compose.popen(
            "run", "--rm", "-T", "--no-deps", *naming, service, *args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        with process:
            try:
                yield process
            finally:
                if process.poll() is None:
                    process.kill()
                    if name:
                        remove(name)

    def address(self, service: str, port: int = 12345) -> tuple[str, int]:
        """Where the host reaches a service's port (published on 127.0.0.1, ephemeral)."""
        return "127.0.0.1", self.stack.get_service_port(service, port)

    def stats(self, service: str) -> dict:
        host, port = self.address(service, 8080)
        with urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=10) as answer:
            return json.load(answer)

    def logs(self, service: str) -> str:
        return self.compose_run("logs", "--no-color", "--no-log-prefix", service).stdout

    def fresh(self, *services: str, env: dict[str, str] | None = None) -> None:
        """Replace services with new containers (counters at zero) and wait until healthy;
        ``env`` sets ECHOLAB_* variables compose.yaml passes on (ECHOLAB_WORK_DELAY, say)."""
        self.compose_run(
            "up", "--detach", "--wait", "--force-recreate", "--no-deps", *services, env=env
        )

    def container(self, service: str) -> str:
        """The id of a service's running container."""
        return self.compose_run("ps", "--quiet", service).stdout.strip()

    def network(self) -> str:
        """The lab's compose network, on which tools reach servers by name."""
        return f"{self.compose.project}_default"

    def wait_for(self, condition: Callable[[], object], what: str, deadline: float = 30.0) -> None:
        """Wait for a state the stack reaches by itself, failing with ``what`` at the deadline."""
        try:
            until(condition, what, deadline, interval=0.05)
        except Timeout as exc:
            pytest.fail(f"timed out waiting for {exc}")


def override_ports(path: Path) -> Path:
    """A compose override giving every server ephemeral host ports instead of the lab's own."""
    services = Compose().run("config", "--services").stdout.split()
    lines = ["services:"]
    for service in services:
        lines += [
            f"  {service}:",
            '    ports: !override ["127.0.0.1::12345", "127.0.0.1::8080"]',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path
