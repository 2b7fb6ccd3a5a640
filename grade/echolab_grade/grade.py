"""Grade one server: start it, run every check in order, keep going whatever it does."""

import time

from .checks import CHECKS, Check
from .target import ProbeTimeout, Target, last_line

READY_WITHIN = 120.0  # the probe waits 60 s for the port (prefork spawns workers), plus its start


def grade(target: Target) -> dict:
    """Every check's outcome. A server that dies is restarted for the next check, which says so;
    one that never starts gets that line for every check."""
    started, began = time.monotonic(), time.time()
    problem = target.start() or ready(target)
    # A server that does not start: why (a SyntaxError and its line), and what it printed.
    not_started = {} if problem is None else {"problem": problem, "printed": target.printed(began)}
    results: list[dict] = []
    try:
        for check in CHECKS:
            if problem is not None:
                results.append(outcome(check, False, problem, 0.0))
            elif check.needs_echo and not echoed(results):
                no_echo = "not run: the tutorial's message got no echo (see echo)"
                results.append(outcome(check, False, no_echo, 0.0))
            else:
                results.append(run_check(target, check))
                if check.id != "sigterm" and died(target, results[-1]["passed"]):
                    problem = revive(target, results[-1])
    finally:
        target.remove()
    return {
        "name": target.name,
        "passed": sum(result["passed"] for result in results),
        "total": len(results),
        "seconds": round(time.monotonic() - started, 1),
        **not_started,
        "checks": results,
    }


def not_graded(name: str, problem: str) -> dict:
    """The report of a submission that is not run at all (refused, or not found): why, on
    every check, as for a server that does not start."""
    results = [outcome(check, False, problem, 0.0) for check in CHECKS]
    return {"name": name, "passed": 0, "total": len(results), "seconds": 0.0,
            "problem": problem, "printed": [], "checks": results}  # fmt: skip


def echoed(results: list[dict]) -> bool:
    return next(result["passed"] for result in results if result["id"] == "echo")


def ready(target: Target) -> str | None:
    """None once the server accepts connections, else why it does not."""
    try:
        result = target.probe("ready", READY_WITHIN)
    except ProbeTimeout as exc:
        result = {"passed": False, "saw": str(exc)}
    if result["passed"]:
        return None
    if not target.running():
        return f"the server did not start: it {target.exited()}"
    last = last_line(target.logs())
    return f"the server did not start: {result['saw']}" + (
        f"; its last line: {last!r}" if last else ""
    )


def died(target: Target, passed: bool) -> bool:
    """Whether the server ended during the check. After a failure it may be ending still: if its
    listener refuses connections, give the engine up to 10 s to see the process go."""
    if not target.running():
        return True
    if passed:
        return False
    try:
        if target.probe("alive", 30)["passed"]:
            return False
    except ProbeTimeout:
        return False
    target.wait_exit(10)
    return not target.running()


def revive(target: Target, result: dict) -> str | None:
    """The check during which the server died fails, says how, and the server is restarted."""
    result["passed"] = False
    result["saw"] += f"; the server died during this check: it {target.exited()}"
    target.restart()
    problem = ready(target)
    result["saw"] += "; restarted for the next check" if problem is None else f"; {problem}"
    return problem


def run_check(target: Target, check: Check) -> dict:
    """One check's outcome; a failed one carries the last lines the server wrote to stderr
    meanwhile (a handler's traceback when it closed the connection, the server's when it died)."""
    started, began = time.monotonic(), time.time()
    try:
        passed, saw = check.run(target, check.deadline)
    except ProbeTimeout as exc:
        passed, saw = False, f"{exc} (the server hung?)"
    result = outcome(check, passed, saw, time.monotonic() - started)
    if not passed and check.id != "sigterm":
        result["printed"] = target.printed(began)
    return result


def outcome(check: Check, passed: bool, saw: str, seconds: float) -> dict:
    return {
        "id": check.id,
        "title": check.title,
        "passed": passed,
        "saw": saw,
        "lesson": check.lesson,
        "seconds": round(seconds, 1),
    }
