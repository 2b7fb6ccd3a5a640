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
from .report import Totals

MESSAGE = b"Hello, world"


def read_echo(sock: socket.socket, size: int) -> bytes:
    """Read up to ``size`` bytes, stopping early only if the server closes the connection."""
    echo = b""
    while len(echo) < size:
        chunk = sock.recv(size - len(echo))
        if not chunk:
            break
        echo += chunk
    return echo


def run_experiment(host: str, port: int, clients: int, repeat: int, timeout: float) -> Totals:
    """Run ``clients`` loops of ``repeat`` connections; what they counted."""
    lock = threading.Lock()
    totals = Totals(
        sent=0,
        echoed=0,
        mismatched=0,
        errors=0,
        first_error=None,
        elapsed_s=0.0,
        recorder=LatencyRecorder(),
    )

    def loop() -> None:
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
                    with lock:
                        totals.sent += 1
                    echo = read_echo(sock, len(MESSAGE))
                except OSError as exc:
                    failed(exc)
                    continue
            if len(echo) == len(MESSAGE):
                with lock:
                    if echo == MESSAGE:
                        totals.echoed += 1
                    else:
                        totals.mismatched += 1
                    totals.recorder.record((time.perf_counter_ns() - t0) // 1000)

    def failed(exc: OSError) -> None:
        with lock:
            totals.errors += 1
            totals.first_error = totals.first_error or f"{type(exc).__name__}: {exc}"

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals.elapsed_s = time.perf_counter() - start
    return totals
