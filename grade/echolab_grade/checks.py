"""The lab's checks, in the order they run, each with its deadline and the lesson that explains it.

Lessons are section titles of the lab manual, each on the page LESSON_PAGES names. Checks
that talk to the server run in probe.py, in its network namespace; the rest (the count from its
log, SIGTERM) the grader does from outside.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from .target import TOTAL, Target, last_line, last_total

HOSTILE = "Hostile clients, faults and hardening"
SIMPLE = "1. simple: one connection at a time"
THREADS = "2. threads: a thread per connection, and a race"
POLL_BUG = "6. poll: the same loop, asked differently (and the tutorial's bug)"
SHUTDOWN = "How the code is laid out"
LESSON_PAGES = {  # the page that holds each lesson's heading: the grader prints both
    HOSTILE: "docs/reference/hostile.md",
    SIMPLE: "docs/lessons/01-simple.md",
    THREADS: "docs/lessons/02-threads.md",
    POLL_BUG: "docs/lessons/06-poll.md",
    SHUTDOWN: "docs/reference/layout.md",
}
NC_LINES = "Hello\nStill here!\n"
STOP_WITHIN = 2.0


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    lesson: str
    deadline: float  # seconds the whole check may take, probe container included
    run: Callable[[Target, float], tuple[bool, str]]
    needs_echo: bool = True  # not run if the tutorial's message got no echo: it would tell nothing


def probed(check: str) -> Callable[[Target, float], tuple[bool, str]]:
    def run(target: Target, deadline: float) -> tuple[bool, str]:
        result = target.probe(check, deadline)
        return result["passed"], result["saw"]

    return run


# The tutorial's lines for the message just echoed, as it prints them, and the obvious variants:
# the message decoded (`Received: Hello, world`), spaces around it, a colon-less total.
LOG_LINES = (
    ("'Received new connection from ...'", re.compile(r"^Received new connection from", re.M)),
    (
        """"Received: b'Hello, world'" (or 'Received: Hello, world')""",
        re.compile(r"""^Received:?\s*(b'Hello, world'|b"Hello, world"|Hello, world)\s*$""", re.M),
    ),
    ("'Total messages received: N'", TOTAL),
)


def log_lines(target: Target, deadline: float) -> tuple[bool, str]:
    """The tutorial's lines for the message just echoed; the count check reads the last one."""
    log = target.stdout_once(lambda log: all(line.search(log) for _, line in LOG_LINES))
    missing = [shown for shown, line in LOG_LINES if not line.search(log)]
    if missing:
        last = last_line(log)
        printed = f"its last line: {last!r}" if last else "it printed nothing to stdout"
        return False, f"expected a line {'; '.join(missing)} on stdout; {printed}"
    return True, "printed " + ", ".join(shown for shown, _ in LOG_LINES)


def netcat(target: Target, deadline: float) -> tuple[bool, str]:
    done = target.netcat(NC_LINES, deadline)
    passed = done.returncode == 0 and done.stdout == NC_LINES
    return passed, f"typed {NC_LINES!r}, nc printed {done.stdout!r} (exit {done.returncode})"


def count(target: Target, deadline: float) -> tuple[bool, str]:
    """Two loops of 100 at once, counted from the server's own ``Total messages received``."""
    before = last_total(target.logs("stdout")) or 0
    result = target.probe("count", deadline)
    if "echoed" not in result:
        return False, result["saw"]
    after = last_total(target.stdout_once(lambda log: (last_total(log) or 0) >= before + 200))
    if after is None:
        return False, f"{result['saw']}; the log has no 'Total messages received: N' line"
    counted = after - before
    lost = f": {200 - counted} lost updates" if counted < 200 else ""
    saw = f"{result['saw']}; the server counted {counted}{lost}"
    return counted == 200 and result["passed"], saw


def sigterm(target: Target, deadline: float) -> tuple[bool, str]:
    return target.terminate(STOP_WITHIN)


CHECKS = (
    Check("echo", "the tutorial's message echoed", POLL_BUG, 60, probed("echo"), False),
    Check("log", "the tutorial's log lines for it", SIMPLE, 30, log_lines, False),
    Check("bytes", "every byte value 0-255 echoed exactly", HOSTILE, 60, probed("bytes")),
    Check("nc", "nc: two lines typed, both echoed", SIMPLE, 30, netcat),
    Check("count", "two loops of 100 clients at once count 200", THREADS, 150, count),
    Check(
        "second",
        "a second client served while a first stays connected",
        SIMPLE,
        60,
        probed("second"),
    ),
    Check("halfclose", "half-close gets its whole echo", HOSTILE, 60, probed("halfclose")),
    Check("reset", "a reset client does not end the server", HOSTILE, 60, probed("reset")),
    Check(
        "noread", "a client that never reads does not stop others", HOSTILE, 60, probed("noread")
    ),
    Check(
        "idle", "200 idle connections, and a client is still served", HOSTILE, 60, probed("idle")
    ),
    Check("sigterm", f"SIGTERM ends it within {STOP_WITHIN:g} s", SHUTDOWN, 30, sigterm, False),
)
