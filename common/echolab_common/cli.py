"""Command-line helpers for every echolab program: one-line usage errors, checked numbers."""

import argparse
import math
from collections.abc import Callable
from typing import NoReturn, TypeVar

N = TypeVar("N", int, float)

# epoll and socket timeouts overflow a little past 24 days; a week is longer than any lab run.
MAX_SECONDS = 7 * 24 * 3600


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (and exit 2), not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def number(
    kind: Callable[[str], N],
    *,
    above: float | None = None,
    least: float | None = None,
    most: float | None = None,
) -> Callable[[str], N]:
    """argparse type: a finite ``kind`` within the bounds given.

    Every count, size, rate and number of seconds goes through here: float() takes 'nan' and
    'inf', and either would reach a socket or a sleep as a traceback instead of this one line.
    """

    def convert(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be above {above}: {text!r}")
        if least is not None and value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}: {text!r}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}: {text!r}")
        return value

    return convert


def positive(kind: Callable[[str], N], most: float | None = None) -> Callable[[str], N]:
    return number(kind, above=0, most=most)


# A timeout, a duration or a hold: 0 is allowed where waiting not at all makes sense.
seconds = number(float, above=0, most=MAX_SECONDS)
seconds_or_zero = number(float, least=0, most=MAX_SECONDS)


def port(text: str, lowest: int = 1) -> int:
    if not text.isdigit() or not lowest <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port from {lowest} to 65535: {text!r}")
    return int(text)


def host_port(text: str) -> str | None:
    """``host:port``, or an empty text for none."""
    host, _, number = text.rpartition(":")
    if text and (not host or not number.isdigit() or not 1 <= int(number) <= 65535):
        raise argparse.ArgumentTypeError(f"not host:port: {text!r}")
    return text or None


def stats_port(text: str) -> int:
    """A stats port, or 0 for a server that has none."""
    return port(text, lowest=0)
