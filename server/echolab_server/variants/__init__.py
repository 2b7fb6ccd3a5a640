"""The variants, by name: each is one module with one server class, importing only the core."""

import importlib

VARIANTS = {
    "simple": "SimpleServer",
    "threads": "ThreadsServer",
    "lock": "LockServer",
    "condition": "ConditionServer",
    "select": "SelectServer",
    "poll": "PollServer",
    "pool": "PoolServer",
    "epoll": "EpollServer",
    "asyncio": "AsyncioServer",
    "uvloop": "UvloopServer",
    "protocol": "ProtocolServer",
    "prefork": "PreforkServer",
}


class VariantUnavailable(Exception):
    """Raised when a variant's module is imported where the variant cannot run (uvloop missing)."""


def server_class(variant: str) -> type:
    """Import a variant's module only when it is chosen (uvloop, say, may be missing)."""
    module = importlib.import_module(f"{__name__}.{variant}")
    return getattr(module, VARIANTS[variant])
