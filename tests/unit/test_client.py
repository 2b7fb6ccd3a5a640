"""Unit tests for client/echolab_client.py against tiny in-process servers.

Each server listens on 127.0.0.1 with an ephemeral port before the fixture hands the
port out (socketserver binds and listens in its constructor), so no test waits for
readiness. The CLI contract (exit codes, one-line errors, Ctrl-C) is checked in a
real subprocess, where a traceback would actually show.
"""

import io
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import echolab_client as client
import pytest
from echolab_common.cli import MAX_SECONDS

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"
CLIENT = CLIENT_DIR / "echolab_client.py"
MESSAGE = b"Hello, world"
RECEIVED = "Received: b'Hello, world'"
SUMMARY = re.compile(
    r"Summary: sent (\d+), echoed (\d+), mismatched (\d+), failed (\d+) "
    r"\(127\.0\.0\.1:\d+, \d+\.\d{3}s(, interrupted)?\)"
)
WAIT = 10  # generous upper bound for anything that should happen at once

Behaviour = Callable[[socket.socket], None]


def recv_exact(conn: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes, so a server never closes with unread data (that sends RST)."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def echo(conn: socket.socket) -> None:
    """The tutorial's handle_client: echo until the client closes."""
    while data := conn.recv(1024):
        conn.sendall(data)


def echo_wrong(conn: socket.socket) -> None:
    """Answer with the same number of bytes, but not the same bytes."""
    conn.sendall(recv_exact(conn, len(MESSAGE)).swapcase())


def close_without_answer(conn: socket.socket) -> None:
    """Read the message and hang up (the handler returning closes the socket)."""
    recv_exact(conn, len(MESSAGE))


def echo_in_two_pieces(conn: socket.socket) -> None:
    """Send the echo as two TCP segments with a pause, so one recv() cannot get it all."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = recv_exact(conn, len(MESSAGE))
    conn.sendall(data[:5])
    time.sleep(0.3)
    conn.sendall(data[5:])


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True


class Servers:
    """Starts throw-away servers; `release` frees handlers that block on purpose."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._servers: list[_Server] = []

    def start(self, behave: Behaviour) -> int:
        """Listen on an ephemeral port, run `behave(conn)` per connection, return the port."""

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                behave(self.request)

        server = _Server(("127.0.0.1", 0), Handler)
        # A short poll interval only makes shutdown() quick; it is not a readiness wait.
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        self._servers.append(server)
        return server.server_address[1]

    def hang(self, conn: socket.socket) -> None:
        """Read the message, never answer (until the test ends)."""
        recv_exact(conn, len(MESSAGE))
        self.release.wait(WAIT)

    def close(self) -> None:
        self.release.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def servers() -> Iterator[Servers]:
    pool = Servers()
    yield pool
    pool.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port that is bound but not listening, so connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def cli(*args: str, port: int | None = None) -> list[str]:
    """Arguments for main(): the given ones, aimed at 127.0.0.1:port if a port is given."""
    target = ["--host", "127.0.0.1", "--port", str(port)] if port is not None else []
    return [*target, *args]


def lines(text: str) -> list[str]:
    return text.splitlines()


def counts(summary_line: str) -> tuple[int, int, int, int]:
    """(sent, echoed, mismatched, failed) from a summary line, which must match exactly."""
    match = SUMMARY.fullmatch(summary_line)
    assert match, summary_line
    return tuple(int(n) for n in match.groups()[:4])  # type: ignore[return-value]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CLIENT), *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, **(env or {})},
    )


# --- run(): the library function -------------------------------------------------


def test_run_counts_exact_echoes_and_prints_tutorial_lines(servers: Servers) -> None:
    port = servers.start(echo)
    out, err = io.StringIO(), io.StringIO()
    summary = client.run("127.0.0.1", port, MESSAGE, repeat=3, timeout=5, out=out, err=err)
    assert (summary.sent, summary.echoed, summary.mismatched, summary.failed) == (3, 3, 0, 0)
    assert summary.ok
    assert lines(out.getvalue()) == ["Starting client...", RECEIVED, RECEIVED, RECEIVED]
    assert err.getvalue() == ""


