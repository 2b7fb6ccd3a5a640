"""The teacher's page and the exercise sheet name the grader's checks as the grader runs them."""

import re
from pathlib import Path

from echolab_grade.checks import CHECKS, LESSON_PAGES, LOG_LINES

ROOT = Path(__file__).resolve().parents[2]
SHEET = (ROOT / "exercises" / "README.md").read_text()
TEACHING = (ROOT / "docs" / "teaching.md").read_text()
IDS = [check.id for check in CHECKS]


def test_the_teachers_table_has_every_check_in_the_graders_order() -> None:
    section = TEACHING.split("## What each check means")[1].split("\n## ")[0]
    assert re.findall(r"^\| `(\w+)` \|", section, re.M) == IDS


def test_each_checks_lesson_is_a_heading_on_the_page_the_grader_names() -> None:
    for check in CHECKS:
        page = (ROOT / LESSON_PAGES[check.lesson]).read_text()
        assert check.lesson in re.findall(r"^#+ (.+)$", page, re.M), (check.id, check.lesson)


def test_each_exercise_is_confirmed_by_a_real_check() -> None:
    confirmed = re.findall(r"Confirmed by: (.+?)(?:\n\n|$)", SHEET, re.S)
    assert len(confirmed) == 9
    for line in confirmed:
        named = re.findall(r"\*\*`(\w+)`", line)
        assert named and set(named) <= set(IDS), line


def test_every_find_the_bug_server_is_on_the_sheet() -> None:
    for server in (ROOT / "tests" / "grade" / "servers").glob("*.py"):
        assert f"make grade FILE=tests/grade/servers/{server.name}`" in SHEET, server.name


def test_the_starter_prints_the_lines_the_grader_reads() -> None:
    """Each print of the starter, as the tutorial's run shows it, matches the log check."""
    shown = {
        "Received new connection from  ('127.0.0.1', 49743)",
        "Received: b'Hello, world'",
        "Total messages received: 1",
    }
    starter = (ROOT / "exercises" / "server.py").read_text()
    for line in shown:
        assert line in starter  # the comment that tells the student
    for _, pattern in LOG_LINES:
        assert any(pattern.search(line) for line in shown)
