"""Hostile stats-port clients that both the in-process and the container tests play."""

import socket
import time

REQUEST = b"GET /stats HTTP/1.1\r\nHost: lab\r\n\r\n"


def send_a_byte_a_second(sock: socket.socket) -> tuple[bool, int, float]:
    """Send REQUEST one byte a second, listening for the close between bytes.

    Returns whether the endpoint closed the connection, the bytes sent and the seconds taken.
    """
    sock.settimeout(1.0)  # the pacing: one byte, then a second of listening for the close
    started, sent, closed = time.monotonic(), 0, False
    while not closed and sent < len(REQUEST):
        try:
            sock.sendall(REQUEST[sent : sent + 1])
            sent += 1
            closed = sock.recv(1) == b""
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            closed = True
    return closed, sent, time.monotonic() - started
