"""Unit-test fixtures; the helpers they use are in inprocess.py."""

import pytest
from echolab_server.variants import variant_names


@pytest.fixture(params=variant_names())
def variant(request: pytest.FixtureRequest) -> str:
    """Every variant, from the registry."""
    return request.param
