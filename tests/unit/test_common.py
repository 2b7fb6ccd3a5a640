"""echolab_common: the one wait-with-a-deadline and the one-line command-line errors."""

import itertools
import socket
import subprocess
import sys
import threading
import time

import pytest
from echolab_common.cli import Parser, number, port
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
