"""What the pictures read from a server's log (``docker compose logs --timestamps``).

Pure functions of the log's text, so the unit tests feed them lines as the server prints them.
"""

import re
from collections.abc import Sequence
from datetime import datetime

TOTAL = re.compile(r"Total messages received: (\d+)$")
ACCEPTED = "Received new connection from"
# Docker's timestamp (RFC 3339, nanoseconds), then the line as the server printed it.
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z (.*)$")


def totals(log: str) -> list[tuple[int, int]]:
    """[(message number, total printed)]: the n-th "Total messages received: N" line of the log
    is the n-th message counted, and N what the server believed its total to be then."""
    printed = [TOTAL.search(line.rstrip()) for line in log.splitlines()]
    return [(n, int(match[1])) for n, match in enumerate(filter(None, printed), start=1)]


def lost_updates(points: Sequence[tuple[int, int]]) -> int:
    """Messages counted minus the last total printed: what the race lost (0 for an exact count)."""
    return len(points) - points[-1][1] if points else 0


def stamped(log: str) -> list[tuple[float, str]]:
    """[(seconds since the epoch, text)] for each timestamped line; other lines are skipped."""
    out: list[tuple[float, str]] = []
    for line in log.splitlines():
        match = STAMPED.match(line.rstrip())
        if match:
            whole, fraction, text = match.groups()
            seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
            out.append((seconds + float(f"0.{fraction or 0}"), text))
    return out


def accepted_at(log: str) -> list[float]:
    """When the server accepted each connection, in the order it accepted them."""
    return [t for t, text in stamped(log) if text.startswith(ACCEPTED)]
