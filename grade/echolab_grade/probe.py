"""The checks that talk to the server, run in a container that shares its network namespace.

A tutorial-style server listens on ``localhost``, which only its own namespace reaches, so the
grader runs each of these in a container joined to it (compose service ``grade-probe``, the
loadgen image with this package and the lab's client mounted). One check per run; it prints one
JSON line: ``{"passed": bool, "saw": str, ...}``. Every wait has a deadline, so a server that
hangs makes the check fail with what was seen, never the probe hang.
"""

import json
import selectors
import socket
import struct
import sys
import threading
import time

from echolab_client import EchoError, connect, echo_once
from echolab_loadgen.experiment import run_experiment

HOST, PORT = "127.0.0.1", 12345
TIMEOUT = 10.0  # how long one echo may take before it counts as missing (machines get busy)
MESSAGE = b"Hello, world"


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read ``size`` bytes or raise EchoError saying how many came."""
    data = bytearray()
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            raise EchoError(f"{len(data)} of {size} bytes came back in {TIMEOUT:g} s") from None
        if not chunk:
            raise EchoError(f"the server closed the connection after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def timed_echo(message: bytes = MESSAGE) -> str:
    """One client's exact echo, or EchoError; returns how long it took, for the report."""
    started = time.monotonic()
    data = echo_once(HOST, PORT, message, TIMEOUT)
    if data != message:
        raise EchoError(f"sent {message!r}, got {data!r}")
    return f"{(time.monotonic() - started) * 1000:.0f} ms"


