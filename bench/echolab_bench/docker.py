"""Docker control: the bench's own compose project, pinned containers and their cgroup counters.

The stack is the repository's compose.yaml with two changes made by an override file: no
host ports (loadgen reaches each server over the compose network, as the lab's containers do)
and a ``cpuset`` for every server and for loadgen, disjoint, so the two never share a core.
``make pictures`` (pictures/echolab_pictures) drives the same stack, with ephemeral host ports
when the host itself must time a client (``publish``).
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULER = "ruler"  # compose.yaml's service (profile "ruler") of the C server, bench/c/echo_epoll.c
GENERATOR = "loadgen-c"  # the C load generator's service (profile "ruler"), bench/c/echo_load.c
PROFILES = ("--profile", "tools", "--profile", RULER)


class BenchError(Exception):
    """Something the bench cannot go on without; reported as one line."""


def run(argv, timeout=120, check=True, env=None):
    """A command's stdout.  A failure becomes one line (the command's last words)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise BenchError(f"{argv[0]} not found: the bench needs Docker with Compose v2") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {shlex.join(argv)}") from None
    if check and done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise BenchError(f"{shlex.join(argv[:4])} ... failed: {last[0]}")
    return done.stdout


def succeeds(argv):
    return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0


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

    def __init__(self, container):
        self.container = container
        self.paths = self._host_paths()

    def _host_paths(self):
        pid = run(["docker", "inspect", "--format", "{{.State.Pid}}", self.container]).strip()
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

    def _values(self):
        """{"file:key" or "file": integer} for every counter file."""
        if self.paths is not None:
            text = []
            for path in self.paths:
                text += [f"{path}:{line}" for line in Path(path).read_text().splitlines()]
        else:
            files = [f"/sys/fs/cgroup/{c}/{n}" for c, names in V1_FILES.items() for n in names]
            files += [f"/sys/fs/cgroup/{name}" for name in V2_FILES]
            out = run(["docker", "exec", self.container, "grep", "-Hs", ".", *files], check=False)
            text = out.splitlines()
        values = {}
        for line in text:
            path, _, rest = line.partition(":")
            name, _, number = rest.rpartition(" ")
            values[f"{Path(path).name}:{name}".rstrip(":")] = int(number)
        return values

    def read(self):
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

    def cpu_s(self):
        return self.read()[0]

    def memory_bytes(self):
        return self.read()[1]


def cpu_list(cpuset):
    """The CPUs a cpuset string ("0", "0-1", "0,2-3") names; ValueError if it is not one."""
    out = []
    for part in cpuset.split(","):
        low, _, high = part.partition("-")
        out += range(int(low), int(high or low) + 1)
    return out


def cores(cpuset):
    """How many CPUs a container pinned to ``cpuset`` may use (None or "": the host's)."""
    return len(cpu_list(cpuset)) if cpuset else os.cpu_count()


