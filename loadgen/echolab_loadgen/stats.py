"""Reads a server's counters from its stats endpoint (``GET /stats``, JSON)."""

import http.client
import json
import socket
import sys
from collections.abc import Sequence
from typing import Any

from echolab_common.cli import Parser, port


class StatsUnavailable(Exception):
    """The server has no stats endpoint we can read (say, a bring-your-own server)."""


def fetch_stats(host: str, port: int, timeout: float = 3.0) -> Any:
    """One ``/stats`` reading, with plain http.client: no proxy setting can send it elsewhere."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/stats")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise StatsUnavailable(f"GET /stats on {host}:{port} answered {response.status}")
        return json.loads(body)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise StatsUnavailable(f"no stats from {host}:{port}: {exc}") from None
    finally:
        conn.close()


class ServerCount:
    """How many messages the server counted during a run (its /stats count is cumulative, so
    this is the difference); not to be confused with the server's own MessageCounter."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.before: int | None = None
        self.warning: str | None = None
        self.logs_per_message = False  # the server prints a line per message (its /stats says)
        self.variant: str | None = None  # the variant its /stats names
        if port:
            try:
                stats = fetch_stats(host, port)
                self.before = stats["messages"]
            except (StatsUnavailable, KeyError, TypeError) as exc:
                self.warning = str(exc)
            else:
                self.logs_per_message = stats.get("log_per_message") is True
                self.variant = stats.get("variant")

    def counted(self) -> int | None:
        """Messages the server counted since construction, or None where it cannot be read."""
        if self.before is None:
            return None
        try:
            messages: int = fetch_stats(self.host, self.port)["messages"]
            return messages - self.before
        except (StatsUnavailable, KeyError, TypeError) as exc:
            self.warning = str(exc)
            return None


def replica_stats(name: str, port: int, timeout: float = 3.0) -> dict[str, Any]:
    """Every replica's ``/stats``, by address: a swarm's ``tasks.<service>`` resolves to one
    address per running replica, and the server's totals are their exact sum."""
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StatsUnavailable(f"cannot resolve {name}: {exc.strerror}") from None
    return {
        addr: fetch_stats(addr, port, timeout) for addr in sorted({str(i[4][0]) for i in infos})
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m echolab_loadgen.stats tasks.server-poll``: one JSON line, every replica."""
    parser = Parser(prog="echolab_loadgen.stats", description=main.__doc__)
    parser.add_argument("name", help="host name of the servers, e.g. tasks.server-poll")
    parser.add_argument("--port", type=port, default=8080, help="stats port (default 8080)")
    args = parser.parse_args(argv)
    try:
        replicas = replica_stats(args.name, args.port)
    except StatsUnavailable as exc:
        print(f"echolab_loadgen.stats: {exc}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps({"name": args.name, "replicas": replicas}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
