"""echolab client: the tutorial's ClientPython.py, grown up.

Like the tutorial, every message gets its own connection (connect, send, read the
echo, close), so `--repeat 100` is the tutorial's `for i in {1..100}; do python3
ClientPython.py; done` in one process. Unlike the tutorial, it waits for the whole
echo (TCP may deliver it in pieces), checks it byte for byte, survives failed
connections and ends with a summary whose exit code tells whether every echo came
back exact.

Exit codes: 0 all echoes exact, 1 any mismatch or failed connection,
2 bad arguments, 130 interrupted (Ctrl-C).
"""

import argparse
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from echolab_common.cli import Parser, positive, seconds, seconds_or_zero
from echolab_common.cli import port as parse_port
from echolab_common.wait import accepting

DEFAULT_HOST = "server-poll"
DEFAULT_PORT = 12345
DEFAULT_MESSAGE = "Hello, world"
DEFAULT_TIMEOUT = 5.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class EchoError(Exception):
    """A connection that did not produce a full echo, with a human-readable reason."""


@dataclass
class Summary:
    """Tally of one run.

    `sent` counts connections started, so after Ctrl-C the one cut short is in `sent`
    but in none of `echoed`, `mismatched` or `failed`.
    """

    host: str
    port: int
    sent: int = 0
    echoed: int = 0
    mismatched: int = 0
    failed: int = 0
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """True only if every attempted message came back exact and nothing was cut short."""
        return self.echoed == self.sent and not self.interrupted

    def line(self) -> str:
        """The last line of every run; the four counters come first so scripts can grep them."""
        extra = ", interrupted" if self.interrupted else ""
        return (
            f"Summary: sent {self.sent}, echoed {self.echoed}, mismatched {self.mismatched}, "
            f"failed {self.failed} ({self.host}:{self.port}, {self.elapsed:.3f}s{extra})"
        )


def emit(stream: TextIO, line: str) -> None:
    """Write one whole line in a single write and flush, so lines never interleave or lag."""
    stream.write(line + "\n")
    stream.flush()


def connect(host: str, port: int, timeout: float, turn: int = 0) -> socket.socket:
    """Open the connection, turning resolver errors and timeouts into clear reasons.

    A name with several addresses (a swarm service's replicas, `endpoint_mode: dnsrr`) is
    served in turns: connection `turn` tries address `turn` modulo their number first, then the
    others, as `socket.create_connection` does from the first. Resolvers sort the answers (RFC
    6724), so always starting from the first would send every connection to one replica.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise EchoError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    start = turn % len(infos)
    failure: OSError | None = None
    for family, kind, proto, _, address in infos[start:] + infos[:start]:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    if isinstance(failure, TimeoutError):
        raise EchoError(f"connect to {host}:{port} timed out after {timeout:g}s")
    assert failure is not None  # getaddrinfo never answers with no address
    raise failure


def echo_once(host: str, port: int, message: bytes, timeout: float, turn: int = 0) -> bytes:
    """One tutorial-style exchange; reads until len(message) bytes arrive, as TCP may split them."""
    with connect(host, port, timeout, turn) as sock:
        sock.sendall(message)
        received = bytearray()
        while len(received) < len(message):
            try:
                chunk = sock.recv(len(message) - len(received))
            except TimeoutError:
                raise EchoError(
                    f"timed out after {timeout:g}s waiting for the echo "
                    f"({len(received)} of {len(message)} bytes arrived)"
                ) from None
            if not chunk:
                raise EchoError(
                    f"server closed the connection after {len(received)} of {len(message)} bytes"
                )
            received += chunk
    return bytes(received)


def run(
    host: str,
    port: int,
    message: bytes,
    repeat: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    out: TextIO | None = None,
    err: TextIO | None = None,
    quiet: bool = False,
) -> Summary:
    """Send `message` over `repeat` successive connections and tally the outcome.

    Echo lines go to `out`, per-connection problems to `err` (default: stdout/stderr,
    looked up at call time so test capture works). A failure never stops the run;
    Ctrl-C does, and is reported in the returned summary instead of raised.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    summary = Summary(host, port)
    started = time.monotonic()
    emit(out, "Starting client...")
    try:
        for number in range(1, repeat + 1):
            summary.sent += 1
            try:
                data = echo_once(host, port, message, timeout, number)
            except (OSError, EchoError) as exc:
                summary.failed += 1
                emit(err, f"Connection {number} failed: {exc}")
            else:
                if data == message:
                    summary.echoed += 1
                    if not quiet:
                        emit(out, f"Received: {data!r}")
                else:
                    summary.mismatched += 1
                    emit(err, f"Connection {number} mismatched: sent {message!r}, got {data!r}")
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed = time.monotonic() - started
    return summary


def _non_empty(text: str) -> str:
    """argparse type: an empty host or message cannot be sent or echoed."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The CLI; --host and --port fall back to ECHOLAB_HOST / ECHOLAB_PORT for compose."""
    parser = Parser(
        prog="echolab_client",
        description="Send a message to the echolab echo server over successive connections "
        "and check every echo byte for byte.",
        epilog="Exit status: 0 every echo exact, 1 a mismatch or failed connection, "
        "2 bad arguments, 130 interrupted.",
    )
    parser.add_argument(
        "--host",
        type=_non_empty,
        help=f"server host name or address (default: $ECHOLAB_HOST, else {DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=parse_port,
        help=f"server TCP port (default: $ECHOLAB_PORT, else {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--message",
        type=_non_empty,
        default=DEFAULT_MESSAGE,
        help="text to send, UTF-8 encoded (default: %(default)r)",
    )
    parser.add_argument(
        "--repeat",
        type=positive(int),
        default=1,
        metavar="N",
        help="number of messages, one connection each, one after another (default: 1)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="limit for each connect and each receive (default: %(default)g)",
    )
    parser.add_argument(
        "--wait",
        type=seconds_or_zero,
        default=os.environ.get("ECHOLAB_WAIT", "0"),
        metavar="SECONDS",
        help="wait this long for the server to accept connections before the first message "
        "(default: $ECHOLAB_WAIT, else 0)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="omit the per-connection 'Received:' lines; problems and the summary still print",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the summary and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    host = args.host or os.environ.get("ECHOLAB_HOST") or DEFAULT_HOST
    port = args.port
    if port is None:
        try:
            port = parse_port(os.environ.get("ECHOLAB_PORT") or str(DEFAULT_PORT))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"environment variable ECHOLAB_PORT: {exc}")
    # os.fsencode gives back the exact bytes typed, even ones that are not valid UTF-8.
    message = os.fsencode(args.message)
    unreachable = accepting(host, port, args.wait)
    if unreachable:
        emit(sys.stderr, f"{host}:{port} not reachable after {args.wait:g}s: {unreachable}")
        return EXIT_FAILED
    try:
        summary = run(host, port, message, args.repeat, args.timeout, quiet=args.quiet)
        emit(sys.stdout, summary.line())
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, and keep Python's
        # exit-time flush of stdout from raising a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