class Stack:
    """The bench's own compose project: compose.yaml without host ports, with cpusets.

    ``work_delay`` None leaves each variant its own default (the tutorial's 0.1 s where it has
    it); ``quiet`` drops the per-message log lines; ``publish`` gives every server ephemeral
    ports on 127.0.0.1 (``address()`` says which), as the integration tests do.
    """

    def __init__(self, project, work_delay, server_cpus, loadgen_cpus, quiet=True, publish=False):
        self.project = project
        self.publish = publish
        self.server_cpus, self.loadgen_cpus = server_cpus, loadgen_cpus
        self.loadgen_cores = cores(loadgen_cpus)
        self.loadgen_container = f"{project}-loadgen"
        self.loadgen = (
            *("docker", "exec", self.loadgen_container),
            *("python3", "-m", "echolab_loadgen"),
        )
        self.generator_container = f"{project}-{GENERATOR}"
        self.generator = ("docker", "exec", self.generator_container, "echo_load")
        self.env = os.environ | {
            "ECHOLAB_QUIET": "1" if quiet else "0",
            "ECHOLAB_WORK_DELAY": "" if work_delay is None else f"{work_delay:g}",
        }
        self.tag = self.env.get("ECHOLAB_TAG") or "latest"
        self.override = None
        self.connected = []
        self.network = None

    def compose(self, *args, timeout=300, check=True):
        files = ["-f", str(REPO / "compose.yaml"), "-f", self.override.name]
        cmd = ["docker", "compose", "-p", self.project, "--project-directory", str(REPO), *files]
        return run([*cmd, *args], timeout=timeout, check=check, env=self.env)

    def services(self):
        """The ``server-*`` services compose.yaml defines."""
        out = run(
            ["docker", "compose", "-f", str(REPO / "compose.yaml"), "config", "--services"],
            env=self.env,
        )
        return [s for s in out.split() if s.startswith("server-")]

    def __enter__(self):
        self.override = tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="echolab-bench-")
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
        self.override.write("\n".join(lines) + "\n")
        self.override.flush()
        self.down()  # leftovers of an interrupted run
        return self

    def __exit__(self, *exc):
        for container in self.connected:
            run(["docker", "network", "disconnect", self.network, container], check=False)
        self.down()
        self.override.close()

    def down(self):
        """Remove the stack; the load generators by name (``down`` leaves ``run -d`` containers)."""
        run(["docker", "rm", "-f", self.loadgen_container, self.generator_container], check=False)
        self.compose(*PROFILES, "down", "--remove-orphans", timeout=120, check=False)

    def build(self, variants, ruler=True, generator=False):
        print("bench: building the images", flush=True)
        run(
            [sys.executable, str(REPO / "tools" / "wheels"), "fetch", "loadgen", "server"],
            timeout=300,
        )
        services = [f"server-{v}" for v in variants] + ([RULER] if ruler else [])
        services += [GENERATOR] if generator else []
        self.compose(*PROFILES, "build", "loadgen", *services, timeout=1800)

    def start_loadgen(self):
        """One long-lived loadgen container; each run is a ``docker exec`` into it (fast)."""
        self.compose(
            *("--profile", "tools", "run", "-d", "--no-deps", "--name", self.loadgen_container),
            *("--entrypoint", "sleep", "loadgen", "10800"),
        )
        networks = run(
            [
                "docker",
                "inspect",
                "--format",
                "{{json .NetworkSettings.Networks}}",
                self.loadgen_container,
            ]
        )
        self.network = next(iter(json.loads(networks)))

    def start_generator(self):
        """The C load generator's long-lived container, pinned like loadgen; each run is a
        ``docker exec`` of ``echo_load`` into it, so its cgroup counts the generator alone."""
        self.compose(
            *(*PROFILES, "run", "-d", "--no-deps", "--name", self.generator_container),
            *("--entrypoint", "sleep", GENERATOR, "10800"),
        )

    def start_servers(self, variants):
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

    def address(self, service, port):
        """(host, port) where the host reaches a published service port."""
        host, _, number = self.compose("port", service, str(port)).strip().rpartition(":")
        return host, int(number)

    def wait_health(self, service, deadline=60.0):
        """Return once the service's stats port answers /health with 200 (from the host)."""
        host, port = self.address(service, 8080)
        end = time.monotonic() + deadline
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > end:
                raise BenchError(f"{service} was not healthy within {deadline:.0f} s of its start")
            time.sleep(0.2)

    def wait_echo(self, host, port, deadline=60.0):
        """Return once ``host:port`` echoes a byte back (from the loadgen container)."""
        probe = [*self.loadgen, "--target", host, "--port", str(port), "--idle", "1"]
        end = time.monotonic() + deadline
        while True:
            out = run([*probe, "--timeout", "2", "--json"], check=False).strip().splitlines()
            if out and json.loads(out[-1]).get("idle_open") == 1:
                return
            if time.monotonic() > end:
                raise BenchError(f"{host}:{port} did not echo within {deadline:.0f} s of its start")
            time.sleep(0.2)

    def attach(self, host):
        """A bring-your-own server's container joins the bench network; None if not a container.

        Already on it is fine; a container is only taken off again if the bench put it there.
        """
        if not succeeds(["docker", "inspect", host]):
            return None
        if succeeds(["docker", "network", "connect", self.network, host]):
            self.connected.append(host)
        return host

    def cpuset_of(self, container):
        query = ["docker", "inspect", "--format", "{{.HostConfig.CpusetCpus}}", container]
        return run(query).strip()

    def start_ruler(self):
        """The C ruler (compose.yaml's ``ruler``), pinned like the servers; its container."""
        self.compose(*PROFILES, "up", "-d", "--no-deps", RULER, timeout=300)
        self.wait_echo(RULER, 12345)
        return self.compose(*PROFILES, "ps", "-q", RULER).strip()
