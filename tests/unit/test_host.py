"""echolab_host without an engine: compose's command line, the runner's one-line errors, and
the SDK's errors as one line."""

import os
import stat
import sys
from pathlib import Path

import pytest
from docker.errors import APIError, NotFound
from echolab_host import Compose, ComposeError, ComposeTimeout, DockerError, one_line, run, speaking

FAKE_DOCKER = """#!/bin/sh
echo "args: $*"
echo "cwd: $(pwd)"
echo "variable: $ECHOLAB_VARIABLE"
"""


def test_the_compose_command_names_project_files_and_profiles() -> None:
    compose = Compose("lab-1", ("ports.yaml",), ("tools", "ruler"))
    assert compose.command("up", "-d") == [
        *("docker", "compose", "-p", "lab-1", "-f", "compose.yaml", "-f", "ports.yaml"),
        *("--profile", "tools", "--profile", "ruler", "up", "-d"),
    ]


def test_a_bare_compose_command_leaves_the_choices_to_compose() -> None:
    assert Compose().command("config") == ["docker", "compose", "config"]


def test_compose_runs_in_its_folder_with_its_variables_and_the_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    compose = Compose("p", env={"ECHOLAB_VARIABLE": "from the project"}, root=tmp_path)
    assert compose.run("ps").stdout.splitlines() == [
        "args: compose -p p ps",
        f"cwd: {tmp_path}",
        "variable: from the project",
    ]
    assert (
        "variable: from the call"
        in compose.run("ps", env={"ECHOLAB_VARIABLE": "from the call"}).stdout
    )


def test_a_failing_command_is_one_line_with_its_last_words() -> None:
    program = "import sys; print('first', file=sys.stderr); sys.exit('the last words')"
    with pytest.raises(ComposeError) as failed:
        run([sys.executable, "-c", program])
    assert "\n" not in str(failed.value)
    assert str(failed.value).endswith("failed: the last words")


def test_a_failing_command_without_check_gives_its_result() -> None:
    done = run([sys.executable, "-c", "import sys; sys.exit(3)"], check=False)
    assert done.returncode == 3


def test_a_missing_command_is_one_line() -> None:
    with pytest.raises(ComposeError, match=r"^no-such-docker not found: `make setup`"):
        run(["no-such-docker", "compose", "version"])


def test_a_command_past_its_deadline_is_a_timeout_of_one_line() -> None:
    with pytest.raises(ComposeTimeout, match=r"^no answer in 0.5 s: .* -c 'import time"):
        run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_an_api_error_is_the_engines_last_line_of_explanation() -> None:
    error = APIError("409 Client Error", explanation="first\nthe container is in use")
    assert one_line(error) == "the container is in use"


def test_an_error_without_words_is_named_by_its_type() -> None:
    assert one_line(NotFound("")) == "NotFound"
    assert one_line(RuntimeError("one\ntwo\n")) == "two"


def test_speaking_turns_sdk_errors_into_one_docker_error() -> None:
    expected = r"^container x: No such container: x$"
    with pytest.raises(DockerError, match=expected), speaking("container x"):
        raise NotFound("404 Client Error", explanation="No such container: x")
