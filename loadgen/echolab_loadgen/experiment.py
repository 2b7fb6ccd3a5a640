"""The tutorial's experiment: concurrent shell loops of one-message connections.

``for i in {1..100}; do python3 ClientPython.py; done`` in two terminals at once is ``clients=2,
repeat=100``: each loop is a thread here, each pass a fresh connection that sends one message,
waits for its echo and closes.  With one-message connections every ``recv()`` on the server is one
message, so the server's count must equal what was sent, unless its counter lost updates.
"""

import socket
import threading
import time

from .histogram import LatencyRecorder

MESSAGE = b"Hello, world"


def read_echo(sock, size):
    """Read up to ``size`` bytes, stopping early only if the server closes the connection."""
    echo = b""
    while len(echo) < size:
        chunk = sock.recv(size - len(echo))
        if not chunk:
            break
        echo += chunk
    return echo


def run_experiment(host, port, clients, repeat, timeout):
    """Run ``clients`` loops of ``repeat`` connections; returns the engine's report shape."""
    lock = threading.Lock()
    totals = {"sent": 0, "echoed": 0, "mismatched": 0, "errors": 0, "first_error": None}
    recorder = LatencyRecorder()

    def loop():
        for _ in range(repeat):
            try:
                sock = socket.create_connection((host, port), timeout=timeout)
            except OSError as exc:
                failed(exc)
                continue
            with sock:
                try:
                    t0 = time.perf_counter_ns()
                    sock.sendall(MESSAGE)
                    count("sent")
                    echo = read_echo(sock, len(MESSAGE))
                except OSError as exc:
                    failed(exc)
                    continue
            if len(echo) == len(MESSAGE):
                count("echoed" if echo == MESSAGE else "mismatched")
                with lock:
                    recorder.record((time.perf_counter_ns() - t0) // 1000)

    def count(key):
        with lock:
            totals[key] += 1

    def failed(exc):
        with lock:
            totals["errors"] += 1
            totals["first_error"] = totals["first_error"] or f"{type(exc).__name__}: {exc}"

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals["elapsed_s"] = time.perf_counter() - start
    totals["recorder"] = recorder
    return totals
