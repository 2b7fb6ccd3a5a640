"""The shape of each picture's JSON document: what its run measures, what its figure draws.

Written by the runs, read back by ``--redraw`` (where JSON gives tuples back as lists, which
read the same).
"""

from typing import Generic, TypedDict, TypeVar, final

P = TypeVar("P")  # a picture's parameters
R = TypeVar("R")  # a picture's results


class RunFacts(TypedDict):
    """Which run made a picture, and on what."""

    date: str
    started: str
    commit: str
    cpu: str
    cores: int | None
    kernel: str
    docker: str
    base_image: str
    load_average_at_start: list[float]
    load_average_at_end: list[float]
    note: str


class Measured(TypedDict, Generic[P, R]):
    """What a picture's run measured: the variants, with which parameters, and the results."""

    variants: list[str]
    parameters: P
    results: R


class Document(Measured[P, R]):
    """A picture's whole JSON document: the measurement, and the run that made it."""

    picture: str
    run: RunFacts


class Experiment(TypedDict):
    """The tutorial's experiment: ``clients`` loops of ``repeat`` one-message connections."""

    clients: int
    repeat: int


class RaceParameters(Experiment):
    work_delay_s: float


class RaceResult(TypedDict):
    """One variant's run of the experiment, and each total its server printed."""

    points: list[tuple[int, int]]  # (message number, total printed)
    sent: int
    echoed: int
    server_counted: int | None
    lost_updates: int
    elapsed_s: float


class WaitParameters(TypedDict):
    hold_s: float
    gap_s: float


class PoolParameters(WaitParameters):
    workers: int  # the clients pool serves at once, all holding on


class ClientTimes(TypedDict):
    """One client's times, in seconds from the first connect."""

    client: int
    connected: float
    sent: float
    echoed: float
    left: float


class ServerTimes(TypedDict):
    accepted_newcomer: float  # from the server's log


class WaitingLine(TypedDict):
    clients: list[ClientTimes]
    server: ServerTimes
    waited_s: float  # the newcomer's, from sending to its echo


CostParameters = TypedDict(
    "CostParameters",
    {
        "idle levels": str,
        "runs": int,
        "run_s": float,
        "server CPUs": str,
        "loadgen CPUs": str,
        "fd_setsize": int | None,
    },
)


class BusyRun(TypedDict):
    """One busy client's run beside the idle connections."""

    echoed: int
    server_cpu_s: float
    server_us_per_msg: float
    p50_us: int
    p99_us: int


@final  # so that ``"runs" in point`` tells the two apart
class MeasuredLevel(TypedDict):
    idle: int
    idle_open: int
    runs: list[BusyRun]


@final
class StoppedLevel(TypedDict):
    """The level a variant could not reach, tried with idle connections only."""

    idle: int
    idle_open: int
    idle_failure: str | None


CostPoint = MeasuredLevel | StoppedLevel
