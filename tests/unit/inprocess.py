"""In-process servers on loopback: each test drives a real variant through its real shutdown path.

The server runs in the main thread, exactly as in its container, because that is where
signals arrive; the test's own work runs in a driver thread that ends by sending SIGTERM.
"""

import io
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from echolab_server.log import Log
from echolab_server.server import EchoServer
from echolab_server.settings import Settings
from echolab_server.variants import server_class

DEADLINE = 10.0  # seconds any single network step in a unit test may take
START_DEADLINE = 60.0  # seconds a server may take to be ready (prefork starts interpreters)


@dataclass
class Run:
    server: EchoServer
    result: object
    log: str
    shutdown_seconds: float

    def lines(self) -> list[str]:
        return self.log.splitlines()


def run_server(variant: str, drive: Callable[[EchoServer], object], **overrides: object) -> Run:
    """Start ``variant`` on an ephemeral loopback port, run ``drive(server)`` beside it, then
    SIGTERM the server and return what the driver returned, the log and the shutdown time."""
    settings = replace(
        Settings(variant=variant, host="127.0.0.1", port=0, stats_port=None), **overrides
    )
    out = io.StringIO()
    server = server_class(variant)(settings, Log(out, quiet=settings.quiet))
    outcome: dict[str, object] = {}
    main_thread = threading.main_thread().ident

    def driver() -> None:
        try:
            if not server.ready.wait(START_DEADLINE):
                raise TimeoutError("server never became ready")
            outcome["result"] = drive(server)
        except BaseException as error:  # re-raised in the test's thread below
            outcome["error"] = error
        finally:
            outcome["signalled_at"] = time.monotonic()
            signal.pthread_kill(main_thread, signal.SIGTERM)

    thread = threading.Thread(target=driver, name="test-driver")
    thread.start()
    server.serve_until_signalled()
    stopped_at = time.monotonic()
    thread.join(DEADLINE)
    assert "signalled_at" in outcome, "the server stopped before the test asked it to"
    if "error" in outcome:
        raise outcome["error"]
    shutdown_seconds = stopped_at - outcome["signalled_at"]
    return Run(server, outcome.get("result"), out.getvalue(), shutdown_seconds)


def connect(server: EchoServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(1 << 20, size - len(chunks)))
        if not chunk:
            raise ConnectionError(f"closed after {len(chunks)} of {size} bytes")
        chunks += chunk
    return bytes(chunks)


def echo_once(server: EchoServer, message: bytes = b"Hello, world") -> bytes:
    """The tutorial's client: connect, send, read the echo, close."""
    with connect(server) as sock:
        sock.sendall(message)
        return recv_exactly(sock, len(message))


def closed_by_server(sock: socket.socket) -> bool:
    """True if the server has closed its end: the client reads EOF or is reset.

    The client sends a byte first: a connection the server never accepted (still in the
    kernel's queue when the listener closed) may have been dropped silently, and only
    traffic makes the client find out.
    """
    sock.settimeout(DEADLINE)
    try:
        sock.sendall(b"?")
        return sock.recv(10) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def eventually(condition: Callable[[], object], deadline: float = DEADLINE) -> bool:
    """Poll for a state the server reaches on its own (it notices closed sockets asynchronously)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True
