"""Where the container matters (issue 4): descriptor limits, the connection cap, a storm from
loadgen, restarts and network faults, and the hardening every container must really have."""

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from docker.errors import APIError, NotFound
from echolab_host import engine
from echolab_server.variants import registry

from .lab import VARIANTS, Lab, compose_config, one_per_family, remove, summary

SERVERS = [f"server-{variant}" for variant in VARIANTS]
TOOLS = ["client", "netcat", "loadgen"]
# One variant of each family stands for the family's shared code (lock and condition accept as
# threads does, epoll and prefork's workers run poll's loop, uvloop runs asyncio's code); not
# simple and pool, which serve one and ten connections at a time by design (idle ones past
# those wait), nor select with its descriptor ceiling, which is checked on its own.
FAMILIES = one_per_family(
    lambda server: server.serves_at_once is None and server.descriptor_ceiling is None
)
WITH_A_CEILING = [name for name, server in registry().items() if server.descriptor_ceiling]
STORM_CLIENTS, STORM_REPEAT = 10, 500  # 5,000 connect-send-close cycles
# Servers without the tutorial's 0.1 s of simulated work per message (with it, lock would take
# 500 s over a storm) and without a log line per message.
UNHURRIED = {"ECHOLAB_WORK_DELAY": "0", "ECHOLAB_QUIET": "1"}
FAILURE_LINE = re.compile(r"Connection \d+ failed: [^\n]+")


def loadgen_json(lab: Lab, *args: str) -> tuple[int, dict]:
    run = lab.run("loadgen", "--json", *args)
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout.splitlines()[-1])


@pytest.fixture(scope="module", autouse=True)
def usual_servers_after(lab: Lab) -> Iterator[None]:
    """Tests here recreate servers with UNHURRIED settings; leave the usual ones behind."""
    yield
    lab.fresh(*SERVERS)


# -- hardening -------------------------------------------------------------------------------


def test_compose_yaml_hardens_every_service_and_publishes_on_loopback_only() -> None:
    services = compose_config("tools")["services"]
    assert set(services) >= {*SERVERS, *TOOLS}
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert int(service.get("pids_limit", 0)) > 0, name
        assert int(service.get("mem_limit", 0)) > 0, name
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    for name in SERVERS:
        assert services[name]["ulimits"]["nofile"] == {"soft": 16384, "hard": 16384}


def _assert_confined(status: str, what: str) -> None:
    """/proc/<pid>/status of a container process: not root, no capabilities, no_new_privs."""
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uids = fields["Uid"].split()
    assert "0" not in uids, f"{what} runs as root: Uid {uids}"
    assert int(fields["CapEff"], 16) == 0, f"{what} keeps capabilities {fields['CapEff']}"
    assert int(fields["CapBnd"], 16) == 0, f"{what} may regain capabilities {fields['CapBnd']}"
    assert fields["NoNewPrivs"].strip() == "1", what


@pytest.mark.parametrize("service", SERVERS)
def test_running_servers_are_confined_and_published_on_loopback(lab: Lab, service: str) -> None:
    container = engine().containers.get(lab.container(service))
    code, output = container.exec_run(["cat", "/proc/1/status", "/proc/1/limits"])
    status = output.decode()
    assert code == 0, status
    _assert_confined(status, service)
    assert re.search(r"^Max open files\s+16384\s+16384\s", status, re.M), status
    code, (_, stderr) = container.exec_run(["touch", "/app/probe"], demux=True)
    assert code != 0
    assert b"Read-only file system" in stderr
    inspected = container.attrs
    assert inspected["HostConfig"]["Memory"] > 0
    assert inspected["HostConfig"]["PidsLimit"] > 0
    bindings = [b for found in inspected["NetworkSettings"]["Ports"].values() for b in found or []]
    assert bindings, "the test stack publishes the echo and stats ports"
    assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}


