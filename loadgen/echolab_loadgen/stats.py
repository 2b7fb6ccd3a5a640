"""Reads a server's counters from its stats endpoint (``GET /stats``, JSON)."""

import http.client
import json


class StatsUnavailable(Exception):
    """The server has no stats endpoint we can read (say, a bring-your-own server)."""


def fetch_stats(host, port, timeout=3.0):
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


class MessageCounter:
    """The server's message counter across a run: counters are cumulative, so take the delta."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.before = None
        self.warning = None
        self.logs_per_message = False  # the server prints a line per message (its /stats says)
        if port:
            try:
                stats = fetch_stats(host, port)
                self.before = stats["messages"]
            except (StatsUnavailable, KeyError, TypeError) as exc:
                self.warning = str(exc)
            else:
                self.logs_per_message = stats.get("log_per_message") is True

    def counted(self):
        """Messages the server counted since construction, or None where it cannot be read."""
        if self.before is None:
            return None
        try:
            return fetch_stats(self.host, self.port)["messages"] - self.before
        except (StatsUnavailable, KeyError, TypeError) as exc:
            self.warning = str(exc)
            return None
