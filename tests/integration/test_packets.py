"""The wire, seen by the lab's tcpdump service (docs/lessons/wire.md): in server-simple's network
namespace it shows a second client's handshake completed by the kernel before any accept(),
waiting in the listen queue (ss), and a reset client's RST."""

import contextlib
import re
import threading
import uuid

import pytest

from .lab import Lab, remove

RESET_CLIENT = """
import socket, struct
sock = socket.create_connection(("server-simple", 12345), timeout=10)
sock.sendall(b"Hello, world")
assert sock.recv(64) == b"Hello, world"
sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.close()
"""


class Lines:
    """A process's output, read line by line in the background, to wait on."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def has(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.lines)


@pytest.fixture
def capture(lab: Lab):
    """tcpdump on server-simple's echo port, from a fresh server-simple; its lines as they come."""
    lab.fresh("server-simple")
    name = f"capture-{uuid.uuid4().hex[:8]}"
    with lab.start("tcpdump", name=name) as process:  # --no-deps: the server stays as it is
        stdout, stderr = Lines(process.stdout), Lines(process.stderr)
        lab.wait_for(lambda: stderr.has("listening on eth0"), "tcpdump to listen", deadline=60)
        yield stdout
        remove(name)
        process.wait(timeout=60)


def flows(lines: list[str]) -> dict[str, list[str]]:
    """Each client's segments in order, as 'c>' or 's>' plus tcpdump's flags, keyed by the
    client's address, in the order the clients' SYNs were seen."""
    segments: dict[str, list[str]] = {}
    for line in lines:
        match = re.search(r"IP (\S+) > (\S+): Flags \[([^\]]+)\]", line)
        if not match:
            continue
        source, target, flags = match.groups()
        if target.endswith(".12345"):
            segments.setdefault(source, []).append(f"c>{flags}")
        elif source.endswith(".12345") and target in segments:
            segments[target].append(f"s>{flags}")
    return segments


def listen_queue(lab: Lab) -> int:
    """Recv-Q of the listening echo socket: connections the kernel completed, not yet accepted."""
    ss = lab.compose_run("run", "--rm", "-T", "--no-deps", "--entrypoint", "ss", "tcpdump", "-ltnH")
    line = next(line for line in ss.stdout.splitlines() if ":12345 " in line)
    return int(line.split()[1])


def test_second_clients_handshake_completes_before_accept(lab: Lab, capture: Lines) -> None:
    with contextlib.ExitStack() as started:
        first = started.enter_context(lab.start("netcat", "-N", "server-simple", "12345"))
        first_out = Lines(first.stdout)
        first.stdin.write("Hello\n")
        first.stdin.flush()
        lab.wait_for(lambda: first_out.has("^Hello$"), "nc's echo")

        second = started.enter_context(
            lab.start("client", "--host", "server-simple", "--timeout", "100")
        )
        lab.wait_for(lambda: listen_queue(lab) == 1, "the second client in the listen queue")

        def second_flow() -> list[str]:
            clients = list(flows(capture.lines).values())
            return clients[1] if len(clients) > 1 else []

        # SYN, SYN-ACK, ACK, the client's data and the kernel's ACK of it: all before accept().
        lab.wait_for(
            lambda: second_flow()[:5] == ["c>S", "s>S.", "c>.", "c>P.", "s>."],
            "the second client's handshake and data on the wire",
        )
        assert lab.logs("server-simple").count("Received new connection from") == 1
        assert "s>P." not in second_flow()  # no echo yet: the server has not accepted it

        first.stdin.close()  # nc -N: EOF ends the first connection, and the server accepts the next
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert "Received: b'Hello, world'" in out
        first.wait(timeout=60)


def test_reset_is_an_rst_on_the_wire_and_the_server_goes_on(lab: Lab, capture: Lines) -> None:
    reset = lab.compose_run(
        "run",
        "--rm",
        "-T",
        "--no-deps",
        "--entrypoint",
        "python3",
        "client",
        "-c",
        RESET_CLIENT,
        check=False,
    )
    assert reset.returncode == 0, reset.stderr

    def reset_seen() -> bool:
        return any(s.startswith("c>R") for flow in flows(capture.lines).values() for s in flow)

    lab.wait_for(reset_seen, "the client's RST")
    after = lab.run("client", "--host", "server-simple")
    assert after.returncode == 0, after.stderr