@pytest.mark.parametrize("service", TOOLS)
def test_tool_containers_are_confined(lab: Lab, service: str) -> None:
    status = lab.compose_run(
        "run", "--rm", "-T", "--no-deps", "--entrypoint", "cat", service, "/proc/self/status"
    )
    _assert_confined(status.stdout, service)
    write = lab.compose_run(
        "run", "--rm", "-T", "--no-deps", "--entrypoint", "touch", service, "/probe", check=False
    )
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", FAMILIES)
def test_the_connection_cap_refuses_with_a_log_line_in_a_container(lab: Lab, variant: str) -> None:
    name = f"capped-{variant}-{uuid.uuid4().hex[:6]}"
    lab.compose_run(
        "run", "--detach", "--name", name, f"server-{variant}", "--variant", variant,
        "--max-connections", "3",
    )  # fmt: skip
    try:
        lab.wait_for(lambda: _health(name) == "healthy", f"{name} to become healthy")
        code, result = loadgen_json(lab, "--target", name, "--stats-port", "0", "--idle", "5")
        assert code == 1
        assert result["idle_open"] == 3
        assert result["idle_failure"].startswith("connection 4 ")
        client = lab.run("client", "--host", name)  # the three are gone: served again
        assert client.returncode == 0, client.stderr
        log = engine().containers.get(name).logs(stderr=False).decode()
        assert re.search(
            r"^Refusing connection from .*: 3 connections open \(limit 3\)$", log, re.M
        )
        assert "Traceback" not in log
    finally:
        remove(name)


def _health(container: str) -> str:
    """Its healthcheck's status; "" if it has none, or is gone."""
    with contextlib.suppress(NotFound):
        return engine().containers.get(container).attrs["State"].get("Health", {}).get("Status", "")
    return ""


@pytest.mark.parametrize("variant", WITH_A_CEILING + FAMILIES)
def test_past_fd_setsize_select_refuses_and_the_others_accept(lab: Lab, variant: str) -> None:
    service = f"server-{variant}"
    lab.fresh(service, env=UNHURRIED)
    code, result = loadgen_json(lab, "--target", service, "--idle", "1100")
    log = lab.logs(service)
    if variant in WITH_A_CEILING:
        assert code == 1
        assert 1000 < result["idle_open"] < 1024
        assert "past select()'s FD_SETSIZE ceiling (1024)" in log
    else:
        assert (code, result["idle_open"], result["idle_failure"]) == (0, 1100, None)
        assert "Refusing connection" not in log
    # The refusal never kills the server: once the idle ones are gone, it serves as before.
    client = lab.run("client", "--host", service, "--repeat", "3")
    assert client.returncode == 0, client.stderr
    assert "Traceback" not in lab.logs(service)


# -- a connection storm ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def storms(lab: Lab) -> dict[str, tuple[int, dict, dict]]:
    """5,000 connect-send-close cycles from loadgen against each fresh UNHURRIED server."""
    lab.fresh(*SERVERS, env=UNHURRIED)

    def storm(service: str) -> tuple[int, dict, dict]:
        code, result = loadgen_json(
            lab, "--target", service, "--clients", str(STORM_CLIENTS),
            "--repeat", str(STORM_REPEAT), "--timeout", "30",
        )  # fmt: skip
        lab.wait_for(
            lambda: lab.stats(service)["connections_current"] == 0,
            f"{service} to close its connections",
        )
        return code, result, lab.stats(service)

    # Four at a time: twelve at once took over two minutes each on two cores.
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(VARIANTS, pool.map(storm, SERVERS), strict=True))


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_storm_of_5000_connections_every_echo_exact(storms: dict, variant: str) -> None:
    code, result, stats = storms[variant]
    cycles = STORM_CLIENTS * STORM_REPEAT
    print(f"{variant}: storm of {cycles} connections at {result['msgs_per_s']} per second")
    assert code == 0, result
    assert (result["sent"], result["echoed"], result["errors"]) == (cycles, cycles, 0)
    assert stats["connections_total"] == cycles
    assert stats["bytes_received"] == stats["bytes_sent"] == cycles * len("Hello, world")
    if registry()[variant].counts_exactly:  # else losing updates is the lesson
        assert stats["messages"] == cycles


