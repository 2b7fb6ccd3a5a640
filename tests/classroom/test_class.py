"""A class of 30 that does not play fair, graded by one command (make test-class).

Fifteen students hand in the teacher's reference solution, in every layout a class folder has
(a folder each, a file each, a space in a name, two students called dave, a file named like a lab
variant, a server.py beside a helper module, one folder deeper). Fifteen hand in something
hostile (tests/grade/hostile/, and a link to the reference solution kept outside the class folder).
Each correct one must get the report the reference gets when graded alone; every one must get a
report, in bounded time; nothing the run started may be left.
"""

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from echolab_grade.checks import CHECKS
from echolab_grade.grade import READY_WITHIN
from echolab_host import engine

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "grade"
REFERENCE = FIXTURES / "reference.py"
HOSTILE = sorted((FIXTURES / "hostile").glob("*.py"))
# Where each correct student's file goes in the class folder, and the name the report must carry.
CORRECT = {
    "alice/server.py": "alice",
    "bob/server.py": "bob",
    "carol/server.py": "carol",
    "dave/server.py": "dave",
    "dave.py": "dave-2",
    "erin/submission/server.py": "erin",
    "frank/server.py": "frank",
    "grace/server.py": "grace",
    "heidi/server.py": "heidi",
    "ivan/server.py": "ivan",
    "judy/server.py": "judy",
    "ana maria/server.py": "ana maria",
    "threads.py": "threads",
    "server.py": "server",
    "kim.py": "kim",
}
# A server's grading ends within this: it starts (or is restarted) once per check at most, and
# every check has its deadline.
BOUND = READY_WITHIN * (1 + len(CHECKS)) + sum(check.deadline for check in CHECKS)


def grade(*args: str, timeout: float) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "echolab_grade", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(done.stdout, done.stderr)
    return done


def project(done: subprocess.CompletedProcess) -> str:
    return re.search(r"compose project (echolab-grade-\w+)", done.stdout)[1]


def left_running(name: str) -> list[str]:
    label = f"com.docker.compose.project={name}"
    return [c.name for c in engine().containers.list(all=True, filters={"label": label})]


def verdicts(report: dict) -> dict[str, bool]:
    return {check["id"]: check["passed"] for check in report["checks"]}


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict:
    results = tmp_path_factory.mktemp("alone")
    done = grade(str(REFERENCE), "--results", str(results), timeout=BOUND)
    assert left_running(project(done)) == []
    return json.loads((results / "reference.json").read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The class folder, graded at the default --jobs by make grade's command."""
    klass, results = tmp_path_factory.mktemp("class"), tmp_path_factory.mktemp("results")
    for where in CORRECT:
        (klass / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE, klass / where)
    (klass / "erin" / "submission" / "helpers.py").write_text("GREETING = 'Hello'\n")
    for n, path in enumerate(HOSTILE):  # half of them in a folder, half as a file
        where = klass / path.stem / "server.py" if n % 2 else klass / path.name
        where.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, where)
    (klass / "mallory.py").symlink_to(REFERENCE)  # the solution, kept outside the class folder
    assert len(CORRECT) == 15 and len(HOSTILE) + 1 == 15
    done = grade("--dir", str(klass), "--results", str(results), timeout=30 * BOUND)
    reports = {path.stem: json.loads(path.read_text()) for path in results.glob("*.json")}
    return {"run": done, "reports": reports, "results": results}


def test_a_correct_submission_scores_as_when_graded_alone(graded: dict, alone: dict) -> None:
    assert alone["passed"] == alone["total"], json.dumps(alone, indent=1)
    for name in CORRECT.values():
        report = graded["reports"][name]
        assert verdicts(report) == verdicts(alone), json.dumps(report, indent=1)
        assert report["sha256"] == graded["reports"]["alice"]["sha256"]


def test_every_submission_gets_a_report_in_bounded_time(graded: dict) -> None:
    names = set(CORRECT.values()) | {path.stem for path in HOSTILE} | {"mallory"}
    assert set(graded["reports"]) == names
    for report in graded["reports"].values():
        assert report["seconds"] <= BOUND, report["name"]
        assert [check["id"] for check in report["checks"]] == [check.id for check in CHECKS]
    with (graded["results"] / "gradebook.csv").open() as book:
        rows = list(csv.DictReader(book))
    assert {row["name"] for row in rows} == names
    progress = re.findall(r"^\[\s*(\d+)/30\] ", graded["run"].stdout, re.M)
    assert sorted(map(int, progress)) == list(range(1, 31))


def test_nothing_is_left_running(graded: dict) -> None:
    assert left_running(project(graded["run"])) == []


def test_a_link_out_of_the_class_folder_is_refused(graded: dict) -> None:
    report = graded["reports"]["mallory"]
    assert report["passed"] == 0 and report["sha256"] is None
    assert report["problem"].startswith("refused: mallory.py is a link leading out")


def test_hostile_submissions_hurt_only_themselves(graded: dict) -> None:
    reports = graded["reports"]
    assert "SyntaxError" in reports["syntax_error"]["problem"]
    assert "line 4" in reports["syntax_error"]["problem"]
    assert reports["syntax_error"]["printed"][-1].startswith("SyntaxError")
    assert "did not start" in reports["never_binds"]["problem"]
    assert "exited with code 0" in reports["exits_at_once"]["problem"]
    assert "out of memory" in json.dumps(reports["eats_memory"])
