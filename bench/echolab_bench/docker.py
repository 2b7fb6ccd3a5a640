"""Docker control: the bench's own compose project, pinned containers and their cgroup counters.

The stack is the repository's compose.yaml with two changes made by an override file: no
host ports (loadgen reaches each server over the compose network, as the lab's containers do)
and a ``cpuset`` for every server and for loadgen, disjoint, so the two never share a core.
``make pictures`` (pictures/echolab_pictures) drives the same stack, with ephemeral host ports
when the host itself must time a client (``publish``).

Containers and networks go through the Docker SDK (echolab_host.engine), compose through
echolab_host.Compose; a failure of either is a one-line DockerError.
"""

import contextlib
import json
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from docker.errors import APIError, NotFound
from docker.models.containers import Container
from echolab_common.wait import Timeout, until
from echolab_host import (
    API_TIMEOUT_S,
    Compose,
    DockerError,
    Exec,
    engine,
    exec_output,
    run,
    speaking,
)

REPO = Path(__file__).resolve().parents[2]
RULER = "ruler"  # compose.yaml's service (profile "ruler") of the C server, bench/c/echo_epoll.c
GENERATOR = "loadgen-c"  # the C load generator's service (profile "ruler"), bench/c/echo_load.c
PROFILES = ("tools", RULER)


class BenchError(Exception):
    """Something the bench cannot go on without; reported as one line."""


# What ends a bench (or pictures) run with one line and a non-zero exit: the bench's own
# errors, Docker's (the engine, compose) and a wait past its deadline.
ONE_LINE_ERRORS = (BenchError, DockerError, Timeout)


def container(name: str) -> Container:
    """A container by name or id, as the engine describes it now."""
    with speaking(f"container {name}"):
        return engine().containers.get(name)


# Counter files, relative to a cgroup's directory: v1 (one hierarchy per controller), then v2.
V1_FILES = {
    "cpuacct": ("cpuacct.usage",),
    "memory": ("memory.usage_in_bytes", "memory.stat"),
}
V2_FILES = ("cpu.stat", "memory.current", "memory.stat")


class Cgroup:
    """A container's CPU and memory counters.

    Read from the host's /sys/fs/cgroup when the bench runs on the Docker host (a file read:
    no process is started, and nothing is charged to the container); otherwise with ``grep``
    inside the container, whose own /sys/fs/cgroup is its cgroup (Docker Desktop, say).
    """

    def __init__(self, container: str) -> None:
        self.container = container
        self.paths = self._host_paths()

    def _host_paths(self) -> list[str] | None:
        pid = container(self.container).attrs["State"]["Pid"]
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        where = {}
        for line in lines:
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                where[controller] = path
        if "cpuacct" in where and "memory" in where:
            paths = [
                f"/sys/fs/cgroup/{controller}{where[controller]}/{name}"
                for controller, names in V1_FILES.items()
                for name in names
            ]
        else:
            paths = [f"/sys/fs/cgroup{where.get('', '/')}/{name}" for name in V2_FILES]
        return paths if all(os.access(p, os.R_OK) for p in paths) else None

    def _values(self) -> dict[str, int]:
        """{"file:key" or "file": integer} for every counter file."""
        if self.paths is not None:
            text = []
            for path in self.paths:
                text += [f"{path}:{line}" for line in Path(path).read_text().splitlines()]
        else:
            files = [f"/sys/fs/cgroup/{c}/{n}" for c, names in V1_FILES.items() for n in names]
            files += [f"/sys/fs/cgroup/{name}" for name in V2_FILES]
            grep = ["grep", "-Hs", ".", *files]
            text = exec_output(self.container, grep, check=False).splitlines()
        values = {}
        for line in text:
            path, _, rest = line.partition(":")
            name, _, number = rest.rpartition(" ")
            values[f"{Path(path).name}:{name}".rstrip(":")] = int(number)
        return values

    def read(self) -> tuple[float, int]:
        """(CPU seconds used so far, memory in bytes: usage less inactive page cache)."""
        values = self._values()
        if "cpuacct.usage" in values:
            cpu = values["cpuacct.usage"] / 1e9
            mem = values["memory.usage_in_bytes"] - values.get("memory.stat:total_inactive_file", 0)
        elif "cpu.stat:usage_usec" in values:
            cpu = values["cpu.stat:usage_usec"] / 1e6
            mem = values["memory.current"] - values.get("memory.stat:inactive_file", 0)
        else:
            raise BenchError(f"no cgroup counters readable for container {self.container}")
        return cpu, mem

    def cpu_s(self) -> float:
        return self.read()[0]

    def memory_bytes(self) -> int:
        return self.read()[1]


