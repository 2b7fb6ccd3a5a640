"""The lab manual quotes each variant's lesson from its module (pymdownx snippets sections).

Every variant module has one ``lesson`` section, short enough for a page; any other section
in the server's code is a well-formed pair, so that a quote never silently comes out empty.
"""

import re
import sys
from pathlib import Path

import echolab_server
import pytest
from echolab_server.variants import registry

PACKAGE = Path(echolab_server.__file__).resolve().parent
MARKER = re.compile(r"^\s*# --8<-- \[(start|end):([a-z][-_0-9a-z]*)\]$")
LONGEST = 45  # lines a lesson page quotes at most


def _sections(path: Path) -> dict[str, list[str]]:
    """Each section's lines, by name; fails on a marker out of order or left open."""
    sections: dict[str, list[str]] = {}
    open_now: dict[str, int] = {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        if "--8<--" in line and not MARKER.match(line):
            pytest.fail(f"{path.name}:{number + 1}: not a section marker: {line.strip()}")
        if not (match := MARKER.match(line)):
            continue
        kind, name = match.groups()
        if kind == "start":
            assert name not in open_now and name not in sections, f"{path.name}: {name} twice"
            open_now[name] = number
        else:
            assert name in open_now, f"{path.name}: {name} ends before it starts"
            body = lines[open_now.pop(name) + 1 : number]
            sections[name] = [text for text in body if not MARKER.match(text)]
    assert not open_now, f"{path.name}: never ended: {sorted(open_now)}"
    return sections


@pytest.mark.parametrize("variant", list(registry()))
def test_each_variant_has_one_short_lesson_section(variant: str) -> None:
    path = Path(sys.modules[registry()[variant].__module__].__file__)
    lesson = _sections(path)["lesson"]
    code = [line for line in lesson if line.strip()]
    assert code, f"{path.name}: the lesson section is empty"
    assert len(lesson) <= LONGEST, f"{path.name}: the lesson is {len(lesson)} lines"


def test_every_section_in_the_server_is_well_formed() -> None:
    found = {
        f"{path.relative_to(PACKAGE)}:{name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in _sections(path)
    }
    # The sections the manual quotes besides the lessons; renaming one breaks the docs.
    quoted = {"variants/poll.py:mask", "variants/prefork.py:worker", "blocking.py:handler"}
    assert quoted | {"eventloop.py:loop"} <= found
