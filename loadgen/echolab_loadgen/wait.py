"""Waiting for the target: on a swarm, services start in any order, so a tool waits itself."""

import socket
import time

RETRY_S = 0.5


def wait_for(host, port, seconds):
    """None once ``host:port`` accepts a connection (closed unused: no message is counted),
    else the last reason after ``seconds``. ``seconds`` 0 tries nothing."""
    deadline = time.monotonic() + seconds
    reason = None
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=RETRY_S * 4).close()
            return None
        except OSError as exc:  # not resolvable yet, refused, or timed out
            reason = str(exc)
        time.sleep(RETRY_S)
    return reason
