"""The tutorial, in containers: echoes, the two-loop experiment, and each variant's lesson."""

import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import BEYOND_VARIANTS, VARIANTS, Lab

SUMMARY = re.compile(r"Summary: sent (\d+), echoed (\d+), mismatched (\d+), failed (\d+)")


def summary(output: str) -> tuple[int, int, int, int]:
    match = SUMMARY.search(output)
    assert match, f"no summary line in: {output[-500:]!r}"
    return tuple(int(n) for n in match.groups())


@pytest.mark.parametrize("variant", VARIANTS)
def test_client_and_netcat_get_exact_echoes(lab: Lab, variant: str) -> None:
    client = lab.run("client", "--host", f"server-{variant}", "--repeat", "3")
    assert client.returncode == 0, client.stderr
    assert client.stdout.count("Received: b'Hello, world'") == 3
    assert summary(client.stdout) == (3, 3, 0, 0)

    netcat = lab.run("netcat", "-N", f"server-{variant}", "12345", stdin="Hello\nStill here!\n")
    assert netcat.returncode == 0, netcat.stderr
    assert netcat.stdout == "Hello\nStill here!\n"


@pytest.fixture(scope="module")
def experiment(lab: Lab) -> dict[str, dict]:
    """The tutorial's experiment on every variant at once: two ``client --repeat 100`` runs
    side by side against a fresh server, then the server's stats and log."""
    services = [f"server-{variant}" for variant in VARIANTS]
    lab.fresh(*services)
    with ThreadPoolExecutor(2 * len(services)) as pool:
        runs = {
            service: [
                pool.submit(lab.run, "client", "--host", service, "--repeat", "100", "--quiet")
                for _ in range(2)
            ]
            for service in services
        }
        clients = {service: [run.result() for run in pair] for service, pair in runs.items()}
    results = {}
    for variant, service in zip(VARIANTS, services, strict=True):
        lab.wait_for(
            lambda service=service: lab.stats(service)["connections_current"] == 0,
            f"{service} to close its connections",
        )
        results[variant] = {
            "clients": clients[service],
            "stats": lab.stats(service),
            "log": lab.logs(service),
        }
    return results


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_loops_of_100_clients_every_echo_exact(experiment: dict, variant: str) -> None:
    for client in experiment[variant]["clients"]:
        assert client.returncode == 0, client.stderr
        assert summary(client.stdout) == (100, 100, 0, 0)
    stats = experiment[variant]["stats"]
    assert stats["connections_total"] == 200
    assert stats["bytes_received"] == stats["bytes_sent"] == 200 * len("Hello, world")


@pytest.mark.parametrize(
    "variant", ["simple", "lock", "condition", "select", "poll", "pool", *BEYOND_VARIANTS]
)
def test_two_loops_of_100_clients_count_200(experiment: dict, variant: str) -> None:
    assert experiment[variant]["stats"]["messages"] == 200
    totals = re.findall(r"^Total messages received: (\d+)$", experiment[variant]["log"], re.M)
    assert totals[-1] == "200"


def test_threads_race_loses_updates(experiment: dict) -> None:
    counted = experiment["threads"]["stats"]["messages"]
    lost = 200 - counted
    print(f"threads: sent 200, counted {counted}, lost updates {lost}")
    assert 0 < counted < 200, "the unguarded counter must lose updates under two loops"


def test_condition_announces_100_once_right_after_it(experiment: dict) -> None:
    lines = experiment["condition"]["log"].splitlines()
    assert lines.count("*** 100 messages received ***") == 1
    announced = lines.index("*** 100 messages received ***")
    totals = [line for line in lines[:announced] if line.startswith("Total messages received: ")]
    assert totals[-1] == "Total messages received: 100"
    later = [line for line in lines[announced:] if line.startswith("Total messages received: ")]
    assert later[0] == "Total messages received: 101"


def _connect_and_prove_served(lab: Lab, service: str) -> socket.socket:
    sock = socket.create_connection(lab.address(service), timeout=30)
    sock.sendall(b"x")
    assert sock.recv(1) == b"x"
    return sock


def _assert_still_waiting(process: subprocess.Popen, seconds: float = 3.0) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=seconds)


def test_simple_makes_the_second_client_wait_for_the_first(lab: Lab) -> None:
    lab.fresh("server-simple")
    netcat = lab.start("netcat", "-N", "server-simple", "12345")
    try:
        netcat.stdin.write("Hello\n")
        netcat.stdin.flush()
        assert netcat.stdout.readline() == "Hello\n"  # nc is being served
        client = lab.start("client", "--host", "server-simple", "--timeout", "60")
        _assert_still_waiting(client)
        assert lab.stats("server-simple")["connections_total"] == 1
        netcat.stdin.close()  # nc disconnects...
        assert netcat.wait(timeout=60) == 0
        out, err = client.communicate(timeout=60)  # ...and the client is served
        assert client.returncode == 0, err
        assert summary(out) == (1, 1, 0, 0)
    finally:
        for process in (netcat,):
            if process.poll() is None:
                process.kill()


def test_pool_serves_the_eleventh_client_when_a_worker_frees(lab: Lab) -> None:
    lab.fresh("server-pool")
    held = [_connect_and_prove_served(lab, "server-pool") for _ in range(10)]
    try:
        client = lab.start("client", "--host", "server-pool", "--timeout", "60")
        _assert_still_waiting(client)
        held.pop().close()
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err
        assert summary(out) == (1, 1, 0, 0)
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("variant", VARIANTS)
def test_compose_stop_is_prompt_and_clean(lab: Lab, variant: str) -> None:
    service = f"server-{variant}"
    lab.fresh(service)
    client = lab.run("client", "--host", service, "--repeat", "2")
    assert client.returncode == 0, client.stderr
    started = time.monotonic()
    lab.compose_run("stop", service)
    took = time.monotonic() - started
    try:
        log = lab.logs(service)
        state = lab.compose_run("ps", "--all", "--format", "{{.ExitCode}}", service).stdout
        assert took < 2.0, f"docker compose stop took {took:.1f} s"
        assert state.strip() == "0"
        assert "Shutting down gracefully..." in log
        assert "Final totals: 2 messages, 24 bytes received, 24 bytes sent" in log
        assert "Traceback" not in log
    finally:
        lab.fresh(service)
