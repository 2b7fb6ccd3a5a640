"""Integration fixtures and hooks; what the tests use is in lab.py."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from echolab_host import Compose
from testcontainers.compose import DockerCompose

from .lab import ROOT, Lab, docker_problem, override_ports


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.fspath).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    problem = docker_problem()
    if problem is not None:
        pytest.fail(f"echolab integration tests need Docker: {problem}", pytrace=False)
    project = f"echolab-test-{uuid.uuid4().hex[:8]}"
    os.environ["COMPOSE_PROJECT_NAME"] = project
    override = override_ports(tmp_path_factory.mktemp("compose") / "ports.yaml")
    Compose(project, profiles=("tools",)).run("build", "--quiet", timeout=1800)
    stack = DockerCompose(
        context=ROOT, compose_file_name=["compose.yaml", str(override)], wait=True
    )
    stack.start()
    try:
        yield Lab(stack, Compose(project, (override,)))
    finally:
        stack.stop()
        os.environ.pop("COMPOSE_PROJECT_NAME", None)
