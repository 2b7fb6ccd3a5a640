"""The set-up path a bare machine takes: a missing host package is installed, or named.

tools/ensure-package runs with a PATH of stand-ins only: an ``apt-get`` that records its
arguments (and "installs" the command), an ``id`` that says who we are, and the few real
programs the script uses. Nothing is installed on or removed from the test machine.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ENSURE_PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "ensure-package"
REAL_TOOLS = ("mktemp", "rm", "tail")


def stand_in(path: Path, script: str) -> None:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory with the real tools the script needs and no debootstrap."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in REAL_TOOLS:
        (directory / tool).symlink_to(shutil.which(tool))
    return directory


def as_user(bin_dir: Path, uid: int) -> None:
    stand_in(bin_dir / "id", f'[ "$1" = -u ] && echo {uid}\n')


def with_apt_get(bin_dir: Path, record: Path) -> None:
    """An apt-get that appends its arguments to ``record`` and, on install, adds the command."""
    stand_in(
        bin_dir / "apt-get",
        f'echo "$*" >> {record}\n'
        f'case "$*" in *install*) printf "#!/bin/sh\\n" > {bin_dir}/debootstrap;'
        f" {shutil.which('chmod')} +x {bin_dir}/debootstrap;; esac\n",
    )


def ensure_debootstrap(bin_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("bash"), str(ENSURE_PACKAGE), "debootstrap", "debootstrap"],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_root_with_apt_get_installs_the_missing_package_and_says_so(
    bin_dir: Path, tmp_path: Path
) -> None:
    record = tmp_path / "apt-get.calls"
    as_user(bin_dir, 0)
    with_apt_get(bin_dir, record)
    result = ensure_debootstrap(bin_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "echolab: installing debootstrap (for debootstrap) with apt-get"
    ]
    calls = record.read_text().splitlines()
    assert calls[0] == "update -q"
    assert calls[1].startswith("install -y") and calls[1].endswith(" debootstrap")


def test_a_present_command_installs_nothing(bin_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "apt-get.calls"
    as_user(bin_dir, 0)
    with_apt_get(bin_dir, record)
    stand_in(bin_dir / "debootstrap", "")
    result = ensure_debootstrap(bin_dir)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not record.exists()


def test_not_root_names_the_exact_command_in_one_line(bin_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "apt-get.calls"
    as_user(bin_dir, 1000)
    with_apt_get(bin_dir, record)
    result = ensure_debootstrap(bin_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "echolab: debootstrap missing: run "
        "'sudo sh -c \"apt-get update && apt-get install -y debootstrap\"' and retry"
    ]
    assert not record.exists()


def test_no_apt_get_says_what_to_install(bin_dir: Path) -> None:
    as_user(bin_dir, 0)
    result = ensure_debootstrap(bin_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "echolab: debootstrap missing and no apt-get here: install debootstrap and retry"
    ]


def test_a_failing_install_is_one_line_and_non_zero(bin_dir: Path) -> None:
    as_user(bin_dir, 0)
    stand_in(bin_dir / "apt-get", 'echo "E: Unable to locate package $3" >&2; exit 100\n')
    result = ensure_debootstrap(bin_dir)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "apt-get install debootstrap failed" in result.stderr
