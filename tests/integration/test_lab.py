"""The tutorial, in containers: echoes, the two-loop experiment, and each variant's lesson."""

import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from echolab_server.variants import registry, variant_names

from .lab import VARIANTS, Lab, summary


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


@pytest.mark.parametrize("variant", variant_names(lambda server: server.counts_exactly))
def test_two_loops_of_100_clients_count_200(experiment: dict, variant: str) -> None:
    assert experiment[variant]["stats"]["messages"] == 200
    totals = re.findall(r"^Total messages received: (\d+)$", experiment[variant]["log"], re.M)
    assert totals[-1] == "200"


@pytest.mark.parametrize("variant", variant_names(lambda server: not server.counts_exactly))
def test_the_race_loses_updates(experiment: dict, variant: str) -> None:
    counted = experiment[variant]["stats"]["messages"]
    lost = 200 - counted
    print(f"{variant}: sent 200, counted {counted}, lost updates {lost}")
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
    with lab.start("netcat", "-N", "server-simple", "12345") as netcat:
        netcat.stdin.write("Hello\n")
        netcat.stdin.flush()
        assert netcat.stdout.readline() == "Hello\n"  # nc is being served
        with lab.start("client", "--host", "server-simple", "--timeout", "60") as client:
            _assert_still_waiting(client)
            assert lab.stats("server-simple")["connections_total"] == 1
            netcat.stdin.close()  # nc disconnects...
            assert netcat.wait(timeout=60) == 0
            out, err = client.communicate(timeout=60)  # ...and the client is served
    assert client.returncode == 0, err
    assert summary(out) == (1, 1, 0, 0)


def test_pool_serves_one_client_past_its_workers_when_a_worker_frees(lab: Lab) -> None:
    workers = registry()["pool"].serves_at_once
    lab.fresh("server-pool")
    held = [_connect_and_prove_served(lab, "server-pool") for _ in range(workers)]
    try:
        with lab.start("client", "--host", "server-pool", "--timeout", "60") as client:
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
    """The totals it prints at the end are the ones its stats gave last (the server keeps
    whatever earlier tests sent it; only this test's two messages are known in advance)."""
    service = f"server-{variant}"
    before = lab.stats(service)
    client = lab.run("client", "--host", service, "--repeat", "2")
    assert client.returncode == 0, client.stderr
    last = lab.stats(service)
    started = time.monotonic()
    lab.compose_run("stop", service)
    took = time.monotonic() - started
    try:
        log = lab.logs(service)
        state = lab.compose_run("ps", "--all", "--format", "{{.ExitCode}}", service).stdout
        assert took < 2.0, f"docker compose stop took {took:.1f} s"
        assert state.strip() == "0"
        assert (
            last["messages"] - before["messages"],
            last["bytes_sent"] - before["bytes_sent"],
        ) == (2, 24)
        assert "Shutting down gracefully..." in log
        totals = (
            f"Final totals: {last['messages']} messages, {last['bytes_received']} bytes received, "
            f"{last['bytes_sent']} bytes sent"
        )
        assert totals in log
        assert "Traceback" not in log
    finally:
        lab.fresh(service)
