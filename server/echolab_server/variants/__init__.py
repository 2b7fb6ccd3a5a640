"""The variants: one module each, with one server class that carries the facts about it.

The registry is found, not listed: each module here defines one ``EchoServer`` subclass whose
``variant`` is the module's name, and its class attributes say what tests and the bench need to
know (``step``, ``family``, ``counts_exactly``, ``serves_at_once``, ``descriptor_ceiling``,
``requires``: see ``EchoServer``). Importing them needs nothing beyond the standard library (a
variant imports what it ``requires`` only when it runs), so the host-side bench and the tests
read the same registry. Adding a variant is its module, its compose service, its lesson page in
docs/lessons/ (docs/reference/layout.md, "adding a variant").

Each module shows its own lesson and takes everything else from the core (``server`` and the
family modules). A variant that is another one plus one idea builds on that one's class, as the
tutorial builds each step on the last: lock on threads, condition on lock, uvloop on asyncio,
and prefork's workers on epoll's way of asking the kernel.
"""

import functools
import importlib
import pkgutil
from collections.abc import Callable

from ..server import EchoServer

TUTORIAL_STEPS = 7  # steps 1 to 7 are the tutorial's own variants; later steps go beyond it


class VariantUnavailable(Exception):
    """Raised when a variant is chosen where it cannot run (uvloop missing, say)."""


@functools.cache
def registry() -> dict[str, type[EchoServer]]:
    """Every variant's class by name, in the order of the lessons (``step``)."""
    found: dict[str, type[EchoServer]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        [server] = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, EchoServer)
            and value.__module__ == module.__name__
            and value.variant
        ]
        if server.variant != module_info.name or server.step <= 0:
            raise TypeError(f"{server.__qualname__}: variant must be its module's name, step > 0")
        found[server.variant] = server
    steps = sorted(server.step for server in found.values())
    if steps != list(range(1, len(found) + 1)):
        raise TypeError(f"variant steps must run 1, 2, ... without gaps or repeats: {steps}")
    return dict(sorted(found.items(), key=lambda item: item[1].step))


def variant_names(where: Callable[[type[EchoServer]], bool] = lambda server: True) -> list[str]:
    """The names of the variants whose class satisfies ``where``, in the lessons' order."""
    return [name for name, server in registry().items() if where(server)]


def server_class(variant: str) -> type[EchoServer]:
    """The variant's class, once what it ``requires`` beyond the standard library imports."""
    server = registry()[variant]
    for package in server.requires:
        try:
            importlib.import_module(package)
        except ImportError as error:
            raise VariantUnavailable(
                f"the {variant} variant needs the {package} package, which cannot be imported "
                f"here ({error}); for the image, run `make wheels` on the host and rebuild "
                f"(make build); elsewhere, pip install {package}"
            ) from None
    return server