# -- faults ----------------------------------------------------------------------------------


class BackgroundClient:
    """The tutorial client looping in a named container; its problems collected as they come."""

    def __init__(self, lab: Lab, service: str) -> None:
        self.lab = lab
        self.name = f"client-{uuid.uuid4().hex[:8]}"
        self._running = contextlib.ExitStack()
        # Bounded, and long enough to outlast the fault: the test interrupts it with Ctrl-C.
        self.process = self._running.enter_context(lab.start(
            "client", "--host", service, "--repeat", "100000", "--quiet", "--timeout", "2",
            name=self.name,
        ))  # fmt: skip
        self.problems: list[str] = []
        self._reader = threading.Thread(target=self._read_problems, daemon=True)
        self._reader.start()

    def _read_problems(self) -> None:
        for line in self.process.stderr:
            if line.strip():  # `docker compose run` adds an empty line when Ctrl-C ends it
                self.problems.append(line)

    def odd_lines(self) -> list[str]:
        """What the client wrote to stderr besides one-line connection failures."""
        return [line for line in self.problems if not FAILURE_LINE.fullmatch(line.rstrip("\n"))]

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; returns the exit code and the output."""
        with contextlib.suppress(APIError):  # ended already
            engine().containers.get(self.name).kill(signal="SIGINT")
        try:
            code = self.process.wait(timeout=30)
            self._reader.join(10)
            return code, self.process.stdout.read()
        finally:
            self._running.close()  # kills it and its container if Ctrl-C did not end it


def _served_since_start(lab: Lab, service: str, at_least: int, younger_than: float) -> bool:
    try:
        stats = lab.stats(service)
    except OSError:  # restarting: not listening yet
        return False
    return stats["uptime_s"] < younger_than and stats["connections_total"] >= at_least


@pytest.mark.parametrize("variant", ["threads", "poll"])
def test_a_restart_fails_connections_clearly_then_the_client_is_served(
    lab: Lab, variant: str
) -> None:
    service = f"server-{variant}"
    lab.fresh(service, env=UNHURRIED)
    client = BackgroundClient(lab, service)
    try:
        lab.wait_for(lambda: _served_since_start(lab, service, 20, 1e9), "the client to run")
        before = lab.stats(service)["uptime_s"]
        lab.compose_run("restart", service)
        lab.wait_for(
            lambda: _served_since_start(lab, service, 20, before),
            "the restarted server to serve the client again",
        )
        lab.wait_for(lambda: _health(lab.container(service)) == "healthy", "healthy again")
    finally:
        code, out = client.interrupt()
    sent, echoed, mismatched, failed = summary(out)
    assert code == 130
    assert failed > 0, "connections during the restart must be reported failed"
    assert echoed + failed in (sent, sent - 1)  # the one Ctrl-C cut short is in sent only
    assert echoed >= 40 and mismatched == 0
    assert client.odd_lines() == []
    assert len(client.problems) == failed


def test_a_client_cut_off_the_network_fails_in_one_line_and_never_hangs(lab: Lab) -> None:
    service = "server-poll"
    lab.fresh(service, env=UNHURRIED)
    client = BackgroundClient(lab, service)
    try:
        lab.wait_for(lambda: _served_since_start(lab, service, 20, 1e9), "the client to run")
        engine().networks.get(lab.network()).disconnect(client.name)
        # Each connection after the cut ends within the client's 2 s timeout: no hang.
        lab.wait_for(lambda: client.problems, "the client to report a failed connection")
    finally:
        code, out = client.interrupt()
    assert code == 130
    summary(out)  # it ends with its summary line
    assert client.problems
    assert client.odd_lines() == []