def cpu_list(cpuset: str) -> list[int]:
    """The CPUs a cpuset string ("0", "0-1", "0,2-3") names; ValueError if it is not one."""
    out: list[int] = []
    for part in cpuset.split(","):
        low, _, high = part.partition("-")
        out += range(int(low), int(high or low) + 1)
    return out


def cores(cpuset: str | None) -> int:
    """How many CPUs a container pinned to ``cpuset`` may use (None or "": the host's)."""
    return len(cpu_list(cpuset)) if cpuset else os.cpu_count() or 1


class Stack:
    """The bench's own compose project: compose.yaml without host ports, with cpusets.

    ``work_delay`` None leaves each variant its own default (the tutorial's 0.1 s where it has
    it); ``quiet`` drops the per-message log lines; ``publish`` gives every server ephemeral
    ports on 127.0.0.1 (``address()`` says which), as the integration tests do.
    """

    def __init__(
        self,
        project: str,
        work_delay: float | None,
        server_cpus: str | None,
        loadgen_cpus: str | None,
        quiet: bool = True,
        publish: bool = False,
    ) -> None:
        self.publish = publish
        self.server_cpus, self.loadgen_cpus = server_cpus, loadgen_cpus
        self.loadgen_cores = cores(loadgen_cpus)
        self.loadgen_container = f"{project}-loadgen"
        self.generator_container = f"{project}-{GENERATOR}"
        self.variables = {
            "ECHOLAB_QUIET": "1" if quiet else "0",
            "ECHOLAB_WORK_DELAY": "" if work_delay is None else f"{work_delay:g}",
        }
        # Written on entering the ``with`` block, removed on leaving it; one project, one file.
        self.override = Path(tempfile.gettempdir()) / f"{project}-override.yaml"
        self.project = Compose(project, (self.override,), PROFILES, self.variables)
        self.connected: list[str] = []
        self.network = ""

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        """``docker compose ... args`` on the bench's project; its stdout."""
        return self.project.run(*args, timeout=timeout, check=check).stdout

    def services(self) -> list[str]:
        """The ``server-*`` services compose.yaml defines."""
        out = Compose(env=self.variables).run("config", "--services").stdout
        return [s for s in out.split() if s.startswith("server-")]

    def __enter__(self) -> "Stack":
        lines = ["services:"]
        for service in [*self.services(), RULER]:
            # No healthcheck: its probe runs inside the server's container, so its CPU would
            # count as the server's; wait_echo() tells when a server serves instead.
            ports = (
                '!override ["127.0.0.1::12345", "127.0.0.1::8080"]' if self.publish else "!reset []"
            )
            lines += [
                f"  {service}:",
                f"    ports: {ports}",
                "    healthcheck: !override {disable: true}",
            ]
            if self.server_cpus:
                lines.append(f'    cpuset: "{self.server_cpus}"')
        if self.loadgen_cpus:
            for tool in ("loadgen", GENERATOR):
                lines += [f"  {tool}:", f'    cpuset: "{self.loadgen_cpus}"']
        self.override.write_text("\n".join(lines) + "\n")
        try:
            self.down()  # leftovers of an interrupted run
        except BaseException:  # no with block to leave: the file goes now
            self.override.unlink()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.connected:
            with contextlib.suppress(APIError):  # gone meanwhile: nothing to take off
                engine().networks.get(self.network).disconnect(name)
        self.down()
        self.override.unlink(missing_ok=True)

    def down(self) -> None:
        """Remove the stack; the load generators by name (``down`` leaves ``run -d`` ones)."""
        for name in (self.loadgen_container, self.generator_container):
            with speaking(f"removing {name}"), contextlib.suppress(NotFound):
                engine().containers.get(name).remove(force=True)
        self.compose("down", "--remove-orphans", timeout=120, check=False)

    def build(self, variants: Sequence[str], ruler: bool = True, generator: bool = False) -> None:
        print("bench: building the images", flush=True)
        run(
            [sys.executable, str(REPO / "tools" / "wheels"), "fetch", "loadgen", "server"],
            timeout=300,
        )
        services = [f"server-{v}" for v in variants] + ([RULER] if ruler else [])
        services += [GENERATOR] if generator else []
        self.compose("build", "loadgen", *services, timeout=1800)

    def start_loadgen(self) -> None:
        """One long-lived loadgen container; each run is an ``exec`` into it (fast)."""
        self.compose(
            *("run", "-d", "--no-deps", "--name", self.loadgen_container),
            *("--entrypoint", "sleep", "loadgen", "10800"),
        )
        networks = container(self.loadgen_container).attrs["NetworkSettings"]["Networks"]
        self.network = next(iter(networks))

    def loadgen(self, *args: str, stderr: bool = False) -> Exec:
        """``python3 -m echolab_loadgen args`` in the loadgen container (``stderr``: see Exec)."""
        argv = ["python3", "-m", "echolab_loadgen", *args]
        return Exec(self.loadgen_container, argv, stderr=stderr)

    def start_generator(self) -> None:
        """The C load generator's long-lived container, pinned like loadgen; each run is an
        ``exec`` of ``echo_load`` into it, so its cgroup counts the generator alone."""
        self.compose(
            *("run", "-d", "--no-deps", "--name", self.generator_container),
            *("--entrypoint", "sleep", GENERATOR, "10800"),
        )

    def generator(self, *args: str) -> Exec:
        """``echo_load args`` in the C load generator's container."""
        return Exec(self.generator_container, ["echo_load", *args])

    def start_servers(self, variants: Sequence[str]) -> dict[str, str]:
        """Every variant's server at once (idle ones cost nothing), so runs can interleave.

        With published ports the host asks each server's /health, which counts no message (the
        tutorial's totals then start at zero); otherwise loadgen proves it echoes a byte.
        """
        self.compose("up", "-d", *(f"server-{v}" for v in variants), timeout=300)
        for v in variants:
            if self.publish:
                self.wait_health(f"server-{v}")
            else:
                self.wait_echo(f"server-{v}", 12345)
        return {v: self.compose("ps", "-q", f"server-{v}").strip() for v in variants}

    def address(self, service: str, port: int) -> tuple[str, int]:
        """(host, port) where the host reaches a published service port."""
        host, _, number = self.compose("port", service, str(port)).strip().rpartition(":")
        return host, int(number)

    def wait_health(self, service: str, deadline: float = 60.0) -> None:
        """Return once the service's stats port answers /health with 200 (from the host)."""
        host, port = self.address(service, 8080)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        until(healthy, f"{service} healthy after its start", deadline, interval=0.2)

    def wait_echo(self, host: str, port: int, deadline: float = 60.0) -> None:
        """Return once ``host:port`` echoes a byte back (from the loadgen container)."""
        probe = ("--target", host, "--port", str(port), "--idle", "1", "--timeout", "2", "--json")

        def echoes() -> bool:
            out = self.loadgen(*probe).output(API_TIMEOUT_S).strip().splitlines()
            return bool(out) and json.loads(out[-1]).get("idle_open") == 1

        until(echoes, f"{host}:{port} echoing after its start", deadline, interval=0.2)

    def attach(self, host: str) -> str | None:
        """A bring-your-own server's container joins the bench network; None if not a container.

        Already on it is fine; a container is only taken off again if the bench put it there.
        """
        try:
            container(host)
        except DockerError:
            return None
        with contextlib.suppress(APIError):  # already on it
            engine().networks.get(self.network).connect(host)
            self.connected.append(host)
        return host

    def cpuset_of(self, name: str) -> str:
        return str(container(name).attrs["HostConfig"]["CpusetCpus"])

    def start_ruler(self) -> str:
        """The C ruler (compose.yaml's ``ruler``), pinned like the servers; its container."""
        self.compose("up", "-d", "--no-deps", RULER, timeout=300)
        self.wait_echo(RULER, 12345)
        return self.compose("ps", "-q", RULER).strip()
