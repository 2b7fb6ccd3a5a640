"""Idle connections: what holding them costs a server, and how many it accepts at all.

Connections are opened one at a time and each is proved live with a one-byte echo, because a
server can accept a connection into its backlog (the kernel does that) and still never serve it:
the simple variant serves one, the pool ten, select stops at its 1024 file descriptor ceiling.
"""

import socket

from .experiment import read_echo

PING = b"."


def open_idle(
    host: str, port: int, count: int, timeout: float
) -> tuple[list[socket.socket], str | None]:
    """Open up to ``count`` live connections; stop at the first that fails.

    Returns (open sockets, None) or (open sockets, a one-line reason the next one failed).
    """
    socks: list[socket.socket] = []
    for _ in range(count):
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            return socks, f"connection {len(socks) + 1} refused: {exc}"
        socks.append(sock)
        echo: bytes | None
        try:
            sock.sendall(PING)
            echo = read_echo(sock, len(PING))
        except TimeoutError:
            echo = None
        except OSError as exc:
            socks.pop().close()
            return socks, f"connection {len(socks) + 1} failed: {exc}"
        if echo != PING:
            socks.pop().close()
            why = {None: f"not served within {timeout:g} s", b"": "closed by the server"}.get(
                echo, f"echoed {echo!r} instead of {PING!r}"
            )
            return socks, f"connection {len(socks) + 1} {why}"
    return socks, None
