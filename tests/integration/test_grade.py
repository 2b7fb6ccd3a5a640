"""The grader (make grade) against servers written to fail one check each, and every lab variant.

One grading run for all of them (servers graded at once, as ``make grade DIR=...`` does); each
test reads its server's JSON report. A lab variant fails exactly the checks its lesson says it
fails; a test server fails the check it was written for, with the line that explains why.
"""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from echolab_grade.checks import CHECKS as GRADER_CHECKS
from echolab_grade.checks import LESSON_PAGES
from echolab_server.variants import registry

from .lab import ROOT, VARIANTS, Lab

SERVERS = Path(__file__).resolve().parents[1] / "grade" / "servers"
CHECKS = [check.id for check in GRADER_CHECKS]


def lesson_failures(server: type) -> set[str]:
    """What a variant's lesson says it fails, from the traits its class carries: a racy
    counter loses updates; one connection at a time makes the second client and everyone
    behind a never-reading client wait; a fixed number of workers is used up by idle ones."""
    fails = set() if server.counts_exactly else {"count"}
    if server.serves_at_once == 1:
        fails |= {"second", "noread"}
    if server.serves_at_once is not None:
        fails.add("idle")
    return fails


# What each test server was written to make the grader catch.
SERVER_FAILS = {
    "racy": {"count"},
    "ignores_sigterm": {"sigterm"},
    "blocks_on_never_reader": {"noread"},
    # It dies on the reset, and again when the never-reading client leaves (its close is a reset).
    "select_dies_on_reset": {"reset", "noread"},
    # The echo never goes out, so the checks that need one are not run; it logs and stops fine.
    "poll_and": set(CHECKS) - {"log", "sigterm"},
    "does_not_start": set(CHECKS),
    # Its handler decodes what it receives: byte 0x80 ends the thread and closes the connection.
    "decodes_bytes": {"bytes", "halfclose"},
}
# The tutorial's select loop closes a socket on EOF with echoes still queued, so the tail of a
# half-closed client's echo (nc -N, or the half-close check) is lost when the FIN arrives before
# the loop has written it: a real bug of that loop, whose showing depends on timing.
MAY_FAIL = {"select_dies_on_reset": {"halfclose", "nc"}}


@pytest.fixture(scope="module")
def graded(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``make grade``'s command on the test servers' folder and every variant, in one run."""
    results = tmp_path_factory.mktemp("grade-results")
    variants = [arg for name in VARIANTS for arg in ("--variant", name)]
    done = subprocess.run(
        [sys.executable, "-m", "echolab_grade", "--dir", str(SERVERS), *variants,
         "--results", str(results), "--jobs", "6"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )  # fmt: skip
    print(done.stdout)
    reports = {path.stem: json.loads(path.read_text()) for path in results.glob("*.json")}
    return {"run": done, "reports": reports}


def failed(report: dict) -> set[str]:
    return {check["id"] for check in report["checks"] if not check["passed"]}


def saw(report: dict, check: str) -> str:
    return next(c["saw"] for c in report["checks"] if c["id"] == check)


def test_one_table_one_json_per_server(graded: dict) -> None:
    names = {path.stem for path in SERVERS.glob("*.py")} | set(VARIANTS)
    assert set(graded["reports"]) == names
    assert graded["run"].returncode == 1, graded["run"].stderr  # some checks fail, by design
    rows = graded["run"].stdout.splitlines()
    assert ["server", "score", *CHECKS] in [row.split() for row in rows]
    for name in names:
        assert any(re.match(rf"{name}\s+\d+/{len(CHECKS)}\s", row) for row in rows), name


def test_every_check_names_a_lesson_on_its_page(graded: dict) -> None:
    for report in graded["reports"].values():
        assert [c["id"] for c in report["checks"]] == list(CHECKS)
        for check in report["checks"]:
            page = (ROOT / LESSON_PAGES[check["lesson"]]).read_text()
            assert check["lesson"] in re.findall(r"^#+ (.+)$", page, re.M), check["lesson"]
            assert check["saw"], check


@pytest.mark.parametrize("variant", VARIANTS)
def test_lab_variant_fails_only_what_its_lesson_says(graded: dict, variant: str) -> None:
    report = graded["reports"][variant]
    assert failed(report) == lesson_failures(registry()[variant]), json.dumps(report, indent=1)


@pytest.mark.parametrize("server", sorted(SERVER_FAILS))
def test_grader_catches_what_each_server_gets_wrong(graded: dict, server: str) -> None:
    report = graded["reports"][server]
    caught = failed(report) - MAY_FAIL.get(server, set())
    assert caught == SERVER_FAILS[server], json.dumps(report, indent=1)


def test_lost_updates_counted_from_the_servers_own_lines(graded: dict) -> None:
    for name in ("racy", "threads"):
        match = re.search(
            r"the server counted (\d+): (\d+) lost updates", saw(graded["reports"][name], "count")
        )
        assert match, saw(graded["reports"][name], "count")
        assert int(match[1]) + int(match[2]) == 200 and int(match[2]) > 0


def test_a_server_that_dies_is_restarted_and_grading_goes_on(graded: dict) -> None:
    report = graded["reports"]["select_dies_on_reset"]
    line = saw(report, "reset")
    assert "the server died during this check" in line and "ConnectionResetError" in line
    assert "restarted for the next check" in line
    assert "idle connections made; a client echoed" in saw(report, "idle")  # after the restart


def test_clear_lines_for_no_start_no_echo_and_no_stop(graded: dict) -> None:
    reports = graded["reports"]
    for check in CHECKS:
        assert "did not start" in saw(reports["does_not_start"], check)
        assert "SOCK_STREEM" in saw(reports["does_not_start"], check)
        assert "(server.py, line 8)" in saw(reports["does_not_start"], check)
    assert reports["does_not_start"]["printed"][0] == "Traceback (most recent call last):"
    assert "0 of 12 bytes" in saw(reports["poll_and"], "echo")
    assert "not run: the tutorial's message got no echo" in saw(reports["poll_and"], "idle")
    assert "still running" in saw(reports["ignores_sigterm"], "sigterm")


def test_a_failed_check_shows_the_traceback_that_explains_it(graded: dict) -> None:
    """The server stays up, but the handler's thread died: its traceback is beside the check."""
    report = graded["reports"]["decodes_bytes"]
    for check in report["checks"]:
        if check["id"] in ("bytes", "halfclose"):
            assert check["printed"][0].startswith("Exception in thread"), check
            assert check["printed"][-1].startswith("UnicodeDecodeError: 'utf-8' codec"), check
    assert "printed" not in next(c for c in report["checks"] if c["id"] == "echo")


def test_each_report_says_what_was_graded_when_and_by_which_lab(graded: dict) -> None:
    report = graded["reports"]["racy"]
    digest = hashlib.sha256((SERVERS / "racy.py").read_bytes()).hexdigest()
    assert report["sha256"] == digest
    assert report["source"] == str(SERVERS / "racy.py")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", report["graded_at"])
    assert report["lab_version"].startswith("0.")
    assert graded["reports"]["lock"]["source"] == "lab variant lock"
