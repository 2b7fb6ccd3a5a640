"""The server's settings: one value object, each default written once, here.

The command line and the environment that fill it in are ``cli``'s; tests and the variants
build a ``Settings`` directly. Nothing here imports the rest of the package.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    variant: str
    host: str = "0.0.0.0"
    port: int = 12345
    stats_port: int | None = 8080
    work_delay: float | None = None  # None: the variant's own (0.1 s where the tutorial has it)
    quiet: bool = False
    milestone: int = 100
    workers: int = 10
    max_connections: int | None = None  # None: as many as the open-file limit allows
    output_cap: int = 1 << 20
    recv_size: int = 1024
    backlog: int = 1024
    processes: int | None = None  # prefork only; None: one per core
