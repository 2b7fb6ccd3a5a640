"""The grader's reading of a class folder, and of a server's log lines (no Docker)."""

import hashlib
import os
from pathlib import Path

import pytest
from echolab_grade.checks import log_lines
from echolab_grade.submissions import collect, stage
from echolab_grade.target import whole


def make(root: Path, files: dict[str, str]) -> Path:
    for where, text in files.items():
        (root / where).parent.mkdir(parents=True, exist_ok=True)
        (root / where).write_text(text)
    return root


def by_name(root: Path) -> dict:
    return {s.name: s for s in collect(root)}


def test_files_and_folders_mixed_each_student_named_once(tmp_path: Path) -> None:
    make(tmp_path, {
        "alice/server.py": "a", "bob.py": "b", "ana maria/server.py": "c", "threads.py": "d",
        "dave/server.py": "e", "dave.py": "f", "Dave/x.py": "g", "notes.txt": "",
        ".hidden.py": "", "__MACOSX/alice.py": "", "erin/sub/server.py": "h",
        "erin/sub/helpers.py": "", "erin/__pycache__/server.py": "",
    })  # fmt: skip
    found = by_name(tmp_path)
    assert set(found) == {
        "alice",
        "bob",
        "ana maria",
        "threads",
        "Dave",
        "dave-2",
        "dave-3",
        "erin",
    }
    assert found["ana maria"].file == tmp_path / "ana maria" / "server.py"
    assert found["erin"].file == tmp_path / "erin" / "sub" / "server.py"
    assert all(s.problem is None for s in found.values())


def test_a_folder_with_no_or_too_many_servers_says_so(tmp_path: Path) -> None:
    make(tmp_path, {"frank/a.py": "", "frank/b.py": "", "grace/README.md": ""})
    found = by_name(tmp_path)
    assert found["frank"].problem == (
        "several .py files (a.py, b.py) and not one server.py: which to grade?"
    )
    assert found["grace"].problem == "no .py file in this student's folder"


@pytest.mark.parametrize("where", ["mallory.py", "mallory/server.py", "mallory"])
def test_a_link_leading_out_of_the_class_is_refused(tmp_path: Path, where: str) -> None:
    outside = make(tmp_path / "teacher", {"solution/server.py": "print('the answer')"})
    klass = make(tmp_path / "class", {"alice.py": ""})
    (klass / where).parent.mkdir(parents=True, exist_ok=True)
    target = outside / "solution" / ("" if where == "mallory" else "server.py")
    (klass / where).symlink_to(target)
    mallory = by_name(klass)["mallory"]
    assert mallory.file is None
    assert mallory.problem.startswith("refused: ")
    assert "link leading out of the class folder" in mallory.problem


def test_a_file_that_is_no_server_is_refused(tmp_path: Path) -> None:
    make(tmp_path, {"huge.py": ""})
    with (tmp_path / "huge.py").open("wb") as huge:
        huge.truncate(2 << 20)
    os.mkfifo(tmp_path / "pipe.py")  # reading it would wait forever
    found = by_name(tmp_path)
    assert found["huge"].problem == "refused: huge.py is 2 MiB; a server is a few KiB"
    assert found["pipe"].problem == "refused: pipe.py is not a regular file"


def test_a_link_within_the_class_is_followed(tmp_path: Path) -> None:
    make(tmp_path, {"alice/server.py": "x", "alice/main.py": "y"})
    (tmp_path / "alice" / "main.py").unlink()
    (tmp_path / "alice" / "main.py").symlink_to(tmp_path / "alice" / "server.py")
    assert by_name(tmp_path)["alice"].file == tmp_path / "alice" / "server.py"


def test_what_is_graded_is_a_hashed_copy(tmp_path: Path) -> None:
    make(tmp_path / "class", {"a b.py": "print('hi')\n"})
    (submission,) = collect(tmp_path / "class")
    stage(submission, tmp_path / "staged" / "01")
    assert submission.file == tmp_path / "staged" / "01" / "server.py"
    assert submission.sha256 == hashlib.sha256(b"print('hi')\n").hexdigest()
    (tmp_path / "class" / "a b.py").write_text("changed")
    assert submission.file.read_text() == "print('hi')\n"


class Printed:
    """A target whose server printed ``log``."""

    def __init__(self, log: str) -> None:
        self.log = log

    def stdout_once(self, arrived) -> str:
        return self.log


CONNECTED = "Received new connection from  ('127.0.0.1', 5000)\n"


@pytest.mark.parametrize(
    "received",
    ["Received: b'Hello, world'", "Received: Hello, world", "Received:  Hello, world  "],
)
def test_the_tutorial_lines_and_their_obvious_variants_pass(received: str) -> None:
    log = f"{CONNECTED}{received}\nTotal messages received: 1\n"
    assert log_lines(Printed(log), 1)[0]


def test_a_missing_line_is_named_in_one_line() -> None:
    passed, saw = log_lines(
        Printed(f"{CONNECTED}got Hello, world\nTotal messages received: 1\n"), 1
    )
    assert not passed
    assert saw == (
        "expected a line \"Received: b'Hello, world'\" (or 'Received: Hello, world') on stdout; "
        "its last line: 'Total messages received: 1'"
    )
    assert "\n" not in saw


def test_a_traceback_is_waited_for_until_whole() -> None:
    traceback = [
        "Exception in thread Thread-3 (handle_client):",
        "Traceback (most recent call last):",
        '  File "/student/server.py", line 31, in handle_client',
        "    print('Received:', data.decode())",
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x80",
    ]
    assert not whole([])
    for cut in range(1, len(traceback)):
        assert not whole(traceback[:cut]), traceback[:cut]
    assert whole(traceback)
    assert whole(["Shutting down gracefully..."])