def test_run_uses_one_connection_per_message(servers: Servers) -> None:
    peers: list[tuple[str, int]] = []

    def count_then_echo(conn: socket.socket) -> None:
        peers.append(conn.getpeername())
        echo(conn)

    port = servers.start(count_then_echo)
    summary = client.run("127.0.0.1", port, MESSAGE, repeat=5, out=io.StringIO())
    assert summary.echoed == 5
    assert len(peers) == 5
    assert len(set(peers)) == 5  # five distinct client ports, i.e. five connections


def test_run_reassembles_an_echo_split_across_segments(servers: Servers) -> None:
    port = servers.start(echo_in_two_pieces)
    out = io.StringIO()
    summary = client.run("127.0.0.1", port, MESSAGE, timeout=5, out=out)
    assert (summary.echoed, summary.mismatched, summary.failed) == (1, 0, 0)
    assert lines(out.getvalue())[-1] == RECEIVED


def test_run_sends_non_ascii_bytes_unchanged(servers: Servers) -> None:
    port = servers.start(echo)
    out = io.StringIO()
    message = "héllo ☃".encode()
    summary = client.run("127.0.0.1", port, message, out=out)
    assert summary.ok
    assert lines(out.getvalue())[-1] == f"Received: {message!r}"


# --- main(): output lines and exit codes ------------------------------------------


def test_main_success_exits_0_with_summary(servers: Servers, capsys) -> None:
    port = servers.start(echo)
    assert client.main(cli("--repeat", "2", port=port)) == 0
    captured = capsys.readouterr()
    out = lines(captured.out)
    assert out[:3] == ["Starting client...", RECEIVED, RECEIVED]
    assert counts(out[3]) == (2, 2, 0, 0)
    assert len(out) == 4
    assert captured.err == ""


def test_main_quiet_keeps_only_start_and_summary(servers: Servers, capsys) -> None:
    port = servers.start(echo)
    assert client.main(cli("--repeat", "3", "--quiet", port=port)) == 0
    out = lines(capsys.readouterr().out)
    assert out[0] == "Starting client..."
    assert counts(out[1]) == (3, 3, 0, 0)
    assert len(out) == 2


def test_main_custom_message(servers: Servers, capsys) -> None:
    port = servers.start(echo)
    assert client.main(cli("--message", "Still here!", port=port)) == 0
    assert "Received: b'Still here!'" in lines(capsys.readouterr().out)


def test_main_wrong_echo_is_a_mismatch_and_exits_1(servers: Servers, capsys) -> None:
    port = servers.start(echo_wrong)
    assert client.main(cli(port=port)) == 1
    captured = capsys.readouterr()
    assert lines(captured.err) == [
        "Connection 1 mismatched: sent b'Hello, world', got b'hELLO, WORLD'"
    ]
    assert counts(lines(captured.out)[-1]) == (1, 0, 1, 0)
    assert RECEIVED not in captured.out


def test_main_server_closing_without_answer_fails_and_exits_1(servers: Servers, capsys) -> None:
    port = servers.start(close_without_answer)
    assert client.main(cli(port=port)) == 1
    captured = capsys.readouterr()
    assert lines(captured.err) == [
        "Connection 1 failed: server closed the connection after 0 of 12 bytes"
    ]
    assert counts(lines(captured.out)[-1]) == (1, 0, 0, 1)


def test_main_silent_server_times_out(servers: Servers, capsys) -> None:
    port = servers.start(servers.hang)
    started = time.monotonic()
    assert client.main(cli("--timeout", "0.2", port=port)) == 1
    assert time.monotonic() - started < WAIT
    captured = capsys.readouterr()
    assert lines(captured.err) == [
        "Connection 1 failed: timed out after 0.2s waiting for the echo (0 of 12 bytes arrived)"
    ]
    assert counts(lines(captured.out)[-1]) == (1, 0, 0, 1)


