"""The variants beyond the tutorial, in containers: many concurrent connections (C10K).

``make test`` holds 2,000 at once, every one proved live by its own echo (a server can leave a
connection in its backlog and never serve it); ``make bench`` goes to 10,000. ECHOLAB_C10K
sets the size here.
"""

import json
import os

import pytest
from conftest import Lab

CONNECTIONS = int(os.environ.get("ECHOLAB_C10K", "2000"))
HOLD_S = 10  # long enough to read the server's stats while every connection is open


@pytest.mark.parametrize("variant", ["epoll", "asyncio", "prefork"])
def test_holds_many_connections_at_once_each_served(lab: Lab, variant: str) -> None:
    service = f"server-{variant}"
    lab.fresh(service)
    loadgen = lab.start(
        "loadgen", "--target", service, "--idle", str(CONNECTIONS), "--hold", str(HOLD_S),
        "--timeout", "10", "--json",
    )  # fmt: skip
    try:
        held = json.loads(loadgen.stdout.readline())  # printed once all are open, before the hold
        assert held["idle_open"] == CONNECTIONS, held["idle_failure"]
        stats = lab.stats(service)
        assert stats["connections_current"] == CONNECTIONS
        assert stats["connections_refused"] == 0
        assert stats["bytes_received"] == stats["bytes_sent"] == CONNECTIONS  # one ping each
        _, err = loadgen.communicate(timeout=HOLD_S + 60)
        assert loadgen.returncode == 0, err
    finally:
        if loadgen.poll() is None:
            loadgen.kill()
    lab.wait_for(
        lambda: lab.stats(service)["connections_current"] == 0, f"{service} to close them all"
    )
