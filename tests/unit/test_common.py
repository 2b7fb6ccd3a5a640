"""echolab_common: the one wait with a deadline, one-line command-line errors, records as JSON."""

import itertools
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import pytest
from echolab_common.cli import Parser, number, port
from echolab_common.record import OMITTED, Record, decode
from echolab_common.wait import Timeout, accepting, until


def test_until_returns_the_first_true_result() -> None:
    answers = itertools.chain([None, 0, ""], itertools.repeat("ready"))
    assert until(lambda: next(answers), "the answer", 10, interval=0.01) == "ready"


def test_until_names_what_it_waited_for_at_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(Timeout, match=r"^the moon: not within 0.2 s$"):
        until(lambda: False, "the moon", 0.2, interval=0.05)
    assert time.monotonic() - started >= 0.2


def test_until_asks_at_least_once_even_with_no_time() -> None:
    assert until(lambda: 42, "now", 0) == 42


def test_accepting_returns_once_the_target_listens_and_gives_up_with_a_reason() -> None:
    with socket.socket() as late:
        late.bind(("127.0.0.1", 0))
        address = late.getsockname()
        assert "refused" in str(accepting(*address, 0.6))  # bound, not listening
        threading.Timer(0.6, late.listen).start()
        assert accepting(*address, 10) is None


def test_accepting_with_no_time_tries_nothing() -> None:
    assert accepting("no-such-host.invalid", 1, 0) is None


def test_a_bad_argument_is_one_line_and_exit_2() -> None:
    program = (
        "from echolab_common.cli import Parser, number\n"
        "p = Parser(prog='demo'); p.add_argument('--n', type=number(int, least=1))\n"
        "p.parse_args(['--n', '0'])\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "demo: error: argument --n: must be at least 1: '0' (see --help)\n"


@pytest.mark.parametrize("text", ["nan", "inf", "x", "-1"])
def test_numbers_are_finite_and_bounded(text: str) -> None:
    parser = Parser(prog="demo")
    parser.add_argument("--n", type=number(float, least=0))
    with pytest.raises(SystemExit):
        parser.parse_args(["--n", text])


def test_a_port_is_from_1_to_65535() -> None:
    assert port("65535") == 65535
    with pytest.raises(Exception, match="not a port"):
        port("0")


@dataclass(kw_only=True)
class Point(Record):
    kind: Literal["point"] = "point"
    x: float
    label: str | None
    note: str | None = field(default=None, metadata=OMITTED)


@dataclass(kw_only=True)
class Pair(Record):
    kind: Literal["pair"] = "pair"
    points: tuple[Point, Point]
    by_name: dict[str, int]


def test_a_record_writes_its_fields_in_order_and_leaves_out_an_omitted_none() -> None:
    point = Point(x=2, label=None)
    assert list(point.to_json().items()) == [("kind", "point"), ("x", 2), ("label", None)]
    noted = Point(x=2.5, label="a", note="n")
    assert list(noted.to_json()) == ["kind", "x", "label", "note"]
    assert Point.from_json(noted.to_json()) == noted and Point.from_json(point.to_json()) == point
    pair = Pair(points=(point, noted), by_name={"a": 1})
    assert Pair.from_json(pair.to_json()) == pair
    assert pair.to_json()["points"][1] == noted.to_json()  # a tuple is a JSON list


def test_a_union_reads_the_one_shape_that_fits() -> None:
    assert decode(Point | Pair, {"kind": "point", "x": 1, "label": "a"}) == Point(x=1, label="a")
    pair = Pair(points=(Point(x=1, label=None),) * 2, by_name={})
    assert decode(Point | Pair, pair.to_json()) == pair
    assert decode(Point | None, None) is None


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"kind": "point", "x": 1}, "no key 'label'"),
        ({"kind": "point", "x": 1, "label": None, "y": 2}, "unexpected key 'y'"),
        ({"kind": "point", "x": "1", "label": None}, "x: expected float, got '1'"),
        ({"kind": "point", "x": True, "label": None}, "x: expected float, got True"),
        ({"kind": "line", "x": 1, "label": None}, "kind: expected one of 'point'"),
        ([1], "expected an object, got list"),
    ],
)
def test_a_record_that_does_not_fit_says_where_in_one_line(data, complaint) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        Point.from_json(data)
    assert "\n" not in str(caught.value)
