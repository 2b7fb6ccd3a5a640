"""Where the figures came from: the machine, the engine, the images and how the run was pinned.

Throughput means little without these, so they head the JSON and the Markdown.
"""

import os
import platform

from echolab_host import engine, exec_output

from .docker import REPO, Stack
from .results import MachineFacts

# What each image's Python and its one third-party package report (run inside a container).
VERSION_PROBE = (
    "import importlib.metadata as m, platform, sys\n"
    "def v(name):\n"
    "    try:\n"
    "        return m.version(name)\n"
    "    except m.PackageNotFoundError:\n"
    "        return None\n"
    "print(platform.python_version(), v(sys.argv[1]))\n"
)


def cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return names[0] if names else platform.processor()


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: was anything else running when the bench began?"""
    return [float(x) for x in os.getloadavg()]


def base_image() -> str:
    dotenv = REPO / ".env"
    lines = dotenv.read_text().splitlines() if dotenv.exists() else []
    chosen = [line.removeprefix("BASE_IMAGE=") for line in lines if line.startswith("BASE_IMAGE=")]
    return os.environ.get("BASE_IMAGE") or (chosen or ["python:3.12-slim"])[-1]


def image_versions(container: str, package: str) -> tuple[str, str | None]:
    """(Python version, ``package``'s version or None) inside a running container."""
    out = exec_output(container, ["python3", "-c", VERSION_PROBE, package]).split()
    return out[0], None if out[1] == "None" else out[1]


def facts(
    stack: Stack,
    server_container: str,
    pinning: tuple[str | None, str | None],
    load_at_start: list[float],
) -> MachineFacts:
    """Everything the reader needs to judge the figures; needs loadgen and one server running."""
    server_python, uvloop = image_versions(server_container, "uvloop")
    loadgen_python, ddsketch = image_versions(stack.loadgen_container, "ddsketch")
    docker = engine().info()
    return MachineFacts(
        cpu=cpu_model(),
        cores=os.cpu_count(),
        kernel=platform.release(),
        docker=docker["ServerVersion"],
        storage_driver=docker["Driver"],
        base_image=base_image(),
        server_python=server_python,
        loadgen_python=loadgen_python,
        uvloop=uvloop,
        ddsketch=ddsketch,
        server_cpus=pinning[0] or "any",
        loadgen_cpus=pinning[1] or "any",
        load_average_at_start=load_at_start,
    )
