"""The stats endpoint: the server's totals for programs, without parsing log prose.

``GET /stats`` answers JSON, ``GET /metrics`` Prometheus text, ``GET /health`` 200 once the
echo port is listening. It runs on its own port in a daemon thread, so asking never sends
echo traffic and never changes a count.
"""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Snapshot = Callable[[], dict[str, object]]

# name in /stats -> (Prometheus metric, type, help)
_METRICS = {
    "messages": ("echolab_messages_total", "counter", "Messages counted (recv() calls with data)."),
    "bytes_received": ("echolab_received_bytes_total", "counter", "Bytes received."),
    "bytes_sent": ("echolab_sent_bytes_total", "counter", "Bytes echoed back."),
    "connections_total": ("echolab_connections_total", "counter", "Connections accepted."),
    "connections_current": ("echolab_connections", "gauge", "Connections open now."),
    "connections_refused": (
        "echolab_refused_connections_total",
        "counter",
        "Connections refused at a limit.",
    ),
    "uptime_s": ("echolab_uptime_seconds", "gauge", "Seconds since the server started."),
}


def prometheus_text(snapshot: dict[str, object]) -> str:
    label = f'{{variant="{snapshot["variant"]}"}}'
    lines = []
    for key, (metric, kind, text) in _METRICS.items():
        lines += [
            f"# HELP {metric} {text}",
            f"# TYPE {metric} {kind}",
            f"{metric}{label} {snapshot[key]}",
        ]
    return "\n".join(lines) + "\n"


class StatsEndpoint:
    """An HTTP server in a daemon thread answering from ``snapshot()``."""

    def __init__(self, host: str, port: int, snapshot: Snapshot, ready: threading.Event) -> None:
        handler = type(
            "StatsHandler", (_StatsHandler,), {"snapshot": staticmethod(snapshot), "ready": ready}
        )
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            # A short poll interval keeps close() (and so shutdown) well inside a second.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="stats",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _StatsHandler(BaseHTTPRequestHandler):
    snapshot: Snapshot
    ready: threading.Event

    def do_GET(self) -> None:
        if self.path == "/health":
            ok = self.ready.is_set()
            self._answer(200 if ok else 503, "text/plain", "ok\n" if ok else "starting\n")
        elif self.path == "/stats":
            self._answer(200, "application/json", json.dumps(self.snapshot()) + "\n")
        elif self.path == "/metrics":
            self._answer(200, "text/plain; version=0.0.4", prometheus_text(self.snapshot()))
        else:
            self._answer(404, "text/plain", "try /stats, /metrics or /health\n")

    def _answer(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Stay silent: the server's log is for the echo traffic, and healthchecks poll often."""
