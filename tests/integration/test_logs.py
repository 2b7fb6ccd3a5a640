"""Every lab container keeps a bounded log, whatever the Docker daemon's own defaults (issue 14).

A server prints a line per message, about 1 MB/s under load, and a stock daemon (json-file,
no options) keeps all of it. Bounded here means compose.yaml's own setting is the one in
effect: a daemon that happens to rotate (as this machine's does) must not be what saves a disk.
"""

import json
import os
import subprocess
import uuid

from .lab import Lab, compose_config


def unbounded(log_config: dict) -> str | None:
    """Why a logging setting (compose's, or ``docker inspect``'s LogConfig) lets a log grow
    without limit, or None if it cannot."""
    driver = log_config.get("driver") or log_config.get("Type")
    options = log_config.get("options") or log_config.get("Config") or {}
    if driver is None:
        return "no logging setting, so whatever the daemon's default is"
    if driver == "json-file":
        return None if "max-size" in options else "json-file without max-size"
    if driver in ("local", "none"):  # local rotates even without options (5 files of 20 MB)
        return None
    return f"driver {driver!r}, whose size Docker does not bound"


def declared() -> dict[str, dict]:
    """Each service's logging as compose.yaml declares it, tools included."""
    return {
        name: spec.get("logging", {})
        for name, spec in compose_config("--profile", "tools")["services"].items()
    }


def inspect(*containers: str) -> dict[str, dict]:
    """Service name -> the LogConfig Docker applied to that service's container."""
    answer = subprocess.run(
        ["docker", "inspect", *containers], capture_output=True, text=True, check=True
    )
    return {
        c["Config"]["Labels"]["com.docker.compose.service"]: c["HostConfig"]["LogConfig"]
        for c in json.loads(answer.stdout)
    }


def assert_in_effect(applied: dict[str, dict], services: dict[str, dict]) -> None:
    for service, log_config in applied.items():
        assert unbounded(log_config) is None, f"{service}: {unbounded(log_config)}"
        wanted = services[service]
        assert (log_config["Type"], log_config["Config"]) == (wanted["driver"], wanted["options"])


def test_every_service_declares_a_bounded_log() -> None:
    services = declared()
    problems = {
        name: unbounded(logging) for name, logging in services.items() if unbounded(logging)
    }
    assert not problems


def test_every_running_server_has_the_declared_log_limits(lab: Lab) -> None:
    project = os.environ["COMPOSE_PROJECT_NAME"]
    running = subprocess.run(
        ["docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    applied, services = inspect(*running), declared()
    assert {name for name in services if name.startswith("server-")} <= applied.keys()
    assert_in_effect(applied, services)


def test_a_tool_run_has_the_declared_log_limits(lab: Lab) -> None:
    name = f"echolab-logs-{uuid.uuid4().hex[:8]}"
    with lab.start(
        "loadgen", "--target", "server-poll", "--idle", "1", "--hold", "600", name=name
    ) as tool:
        try:
            lab.wait_for(
                lambda: subprocess.run(["docker", "inspect", name], capture_output=True).returncode
                == 0,
                f"the tool container {name}",
            )
            applied = inspect(name)
        finally:
            subprocess.run(["docker", "kill", name], capture_output=True)
            tool.communicate(timeout=60)
    assert applied.keys() == {"loadgen"}
    assert_in_effect(applied, declared())
