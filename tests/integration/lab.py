"""The real compose.yaml, brought up by testcontainers in a compose project of its own (the
``lab`` fixture in conftest.py), and what the tests ask of it.

The stack gets its own project name and ephemeral host ports (an override file, generated
here, replaces every published port), so ``make test`` never fights the user's running lab.
testcontainers' DockerCompose runs ``up --wait`` on the default services (the servers) and
``down`` at the end; it has no ``run``, so one-shot tools go through ``Lab.run`` with the same
compose command line.
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
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


def compose_config(*args: str) -> dict:
    """compose.yaml as Compose itself reads it (anchors merged, variables filled in)."""
    config = subprocess.run(
        ["docker", "compose", "-f", "compose.yaml", *args, "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(config.stdout)


def docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return "no Docker engine reachable (docker info failed); start one, or run `make test`"
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if compose.returncode != 0:
        return "the Compose v2 plugin is missing; `make setup` installs it"
    return None


class Lab:
    """The running test stack: its services' ports, stats and logs, and one-shot tool runs."""

    def __init__(self, compose: DockerCompose) -> None:
        self.compose = compose

    def command(self, *args: str) -> list[str]:
        return [*self.compose.compose_command_property, *args]

    def compose_run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """A compose command; ``env`` adds variables that compose.yaml interpolates."""
        return subprocess.run(
            self.command(*args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=check,
            env=None if env is None else {**os.environ, **env},
        )

    def run(
        self, service: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        """``docker compose run --rm -T --no-deps service args``: a tool container on the lab's
        network; the test decides which servers run, so compose starts none for the tool."""
        return subprocess.run(
            self.command("run", "--rm", "-T", "--no-deps", service, *args),
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )

    @contextlib.contextmanager
    def start(
        self, service: str, *args: str, name: str | None = None
    ) -> Iterator[subprocess.Popen]:
        """Like ``run``, but in the background, with stdin and stdout as pipes, for the length
        of a ``with`` block; ``name`` names the container, for ``docker kill`` or ``docker
        network disconnect``. Still running at the end of the block (a test failed): killed,
        with its container."""
        naming = ["--name", name] if name else []
        process = subprocess.Popen(
            self.command("run", "--rm", "-T", "--no-deps", *naming, service, *args),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with process:
            try:
                yield process
            finally:
                if process.poll() is None:
                    process.kill()
                    if name:
                        subprocess.run(["docker", "rm", "--force", name], capture_output=True)

    def address(self, service: str, port: int = 12345) -> tuple[str, int]:
        """Where the host reaches a service's port (published on 127.0.0.1, ephemeral)."""
        return "127.0.0.1", self.compose.get_service_port(service, port)

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
        return f"{os.environ['COMPOSE_PROJECT_NAME']}_default"

    def wait_for(self, condition, what: str, deadline: float = 30.0) -> None:
        """Wait for a state the stack reaches by itself, failing with ``what`` at the deadline."""
        end = time.monotonic() + deadline
        while not condition():
            if time.monotonic() > end:
                pytest.fail(f"timed out after {deadline:.0f} s waiting for {what}")
            time.sleep(0.05)


def override_ports(path: Path) -> Path:
    """A compose override giving every server ephemeral host ports instead of the lab's own."""
    services = subprocess.run(
        ["docker", "compose", "-f", "compose.yaml", "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    lines = ["services:"]
    for service in services:
        lines += [
            f"  {service}:",
            '    ports: !override ["127.0.0.1::12345", "127.0.0.1::8080"]',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path