def ready() -> dict:
    """Wait until the server accepts a connection (it may take a while to start)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection((HOST, PORT), timeout=TIMEOUT).close()
            return {"passed": True, "saw": "listening on port 12345"}
        except OSError as exc:
            if time.monotonic() > deadline:
                saw = f"nothing listening on port 12345 after 60 s ({exc})"
                return {"passed": False, "saw": saw}
            time.sleep(0.1)


def alive() -> dict:
    """Whether the listener still takes connections (a dying server's is closed at once)."""
    try:
        socket.create_connection((HOST, PORT), timeout=TIMEOUT).close()
        return {"passed": True, "saw": "listening"}
    except OSError as exc:
        return {"passed": False, "saw": str(exc)}


def echo() -> dict:
    data = echo_once(HOST, PORT, MESSAGE, TIMEOUT)
    return {"passed": data == MESSAGE, "saw": f"sent {MESSAGE!r}, got {data!r}"}


def every_byte() -> dict:
    payload = bytes(range(256))
    data = echo_once(HOST, PORT, payload, TIMEOUT)
    if data != payload:
        wrong = next(i for i, (a, b) in enumerate(zip(payload, data, strict=True)) if a != b)
        return {"passed": False, "saw": f"byte {wrong} came back as {data[wrong]}"}
    zero = echo_once(HOST, PORT, b"\0", TIMEOUT)
    return {"passed": zero == b"\0", "saw": f"bytes 0-255 exact; b'\\0' alone came back {zero!r}"}


def two_loops() -> dict:
    """The tutorial's experiment (loadgen's): the grader counts from the server's log."""
    totals = run_experiment(HOST, PORT, 2, 100, TIMEOUT)
    errors = f", {totals.errors} failed ({totals.first_error})" if totals.errors else ""
    return {
        "passed": totals.echoed == 200,
        "echoed": totals.echoed,
        "saw": f"{totals.echoed} of 200 echoes exact{errors}",
    }


def second_client() -> dict:
    with connect(HOST, PORT, TIMEOUT) as first:
        first.sendall(b"Hello\n")
        recv_exact(first, 6)
        try:
            took = timed_echo()
        except (OSError, EchoError) as exc:
            return {"passed": False, "saw": f"first client connected and echoed; second: {exc}"}
        first.sendall(b"Still here!\n")
        recv_exact(first, 12)
    return {"passed": True, "saw": f"second client echoed in {took}; the first still echoes"}


def half_close() -> dict:
    payload = bytes(range(256)) * 64  # 16 KiB: many recv()s; the lab's 0.1 s of work is per recv
    with connect(HOST, PORT, TIMEOUT) as sock:

        def send() -> None:
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # what came back shows it

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = bytearray()
        ending = "EOF"
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                ending = f"nothing more for {TIMEOUT:g} s"
                break
            except OSError as exc:
                ending = str(exc)
                break
            if not chunk:
                break
            received += chunk
    passed = received == payload and ending == "EOF"
    return {
        "passed": passed,
        "saw": f"sent {len(payload)} bytes then FIN; {len(received)} came back, then {ending}",
    }


def reset() -> dict:
    with connect(HOST, PORT, TIMEOUT) as first:
        first.sendall(MESSAGE)
        recv_exact(first, len(MESSAGE))
        first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        took = [timed_echo(), timed_echo()]
    except (OSError, EchoError) as exc:
        return {"passed": False, "saw": f"a client reset its connection; the next client: {exc}"}
    return {"passed": True, "saw": f"after a client's RST, two clients echoed ({', '.join(took)})"}


def never_reader() -> dict:
    """A client that sends and never reads, until its sends make no progress for 2 s (long
    enough that a busy machine's scheduling is not mistaken for full buffers)."""
    hog = connect(HOST, PORT, TIMEOUT)
    hog.settimeout(2)
    chunk, sent, limit = b"x" * 65536, 0, 16 << 20  # the lab's loops push back after ~7-9 MB
    try:
        while sent < limit:
            sent += hog.send(chunk)
    except (TimeoutError, OSError):
        pass
    hogged = f"a client sent {sent >> 10} KiB and read none"
    try:
        took = timed_echo()
    except (OSError, EchoError) as exc:
        return {"passed": False, "saw": f"{hogged}; another: {exc}"}
    finally:
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        hog.close()  # unread bytes make close() a reset anyway; the server must survive it
    try:
        after = timed_echo()
    except (OSError, EchoError) as exc:
        return {"passed": False, "saw": f"{hogged}; another echoed in {took}; after it left: {exc}"}
    return {"passed": True, "saw": f"{hogged}; another echoed in {took}, and {after} after it left"}


def idle() -> dict:
    """200 connections that send nothing, then one client that wants its echo."""
    count, selector, connected = 200, selectors.DefaultSelector(), 0
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((HOST, PORT))
            sockets.append(sock)
            selector.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + TIMEOUT
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(deadline - time.monotonic()):
                attempt = key.fileobj
                assert isinstance(attempt, socket.socket)  # only sockets are registered
                selector.unregister(attempt)
                connected += attempt.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        held = f"{connected} of {count} idle connections made"
        try:
            took = timed_echo()
        except (OSError, EchoError) as exc:
            return {"passed": False, "saw": f"{held}; then a client: {exc}"}
        return {"passed": connected == count, "saw": f"{held}; a client echoed in {took}"}
    finally:
        for sock in sockets:
            sock.close()


CHECKS = {
    "ready": ready,
    "alive": alive,
    "echo": echo,
    "bytes": every_byte,
    "count": two_loops,
    "second": second_client,
    "halfclose": half_close,
    "reset": reset,
    "noread": never_reader,
    "idle": idle,
}


def run(check: str) -> dict:
    try:
        return CHECKS[check]()
    except (OSError, EchoError) as exc:
        return {"passed": False, "saw": str(exc) or type(exc).__name__}


def main() -> int:
    """``probe CHECK`` runs one check; ``probe --serve`` runs each check named on stdin, one
    line each, so the grader pays for one container per server, not per check."""
    if sys.argv[1:] == ["--serve"]:
        for line in sys.stdin:
            print(json.dumps(run(line.strip())), flush=True)
        return 0
    if len(sys.argv) != 2 or sys.argv[1] not in CHECKS:
        print(f"usage: probe {{{','.join(CHECKS)}}} | --serve", file=sys.stderr)
        return 2
    print(json.dumps(run(sys.argv[1])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
