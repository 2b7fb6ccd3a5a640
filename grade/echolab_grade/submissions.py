"""What a class folder holds: one submission per student, named, hashed and staged for grading.

Two layouts, mixed freely: a folder of files (``alice.py``: the student is the file's stem) and a
folder of folders (``alice/server.py``, as a learning platform exports it: the student is the
folder). Names never collide: a second ``alice`` becomes ``alice-2``. A submission is the student's
own file: a link leading out of the class folder is refused, with the reason in that student's
report, and never graded as theirs. What is graded is a copy taken once (``stage``): its sha256 is
the report's, whatever happens to the original meanwhile.
"""

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

IGNORED = {"__pycache__", "__MACOSX"}  # what archivers and Python leave beside the work
MAX_BYTES = 1 << 20  # the tutorial's server is 3 KiB; a bigger file is not one to copy and run


@dataclass
class Submission:
    """One student's work: ``file`` to grade, or ``problem``, the one line saying why not."""

    name: str
    source: str  # where it came from, as the teacher gave it
    file: Path | None = None
    problem: str | None = None
    sha256: str | None = None


def collect(folder: Path) -> list[Submission]:
    """Every student of a class folder, in name order, each with a name no other has."""
    root = folder.resolve()
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED:
            continue
        if entry.is_dir():
            found.append(from_folder(entry, root))
        elif entry.suffix == ".py":
            found.append(from_file(entry.stem, entry, root))
    return unique(found)


def from_file(name: str, path: Path, root: Path) -> Submission:
    submission = Submission(name, str(path))
    if not path.resolve().is_relative_to(root):
        submission.problem = (
            f"refused: {path.name} is a link leading out of the class folder "
            f"(to {path.resolve()}); only the student's own file is graded"
        )
    elif not path.is_file():
        submission.problem = f"refused: {path.name} is not a regular file"
    elif (size := path.stat().st_size) > MAX_BYTES:
        submission.problem = f"refused: {path.name} is {size >> 20} MiB; a server is a few KiB"
    else:
        submission.file = path
    return submission


def from_folder(folder: Path, root: Path) -> Submission:
    """A student's folder: its one .py file, or its server.py among several (at any depth)."""
    if not folder.resolve().is_relative_to(root):
        return from_file(folder.name, folder, root)  # the folder itself is a link out: refused
    files = sorted(
        Path(top) / name
        for top, dirs, names in os.walk(folder)  # links to folders are not followed
        if not set(Path(top).relative_to(folder).parts) & IGNORED
        for name in names
        if name.endswith(".py") and not name.startswith(".")
    )
    servers = [path for path in files if path.name == "server.py"]
    if len(files) == 1 or len(servers) == 1:
        return from_file(folder.name, (servers or files)[0], root)
    submission = Submission(folder.name, str(folder))
    if not files:
        submission.problem = "no .py file in this student's folder"
    else:
        names = ", ".join(str(path.relative_to(folder)) for path in files)
        submission.problem = f"several .py files ({names}) and not one server.py: which to grade?"
    return submission


def unique(submissions: list[Submission]) -> list[Submission]:
    """Names as given, a suffix for the second and later of a name (``alice-2``)."""
    taken: set[str] = set()
    for submission in submissions:
        name, n = submission.name, 1
        while name.casefold() in taken:  # two reports differing only in case: one file on macOS
            n += 1
            name = f"{submission.name}-{n}"
        submission.name = name
        taken.add(name.casefold())
    return submissions


def stage(submission: Submission, into: Path) -> None:
    """Copy the file to grade into a folder of its own (``into``/server.py) and hash that copy."""
    if submission.file is None:
        return
    into.mkdir(parents=True)
    copy = into / "server.py"
    try:
        shutil.copyfile(submission.file, copy)
    except OSError as exc:
        submission.problem = f"could not read {submission.file.name}: {exc.strerror}"
        submission.file = None
        return
    copy.chmod(0o644)  # the server runs as another user, who must read it
    into.chmod(0o755)
    submission.sha256 = hashlib.sha256(copy.read_bytes()).hexdigest()
    submission.file = copy
