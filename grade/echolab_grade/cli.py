"""make grade: FILE=server.py, DIR=folder/ or VARIANT=name; a table, and one JSON per server.

Exit codes: 0 every check of every server passed, 1 some check failed, 2 bad arguments.
"""

import argparse
import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from echolab_server.variants import variant_names

from .checks import CHECKS
from .grade import grade
from .target import ROOT, Target


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="echolab_grade", description="Run the lab's checks against echo servers."
    )
    parser.add_argument("files", nargs="*", type=Path, help="a student's server: one Python file")
    parser.add_argument("--dir", type=Path, help="grade every *.py file in this folder")
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
        help="folder for one JSON report per server (default grade-results)",
    )
    parser.add_argument("--jobs", type=int, default=4, help="servers graded at once (default 4)")
    parser.add_argument(
        "--details", action="store_true", help="every check's lines for every server"
    )
    args = parser.parse_args(argv)
    if args.dir is not None:
        if not args.dir.is_dir():
            parser.error(f"--dir {args.dir}: not a folder")
        found = sorted(args.dir.glob("*.py"))
        if not found:
            parser.error(f"--dir {args.dir}: no .py files in it")
        args.files += found
    for path in args.files:
        if not path.is_file():
            parser.error(f"{path}: no such file")
    if not args.files and not args.variant:
        parser.error("nothing to grade: give a FILE, --dir DIR or --variant NAME")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    project = f"echolab-grade-{uuid.uuid4().hex[:8]}"
    targets = [Target.student(path, project) for path in args.files]
    targets += [Target.variant(name, project) for name in args.variant]
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            reports = list(pool.map(grade, targets))
    finally:
        subprocess.run(
            ["docker", "compose", "-p", project, "down", "--remove-orphans"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
    args.results.mkdir(parents=True, exist_ok=True)
    for report in reports:
        (args.results / f"{report['name']}.json").write_text(json.dumps(report, indent=2) + "\n")
    if len(reports) > 1:
        print(table(reports))
    if len(reports) == 1 or args.details:
        for report in reports:
            print(details(report))
    print(f"JSON reports: {args.results}/")
    return 0 if all(r["passed"] == r["total"] for r in reports) else 1


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
        f"\n{report['name']} ({report['server']}): {report['passed']} of "
        f"{report['total']} checks passed in {report['seconds']:g} s"
    ]
    for check in report["checks"]:
        lines += [
            f"  {'pass' if check['passed'] else 'FAIL'}  {check['id']:<9}  {check['title']}",
            f"        saw: {check['saw']}",
            f'        see: README, "{check["lesson"]}"',
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
