"""One simulated swarm for the whole run: three Docker-in-Docker nodes (node1 for the servers,
node2 and node3 for the load), under a cluster name of its own, removed at the end even when a
test or the set-up fails. The host engine's own swarm is never touched."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from echolab_cluster import stack
from echolab_cluster.nodes import Cluster

NODES = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.fspath).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    lab = Cluster(name=f"test-{uuid.uuid4().hex[:8]}", tag=os.environ.get("ECHOLAB_TAG"))
    try:
        lab.up(NODES, servers=1, log=lambda _: None)
        yield lab
    finally:
        lab.down(log=lambda _: None)


@pytest.fixture(scope="session")
def config() -> dict:
    """compose.yaml resolved, as the stack was generated from it."""
    return stack.compose_config()
