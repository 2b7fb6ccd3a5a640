"""The command line: options, with ECHOLAB_* environment variables as their defaults.

It turns ``argv`` and the environment into a ``settings.Settings``; where neither gives a
value, the dataclass's own default stands (and ``--help`` shows it from there).
"""

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from echolab_common.cli import Parser, number, port

from .settings import Settings
from .variants import variant_names


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a yes/no value (use 1 or 0)")


# One row per option: (option, environment variable that supplies its default, type, help).
# Where the help says nothing of a default, --help adds the dataclass's own.
_OPTIONS = (
    ("variant", "ECHOLAB_VARIANT", str, "one of: {variants}"),
    ("host", "ECHOLAB_BIND", str, "address to listen on"),
    ("port", "ECHOLAB_PORT", port, "echo port"),
    ("stats-port", "ECHOLAB_STATS_PORT", port, "HTTP stats port"),
    (
        "work-delay",
        "ECHOLAB_WORK_DELAY",
        number(float, least=0, most=60),
        "the tutorial's simulated work inside the counter update, in seconds "
        "(default 0.1 for threads, lock and condition, else 0)",
    ),
    ("quiet", "ECHOLAB_QUIET", _flag, "drop the per-message log lines"),
    ("milestone", "ECHOLAB_MILESTONE", number(int, least=1), "condition: total to announce"),
    ("workers", "ECHOLAB_WORKERS", number(int, least=1, most=10_000), "pool: worker threads"),
    (
        "max-connections",
        "ECHOLAB_MAX_CONNECTIONS",
        number(int, least=1),
        "refuse connections past this many open ones (default: what the open-file limit allows)",
    ),
    (
        "output-cap",
        "ECHOLAB_OUTPUT_CAP",
        # uvloop takes a C int; and a GiB is the container's memory
        number(int, least=1, most=1 << 30),
        "bytes of unsent echo per connection before the server stops reading from it "
        "(at most 1 GiB)",
    ),
    ("recv-size", "ECHOLAB_RECV_SIZE", number(int, least=1, most=1 << 24), "bytes per recv()"),
    ("backlog", "ECHOLAB_BACKLOG", number(int, least=1, most=65535), "listen() backlog"),
    (
        "processes",
        "ECHOLAB_PROCESSES",
        number(int, least=1, most=256),
        "prefork: processes (one per core)",
    ),
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
