"""Every lab container keeps a bounded log, whatever the Docker daemon's own defaults (issue 14).

A server prints a line per message, about 1 MB/s under load, and a stock daemon (json-file,
no options) keeps all of it. Bounded here means compose.yaml's own setting is the one in
effect: a daemon that happens to rotate (as this machine's does) must not be what saves a disk.
"""

import contextlib
import uuid

from docker.errors import APIError
from docker.models.containers import Container
from echolab_host import engine

from .lab import Lab, compose_config, found


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
        name: spec.get("logging", {}) for name, spec in compose_config("tools")["services"].items()
    }


def inspect(*containers: Container) -> dict[str, dict]:
    """Service name -> the LogConfig Docker applied to that service's container."""
    return {
        c.labels["com.docker.compose.service"]: c.attrs["HostConfig"]["LogConfig"]
        for c in containers
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
    label = f"com.docker.compose.project={lab.compose.project}"
    running = engine().containers.list(filters={"label": label})
    applied, services = inspect(*running), declared()
    assert {name for name in services if name.startswith("server-")} <= applied.keys()
    assert_in_effect(applied, services)


def test_a_tool_run_has_the_declared_log_limits(lab: Lab) -> None:
    name = f"echolab-logs-{uuid.uuid4().hex[:8]}"
    with lab.start(
        "loadgen", "--target", "server-poll", "--idle", "1", "--hold", "600", name=name
    ) as tool:
        try:
            lab.wait_for(lambda: found(name), f"the tool container {name}")
            applied = inspect(engine().containers.get(name))
        finally:
            with contextlib.suppress(APIError):
                engine().containers.get(name).kill()
            tool.communicate(timeout=60)
    assert applied.keys() == {"loadgen"}
    assert_in_effect(applied, declared())
