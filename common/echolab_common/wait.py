"""Waiting for a condition the world reaches by itself, with a deadline: never a fixed sleep."""

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(Exception):
    """The condition did not hold by the deadline; the message is one line naming it."""


def until(check: Callable[[], T], what: str, seconds: float, interval: float = 0.5) -> T:
    """``check()``'s first true result, asked every ``interval`` seconds; Timeout naming
    ``what`` if none came within ``seconds``. ``check`` is asked at least once."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise Timeout(f"{what}: not within {seconds:g} s")
        time.sleep(interval)


def accepting(host: str, port: int, seconds: float) -> str | None:
    """None once ``host:port`` accepts a connection (closed unused: no message is counted),
    else the last reason after ``seconds``; on a swarm, services start in any order.
    ``seconds`` 0 tries nothing."""
    if seconds <= 0:
        return None
    reasons: list[str] = []

    def connects() -> bool:
        try:
            socket.create_connection((host, port), timeout=2.0).close()
            return True
        except OSError as exc:  # not resolvable yet, refused, or timed out
            reasons.append(str(exc))
            return False

    try:
        until(connects, f"{host}:{port}", seconds)
    except Timeout as timeout:
        return reasons[-1] if reasons else str(timeout)
    return None
