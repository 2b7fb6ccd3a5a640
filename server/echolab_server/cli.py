"""The command line: options, with ECHOLAB_* environment variables as their defaults.

It turns ``argv`` and the environment into a ``settings.Settings``; where neither gives a
value, the dataclass's own default stands (and ``--help`` shows it from there).
"""

import argparse
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from echolab_common.cli import Parser

from .settings import Settings
from .variants import variant_names


def _bounded_int(low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {bounds})")
        return value

    return parse


def _seconds(text: str) -> float:
    """Seconds from 0 to 60; float() also takes 'nan' and 'inf', which are no number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"{value} is out of range (must be from 0 to 60 seconds)")
    return value


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a yes/no value (use 1 or 0)")


_port = _bounded_int(1, 65535)

# One row per option: (option, environment variable that supplies its default, type, help).
# Where the help says nothing of a default, --help adds the dataclass's own.
_OPTIONS = (
    ("variant", "ECHOLAB_VARIANT", str, "one of: {variants}"),
    ("host", "ECHOLAB_BIND", str, "address to listen on"),
    ("port", "ECHOLAB_PORT", _port, "echo port"),
    ("stats-port", "ECHOLAB_STATS_PORT", _port, "HTTP stats port"),
    (
        "work-delay",
        "ECHOLAB_WORK_DELAY",
        _seconds,
        "the tutorial's simulated work inside the counter update, in seconds "
        "(default 0.1 for threads, lock and condition, else 0)",
    ),
    ("quiet", "ECHOLAB_QUIET", _flag, "drop the per-message log lines"),
    ("milestone", "ECHOLAB_MILESTONE", _bounded_int(1), "condition: total to announce"),
    ("workers", "ECHOLAB_WORKERS", _bounded_int(1, 10_000), "pool: worker threads"),
    (
        "max-connections",
        "ECHOLAB_MAX_CONNECTIONS",
        _bounded_int(1),
        "refuse connections past this many open ones (default: what the open-file limit allows)",
    ),
    (
        "output-cap",
        "ECHOLAB_OUTPUT_CAP",
        _bounded_int(1, 1 << 30),  # uvloop takes a C int; and a GiB is the container's memory
        "bytes of unsent echo per connection before the server stops reading from it "
        "(at most 1 GiB)",
    ),
    ("recv-size", "ECHOLAB_RECV_SIZE", _bounded_int(1, 1 << 24), "bytes per recv()"),
    ("backlog", "ECHOLAB_BACKLOG", _bounded_int(1, 65535), "listen() backlog"),
    ("processes", "ECHOLAB_PROCESSES", _bounded_int(1, 256), "prefork: processes (one per core)"),
)

_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Settings)}


def _help(option: str, variable: str, text: str) -> str:
    default = _DEFAULTS[option.replace("-", "_")]
    if "default" not in text and default not in (None, False, dataclasses.MISSING):
        text += f" (default {default})"
    return f"{text.format(variants=', '.join(variant_names()))} [{variable}]"


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python3 -m echolab_server",
        description="The tutorial's TCP echo server, in the concurrency model you choose. "
        "Every option can also be set by the environment variable shown.",
    )
    for option, variable, convert, text in _OPTIONS:
        # A yes/no option also works as a bare flag: --quiet means --quiet 1.
        bare: dict[str, Any] = {"nargs": "?", "const": True} if convert is _flag else {}
        parser.add_argument(f"--{option}", type=convert, help=_help(option, variable, text), **bare)
    return parser


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Parse the command line; exits with status 2 and a one-line message on bad input."""
    parser = _parser()
    args = vars(parser.parse_args(argv))
    values = {}
    for option, variable, convert, _ in _OPTIONS:
        name = option.replace("-", "_")
        if args[name] is not None:
            values[name] = args[name]
        elif environ.get(variable, "") != "":
            try:
                values[name] = convert(environ[variable])
            except argparse.ArgumentTypeError as error:
                parser.error(f"{variable}: {error}")
    variants = ", ".join(variant_names())
    if "variant" not in values:
        parser.error(f"choose a variant with --variant or ECHOLAB_VARIANT: {variants}")
    if values["variant"] not in variant_names():
        parser.error(f"unknown variant {values['variant']!r}: choose one of {variants}")
    return Settings(**values)
