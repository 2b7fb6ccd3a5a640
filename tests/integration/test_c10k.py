"""The variants beyond the tutorial, in containers: many concurrent connections (C10K).

``make test`` holds 2,000 at once, every one proved live by its own echo (a server can leave a
connection in its backlog and never serve it); ``make bench`` goes to 10,000. ECHOLAB_C10K
sets the size here.
"""

import json
import os

import pytest
from echolab_server.variants import TUTORIAL_STEPS

from .lab import Lab, one_per_family

CONNECTIONS = int(os.environ.get("ECHOLAB_C10K", "2000"))
HOLD_S = 10  # long enough to read the server's stats while every connection is open


# The models beyond the tutorial, one of each family: epoll, asyncio, prefork.
@pytest.mark.parametrize("variant", one_per_family(lambda server: server.step > TUTORIAL_STEPS))
def test_holds_many_connections_at_once_each_served(lab: Lab, variant: str) -> None:
    service = f"server-{variant}"
    lab.fresh(service)
    with lab.start(
        "loadgen", "--target", service, "--idle", str(CONNECTIONS), "--hold", str(HOLD_S),
        "--timeout", "10", "--json",
    ) as loadgen:  # fmt: skip
        held = json.loads(loadgen.stdout.readline())  # printed once all are open, before the hold
        assert held["idle_open"] == CONNECTIONS, held["idle_failure"]
        stats = lab.stats(service)
        assert stats["connections_current"] == CONNECTIONS
        assert stats["connections_refused"] == 0
        assert stats["bytes_received"] == stats["bytes_sent"] == CONNECTIONS  # one ping each
        _, err = loadgen.communicate(timeout=HOLD_S + 60)
    assert loadgen.returncode == 0, err
    lab.wait_for(
        lambda: lab.stats(service)["connections_current"] == 0, f"{service} to close them all"
    )