def test_main_refused_connections_are_counted_and_the_run_goes_on(
    refused_port: int, capsys
) -> None:
    assert client.main(cli("--repeat", "3", port=refused_port)) == 1
    captured = capsys.readouterr()
    assert lines(captured.err) == [
        f"Connection {n} failed: [Errno 111] Connection refused" for n in (1, 2, 3)
    ]
    assert counts(lines(captured.out)[-1]) == (3, 0, 0, 3)


def test_main_one_failure_fails_the_run_but_not_the_others(servers: Servers, capsys) -> None:
    seen: list[int] = []

    def first_hangs_up_then_echo(conn: socket.socket) -> None:
        seen.append(1)
        if len(seen) == 1:
            close_without_answer(conn)
        else:
            echo(conn)

    port = servers.start(first_hangs_up_then_echo)
    assert client.main(cli("--repeat", "3", port=port)) == 1
    captured = capsys.readouterr()
    out = lines(captured.out)
    assert out[1:3] == [RECEIVED, RECEIVED]
    assert counts(out[3]) == (3, 2, 0, 1)
    assert lines(captured.err) == [
        "Connection 1 failed: server closed the connection after 0 of 12 bytes"
    ]


def test_main_unresolvable_host_fails_clearly(monkeypatch, capsys) -> None:
    def no_such_host(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    assert client.main(["--host", "server-nowhere", "--repeat", "2"]) == 1
    captured = capsys.readouterr()
    assert lines(captured.err) == [
        f"Connection {n} failed: cannot resolve host 'server-nowhere': Name or service not known"
        for n in (1, 2)
    ]
    assert lines(captured.out)[-1].startswith("Summary: sent 2, echoed 0, mismatched 0, failed 2")


def test_main_host_and_port_come_from_the_environment(
    servers: Servers, monkeypatch, capsys
) -> None:
    port = servers.start(echo)
    monkeypatch.setenv("ECHOLAB_HOST", "127.0.0.1")
    monkeypatch.setenv("ECHOLAB_PORT", str(port))
    assert client.main([]) == 0
    assert counts(lines(capsys.readouterr().out)[-1]) == (1, 1, 0, 0)


def test_main_defaults_to_server_poll_on_12345(monkeypatch, capsys) -> None:
    asked: list[tuple[str, int]] = []

    def record(host, port, *args, **kwargs):
        asked.append((host, port))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.delenv("ECHOLAB_HOST", raising=False)
    monkeypatch.delenv("ECHOLAB_PORT", raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", record)
    assert client.main([]) == 1
    assert asked == [("server-poll", 12345)]
    assert "(server-poll:12345, " in capsys.readouterr().out


# --- the command line in a real process ------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "complaint"),
    [
        (["--repeat", "0"], {}, "argument --repeat: must be above 0: '0'"),
        (["--repeat", "-5"], {}, "argument --repeat: must be above 0: '-5'"),
        (["--repeat", "many"], {}, "argument --repeat: not a number: 'many'"),
        (["--port", "0"], {}, "argument --port: not a port from 1 to 65535: '0'"),
        (["--port", "70000"], {}, "argument --port: not a port from 1 to 65535: '70000'"),
        (["--port", "http"], {}, "argument --port: not a port from 1 to 65535: 'http'"),
        (["--message", ""], {}, "argument --message: must not be empty"),
        (["--timeout", "-1"], {}, "argument --timeout: must be above 0: '-1'"),
        (["--timeout", "0"], {}, "argument --timeout: must be above 0: '0'"),
        (["--timeout", "inf"], {}, "argument --timeout: not a finite number: 'inf'"),
        (["--timeout", "nan"], {}, "argument --timeout: not a finite number: 'nan'"),
        (["--timeout", "1e12"], {}, "argument --timeout: must be at most 604800: '1e12'"),
        (["--host"], {}, "argument --host: expected one argument"),
        (["--host", ""], {}, "argument --host: must not be empty"),
        (["surplus"], {}, "unrecognized arguments: surplus"),
        ([], {"ECHOLAB_PORT": "twelve"}, "environment variable ECHOLAB_PORT: not a port from 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], env: dict, complaint: str) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(lines(result.stderr)) == 1, result.stderr
    assert result.stderr.startswith(f"echolab_client: error: {complaint}")
    assert "Traceback" not in result.stderr


def test_the_longest_timeout_allowed_still_echoes(servers: Servers) -> None:
    """The cap is below what a socket takes: a timeout at the cap is a working run."""
    port = servers.start(echo)
    result = run_cli(*cli("--timeout", str(MAX_SECONDS), "--quiet", port=port))
    assert result.returncode == 0, result.stderr
    assert counts(lines(result.stdout)[-1]) == (1, 1, 0, 0)


def test_runs_as_a_module_with_python_m(servers: Servers) -> None:
    port = servers.start(echo)
    result = subprocess.run(
        [sys.executable, "-m", "echolab_client", "--quiet"],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "ECHOLAB_HOST": "127.0.0.1", "ECHOLAB_PORT": str(port)},
    )
    assert result.returncode == 0, result.stderr
    assert counts(lines(result.stdout)[-1]) == (1, 1, 0, 0)


def test_ctrl_c_prints_the_summary_so_far_and_exits_130(servers: Servers) -> None:
    second_arrived = threading.Event()
    seen: list[int] = []

    def echo_once_then_hang(conn: socket.socket) -> None:
        seen.append(1)
        if len(seen) == 1:
            echo(conn)
        else:
            second_arrived.set()
            servers.hang(conn)

    port = servers.start(echo_once_then_hang)
    proc = subprocess.Popen(
        [sys.executable, str(CLIENT), *cli("--repeat", "3", port=port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert second_arrived.wait(WAIT)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err == ""
    out_lines = lines(out)
    assert out_lines[:2] == ["Starting client...", RECEIVED]
    match = SUMMARY.fullmatch(out_lines[2])
    assert match, out_lines[2]
    assert match.groups() == ("2", "1", "0", "0", ", interrupted")


def test_closed_stdout_ends_the_run_without_traceback(servers: Servers) -> None:
    port = servers.start(echo)
    proc = subprocess.Popen(
        [sys.executable, str(CLIENT), *cli("--repeat", "100000", port=port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "Starting client...\n"
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read()
        proc.wait(timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "Traceback" not in err


# --- waiting for the server (a swarm starts services in any order) -----------------


def test_main_with_a_wait_serves_a_server_already_listening(servers: Servers, capsys) -> None:
    port = servers.start(echo)
    assert client.main(cli("--wait", "5", "--quiet", port=port)) == 0
    assert counts(lines(capsys.readouterr().out)[-1]) == (1, 1, 0, 0)


def test_main_gives_up_waiting_with_one_line(refused_port: int, capsys) -> None:
    assert client.main(cli("--wait", "0.6", port=refused_port)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(r"127\.0\.0\.1:\d+ not reachable after 0\.6s: .+\n", captured.err)


def test_a_bad_wait_in_the_environment_is_a_usage_error() -> None:
    result = run_cli("--repeat", "1", env={"ECHOLAB_WAIT": "soon"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--wait" in result.stderr


def test_a_name_with_several_addresses_gets_the_connections_in_turns(
    servers: Servers, monkeypatch
) -> None:
    """A swarm service under dnsrr resolves to every replica; the resolver's sorted answer must
    not send every connection to the first."""
    served: list[int] = []

    def counting(index: int) -> Behaviour:
        def behave(conn: socket.socket) -> None:
            served.append(index)
            echo(conn)

        return behave

    ports = [servers.start(counting(0)), servers.start(counting(1))]
    replicas = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)) for port in ports]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: replicas)
    summary = client.run("replicas", 0, MESSAGE, repeat=6, out=io.StringIO())
    assert summary.echoed == 6
    assert sorted(served) == [0, 0, 0, 1, 1, 1]
