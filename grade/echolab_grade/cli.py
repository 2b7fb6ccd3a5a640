"""make grade: FILE=server.py, DIR=class/ or VARIANT=name; a table, one JSON per server, a CSV.

Each report is written as soon as its server is done, with a progress line, so a run stopped
at 29 of 30 keeps 29. Exit codes: 0 every check of every server passed, 1 some check failed
(or a submission was refused), 2 bad arguments.
"""

import argparse
import contextlib
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

from echolab_host import Compose, DockerError
from echolab_server.variants import variant_names

from .checks import CHECKS, LESSON_PAGES
from .grade import grade, not_graded
from .submissions import Submission, collect, from_file, stage, unique
from .target import ROOT, Target

GRADEBOOK = "gradebook.csv"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="echolab_grade", description="Run the lab's checks against echo servers."
    )
    parser.add_argument("files", nargs="*", type=Path, help="a student's server: one Python file")
    parser.add_argument(
        "--dir",
        type=Path,
        help="a class: its *.py files and its folders (one per student, named by the folder)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        choices=variant_names(),
        help="grade a lab variant (from the server image) instead; repeatable",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("grade-results"),
        help=f"folder for one JSON report per server and {GRADEBOOK} (default grade-results)",
    )
    parser.add_argument("--jobs", type=int, default=4, help="servers graded at once (default 4)")
    parser.add_argument(
        "--details", action="store_true", help="every check's lines for every server"
    )
    args = parser.parse_args(argv)
    for path in args.files:
        if not path.is_file():
            parser.error(f"{path}: no such file")
    args.submissions = [from_file(path.stem, path, path.resolve().parent) for path in args.files]
    if args.dir is not None:
        if not args.dir.is_dir():
            parser.error(f"--dir {args.dir}: not a folder")
        found = collect(args.dir)
        if not found:
            parser.error(f"--dir {args.dir}: no .py file and no folder in it")
        args.submissions += found
    args.submissions += [Submission(name, f"lab variant {name}") for name in args.variant]
    unique(args.submissions)
    if not args.submissions:
        parser.error("nothing to grade: give a FILE, --dir DIR or --variant NAME")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    project = f"echolab-grade-{uuid.uuid4().hex[:8]}"
    staging = Path(tempfile.mkdtemp(prefix=f"{project}-"))
    started, total, version = time.monotonic(), len(args.submissions), lab_version()
    print(f"grading {total} servers, {args.jobs} at once (compose project {project})", flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    pool = ThreadPoolExecutor(args.jobs)
    reports: list[dict] = []

    def done(report: dict, submission: Submission) -> None:
        reports.append(describe(report, submission, version))
        write(args.results, reports[-1], reports)
        print(progress(reports[-1], len(reports), total, time.monotonic() - started), flush=True)

    try:
        pending: dict[Future, Submission] = {}
        for number, submission in enumerate(args.submissions, 1):
            stage(submission, staging / f"{number:02d}")
            if submission.problem is not None:  # refused, or not found: reported at once
                done(not_graded(submission.name, submission.problem), submission)
            else:
                pending[pool.submit(run, submission, project, number)] = submission
        for future in as_completed(pending):
            done(future.result(), pending[future])
    finally:  # stopped early (Ctrl-C): what has not started never does, the rest is removed
        pool.shutdown(wait=False, cancel_futures=True)
        Compose(project).run("down", "--remove-orphans", timeout=600, check=False)
        pool.shutdown(wait=True)
        shutil.rmtree(staging, ignore_errors=True)
    reports.sort(key=lambda report: [s.name for s in args.submissions].index(report["name"]))
    if len(reports) > 1:
        print(table(reports))
    if len(reports) == 1 or args.details:
        for report in reports:
            print(details(report))
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    print(f"graded {total} servers in {minutes}m{seconds:02d}s (--jobs {args.jobs})")
    print(f"JSON reports and {GRADEBOOK}: {args.results}/")
    return 0 if all(r["passed"] == r["total"] for r in reports) else 1


def run(submission: Submission, project: str, number: int) -> dict:
    """One submission's report, whatever happens: the grader's own failure is a line in it."""
    if submission.file is None:
        target = Target.variant(submission.name, project, number)
    else:
        target = Target.student(submission.name, submission.file, project, number)
    try:
        return grade(target)
    except (OSError, DockerError) as exc:
        with contextlib.suppress(DockerError):  # no engine to remove it from
            target.remove()
        return not_graded(submission.name, f"the grader could not run it: {exc}")


def describe(report: dict, submission: Submission, version: str) -> dict:
    """What a gradebook needs beside the checks: which file, which bytes, when, by which lab."""
    return {
        "name": report["name"],
        "source": submission.source,
        "sha256": submission.sha256,
        "graded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lab_version": version,
        **{key: value for key, value in report.items() if key != "name"},
    }


def lab_version() -> str:
    """pyproject.toml's version, and the commit the lab runs from when it is a git checkout."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{version}+{commit.stdout.strip()}" if commit.returncode == 0 else version


def write(results: Path, report: dict, reports: list[dict]) -> None:
    """This server's JSON, and the gradebook again with every report so far."""
    (results / f"{report['name']}.json").write_text(json.dumps(report, indent=2) + "\n")
    ids = [check.id for check in CHECKS]
    with (results / GRADEBOOK).open("w", newline="") as book:
        writer = csv.writer(book)
        writer.writerow(
            ["name", "score", "total", *ids, "problem", "sha256", "source", "graded_at"]
        )
        for r in sorted(reports, key=lambda r: r["name"].casefold()):
            passed = [int(check["passed"]) for check in r["checks"]]
            writer.writerow(
                [r["name"], r["passed"], r["total"], *passed, r.get("problem", ""),
                 r["sha256"] or "", r["source"], r["graded_at"]]
            )  # fmt: skip


def progress(report: dict, done: int, total: int, elapsed: float) -> str:
    minutes, seconds = divmod(round(elapsed), 60)
    left = f"{total - done} left" if done < total else "done"
    return (
        f"[{done:>{len(str(total))}}/{total}] {report['name']}: "
        f"{report['passed']}/{report['total']} in {report['seconds']:.0f} s; "
        f"elapsed {minutes}m{seconds:02d}s, {left}"
    )


def table(reports: list[dict]) -> str:
    """One row per server, one column per check."""
    width = max(len("server"), *(len(r["name"]) for r in reports))
    head = f"{'server':<{width}}  score  " + "  ".join(c.id for c in CHECKS)
    rows = [head, "-" * len(head)]
    for report in reports:
        cells = "  ".join(
            f"{'pass' if c['passed'] else 'FAIL':<{len(c['id'])}}" for c in report["checks"]
        )
        score = f"{report['passed']}/{report['total']}"
        rows.append(f"{report['name']:<{width}}  {score:>5}  {cells}".rstrip())
    return "\n".join(rows)


def details(report: dict) -> str:
    lines = [
        f"\n{report['name']} ({report['source']}): {report['passed']} of "
        f"{report['total']} checks passed in {report['seconds']:g} s"
    ]
    if report.get("problem"):
        lines += [f"  {report['problem']}", *(f"  | {line}" for line in report["printed"])]
    for check in report["checks"]:
        lines += [
            f"  {'pass' if check['passed'] else 'FAIL'}  {check['id']:<9}  {check['title']}",
            f"        saw: {check['saw']}",
            *(f"        | {line}" for line in check.get("printed", [])),
            f'        see: {LESSON_PAGES[check["lesson"]]}, "{check["lesson"]}"',
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
