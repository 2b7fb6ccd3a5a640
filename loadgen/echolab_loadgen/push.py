"""Pushes a run's counts to a Prometheus Pushgateway (docs/watch.md), so that Prometheus draws
what loadgen sent beside what the server counted: the race as a gap between two lines.

Why push instead of being scraped: ``docker compose run`` gives its container no name that
Prometheus could look up, and a run of a few seconds can end between two scrapes. The
Pushgateway keeps each run's last figures, the pattern Prometheus documents for batch jobs.
One group per variant: a new run against a variant replaces the last run's figures, so run
one loadgen per variant at a time while you watch.

Watching is optional: when the Pushgateway's name does not resolve (the ``observe`` profile is
not up, or a swarm), nothing is said and nothing is pushed; any other failure is one line on
stderr, and the run goes on without pushing.
"""

import http.client
import socket
import sys
from urllib.parse import quote

TIMEOUT_S = 1.0  # a push happens about once a second; a stuck gateway must not slow the run


class Pusher:
    """Pushes ``sent`` and ``echoed`` of one run against one variant to ``address`` (host:port),
    with the server's count at the start when the two counts are comparable."""

    def __init__(self, address: str | None, variant: str, server_at_start: int | None) -> None:
        self.address = address
        self.path = f"/metrics/job/loadgen/variant/{quote(variant, safe='')}"
        self.server_at_start = server_at_start

    def body(self, sent: int, echoed: int) -> str:
        lines = [
            "# HELP echolab_loadgen_sent_total Messages loadgen sent in this run.",
            "# TYPE echolab_loadgen_sent_total counter",
            f"echolab_loadgen_sent_total {sent}",
            "# HELP echolab_loadgen_echoed_total Messages echoed back whole in this run.",
            "# TYPE echolab_loadgen_echoed_total counter",
            f"echolab_loadgen_echoed_total {echoed}",
        ]
        if self.server_at_start is not None:
            lines += [
                "# HELP echolab_loadgen_server_messages_at_start The server's count as the run "
                "began (its /stats messages).",
                "# TYPE echolab_loadgen_server_messages_at_start gauge",
                f"echolab_loadgen_server_messages_at_start {self.server_at_start}",
            ]
        return "\n".join(lines) + "\n"

    def push(self, sent: int, echoed: int) -> None:
        """Replace this variant's group with the counts so far; on failure, stop pushing."""
        if self.address is None:
            return
        host, _, port = self.address.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
        try:
            conn.request("PUT", self.path, self.body(sent, echoed).encode())
            answer = conn.getresponse()
            answer.read()
            if answer.status >= 300:
                raise OSError(f"it answered {answer.status} {answer.reason}")
        except socket.gaierror:  # not up: watching is optional
            self.address = None
        except (OSError, http.client.HTTPException) as exc:
            print(
                f"loadgen: warning: not pushing to the Pushgateway at {self.address}: {exc}",
                file=sys.stderr,
                flush=True,
            )
            self.address = None
        finally:
            conn.close()
