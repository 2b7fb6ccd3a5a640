"""The docs' examples, run against the real lab (make test-docs; docs/reference/tests.md).

A fenced ``console`` block in README.md, docs/index.md or docs/lessons/*.md is a transcript:
each ``$ `` line is a command, run from the repository root with bash, and the lines under it
are what it must print: its stdout, then its stderr. ``...`` stands for
whatever varies (an address, a port, a time, an id, several lines), as in doctest's ELLIPSIS,
whose checker compares them. Compose's progress lines (`` Container x  Started``) are left out
of what a command printed. ``<!-- skip: next -->`` before a block shows it without running it;
blocks in other languages (``sh``, ``text``) are only shown. Run it with
``pytest -p tests.docs.plugin README.md docs/index.md docs/lessons``.
"""

import doctest
import os
import re
import subprocess
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

COMMAND_TIMEOUT = 240  # seconds: the slowest shown command (lock's 2 x 100) takes about 25
PROGRESS = re.compile(r"^ ?(Container|Network|Volume) \S+ +[A-Z][a-z]+$")
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS


def transcript(source):
    """(command, shown output) pairs of a console block."""
    pairs = []
    for line in source.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs:
            pairs[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"console block must start with a '$ ' line, not {line!r}")
    return [(command, "\n".join(shown).strip("\n")) for command, shown in pairs]


def run(command):
    """What ``command`` prints: its stdout, then its stderr (a pipe keeps no order between the
    two), Compose's progress lines left out, trailing spaces stripped."""
    done = subprocess.run(
        ["bash", "-c", command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    lines = (done.stdout + done.stderr).splitlines()
    return "\n".join(line.rstrip() for line in lines if not PROGRESS.match(line)).strip("\n")


def evaluate_console(example):
    __tracebackhide__ = True
    for command, shown in transcript(example.parsed):
        printed = run(command)
        if not CHECKER.check_output(shown + "\n", printed + "\n", FLAGS):
            diff = CHECKER.output_difference(
                doctest.Example(command, shown + "\n"), printed + "\n", FLAGS
            )
            raise AssertionError(f"$ {command}\n{diff}")


@pytest.fixture(scope="session")
def lab():
    """The lab the examples run in; removed at the end, also when an example failed."""
    project = os.environ.get("COMPOSE_PROJECT_NAME")
    if not project:
        pytest.fail(
            "set COMPOSE_PROJECT_NAME (make test-docs does): the docs' lab is removed at the end"
        )
    try:
        yield project
    finally:
        subprocess.run(
            [
                "docker",
                "compose",
                "--profile",
                "tools",
                "down",
                "--remove-orphans",
                "--volumes",
                "--timeout",
                "5",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser(language="console", evaluator=evaluate_console), SkipParser()],
    patterns=["README.md", "docs/index.md", "docs/lessons/*.md"],
    path=str(
        Path(__file__).resolve().parents[2]
    ),  # the repository root, resolved: Sybil compares paths
    fixtures=["lab"],
).pytest()
