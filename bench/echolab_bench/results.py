"""The bench's results as dataclasses: what ``make bench`` and ``make bench-latency`` write to
bench/results/*.json and read back (``--readme``, ``--docs``), one JSON object each
(``echolab_common.record``: fields in order are the keys, ``to_json``/``from_json``).

A run is loadgen's own report (``SustainedReport``) with what the bench measured around it.
The committed result files load into these types and write back the same JSON, byte for byte
(tests/unit/test_bench_results.py); the first three (2026-11-25) have a format of their own,
``FirstResults``, kept so that they still load, though no table is drawn from them.
"""

from dataclasses import dataclass, field
from typing import Literal

from echolab_common.record import OMITTED, Record
from echolab_loadgen.report import SustainedReport

BoundName = Literal["server", "client", "both", "elsewhere"]  # measure.BOUNDS says what each is
# The C server's row was "yardstick" in results before the ruler was ours.
RowKind = Literal["variant", "extra", "ruler", "yardstick"]


@dataclass(kw_only=True)
class BenchRun(SustainedReport):
    """One loadgen run, with both sides' CPU over its window and what bound it."""

    server_cpu_s: float | None  # None: the server is no container whose cgroup we read
    server_cpu_percent: float | None  # 100 is one core
    server_us_per_msg: float | None
    loadgen_cpu_s: float | None
    loadgen_cgroup_cpu_percent: float | None
    loadgen_us_per_msg: float | None
    bound: BoundName


@dataclass(kw_only=True)
class MachineFacts(Record):
    """Where a run was measured, as far as is known before it starts."""

    cpu: str
    cores: int | None
    kernel: str
    docker: str
    storage_driver: str
    base_image: str
    server_python: str
    loadgen_python: str
    uvloop: str | None
    ddsketch: str | None
    server_cpus: str  # "any": not pinned
    loadgen_cpus: str
    load_average_at_start: list[float]


@dataclass(kw_only=True)
class Machine(MachineFacts):
    """The machine's facts with the load average once the run was over."""

    load_average_at_end: list[float]


# -- make bench: the closed loop ----------------------------------------------------------------


@dataclass(kw_only=True)
class PlanRecord(Record):
    """What the closed-loop run was asked to do, as its results keep it."""

    loads: tuple[tuple[int, int], ...]  # (connections, message size)
    duration_s: float
    rounds: int
    warmup_s: float
    procs: int
    work_delay_s: float
    server_cpus: str | None  # None: not pinned
    loadgen_cpus: str | None


@dataclass(kw_only=True)
class Cell(Record):
    """One row under one load: the median of its rounds with their range, spread and bound."""

    connections: int
    size: int
    unit: Literal["msgs_per_s", "mib_per_s"]
    median: float
    min: float
    max: float
    spread: float | None  # (max - min) / median; None where the median is 0
    spread_flagged: bool
    bound: BoundName  # the median run's
    bounds: list[BoundName]  # every round's
    p99_us: int
    server_cpu_percent: float | None
    loadgen_cpu_percent: float | None
    server_us_per_msg: float | None
    loadgen_us_per_msg: float | None
    served: int  # the fewest connections any round served
    missing: int  # the most lost or failed in any round
    mismatched: int  # over every round
    runs: list[BenchRun]


@dataclass(kw_only=True)
class IdleBaseline(Record):
    """The server's memory with no connection held."""

    idle_open: int
    memory_bytes: int


@dataclass(kw_only=True)
class IdleHeld(IdleBaseline):
    """The server's memory while loadgen held idle connections; why the next one failed."""

    idle_failure: str | None


@dataclass(kw_only=True)
class IdleCosts(Record):
    """A variant's memory per idle level, and the most connections it accepted."""

    memory: dict[str, IdleBaseline | IdleHeld]  # by level: "0" is the baseline
    max_accepted: int
    max_failure: str | None  # None: every connection up to max_tried was served
    max_tried: int


@dataclass(kw_only=True)
class Row(Record):
    """A variant's or another server's cells, one per load, and its idle costs (variants)."""

    kind: RowKind
    address: str  # host:port
    loads: list[Cell]
    idle: IdleCosts | None = field(default=None, metadata=OMITTED)


@dataclass(kw_only=True)
class ClosedLoopResults(Record):
    """One ``make bench`` run."""

    started: str
    plan: PlanRecord
    machine: Machine
    rows: dict[str, Row]
    finished: str


# -- make bench-latency: the ladder ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LatencyPlan(Record):
    """What the latency ladder is asked to do; its results keep it as it is."""

    variants: tuple[str, ...]
    c_ruler: bool
    loads: tuple[tuple[int, int], ...]  # (connections, message size)
    fractions: tuple[float, ...]  # offered rates, as fractions of each row's closed loop
    duration: float
    rounds: int
    warmup: float
    procs: int  # loadgen processes to start with
    max_procs: int  # at most this many (the CPUs loadgen may use)
    target_us: float
    server_cpus: str | None
    loadgen_cpus: str | None
    # Which of generator.GENERATORS drove every run; absent (None): Python loadgen, as in
    # every run before the C generator.
    generator: Literal["c", "python"] | None = field(default=None, metadata=OMITTED)
    # Rates halving the gap around each row's knee after the ladder (latency.halfway), and the
    # p99 target whose knee they looked for (target_us may later be another: retarget); absent
    # (None): none, as in every run before them.
    refine: int | None = field(default=None, metadata=OMITTED)
    refine_target_us: float | None = field(default=None, metadata=OMITTED)


@dataclass(kw_only=True)
class Rung(Record):
    """One offered rate: medians over its rounds, the p99's range, the median-p99 run's bound."""

    offered: int
    achieved: int
    p50_us: int
    p99_us: int
    p99_min_us: int
    p99_max_us: int
    p99_spread: float | None
    spread_flagged: bool
    p999_us: int
    bound: BoundName
    bounds: list[BoundName]
    server_cpu_percent: float | None
    loadgen_cpu_percent: float | None
    procs: int
    missing: int
    mismatched: int
    runs: list[BenchRun]  # without their sketches


@dataclass(kw_only=True)
class Capacity(Record):
    """The highest offered rate whose p99 held the target."""

    offered: int
    achieved: int
    p99_us: int
    bound: BoundName
    procs: int
    ladder_top: bool  # the ladder ended before the p99 broke: the capacity is at least this


@dataclass(kw_only=True)
class LatencyRow(Record):
    closed_loop: BenchRun  # the median closed-loop round, without its sketch
    rungs: list[Rung]
    capacity_at_target: Capacity | None  # None: no rate held the target


@dataclass(kw_only=True)
class LatencyLoad(Record):
    connections: int
    size: int
    left_out: list[str]  # variants that serve fewer connections at once
    rows: dict[str, LatencyRow]


@dataclass(kw_only=True)
class LatencyResults(Record):
    """One ``make bench-latency`` run."""

    started: str
    plan: LatencyPlan
    loads: list[LatencyLoad]
    machine: Machine
    finished: str


# -- the first format (results of 2026-11-25): loaded, not drawn --------------------------------


@dataclass(kw_only=True)
class FirstRun(SustainedReport):
    server_cpu_percent: float | None


@dataclass(kw_only=True)
class FirstMedian(Record):
    msgs_per_s: float
    mib_per_s: float
    server_cpu_percent: float | None
    loadgen_cpu_percent: float | None
    p50_us: int
    p99_us: int
    max_us: int
    missing: int
    served: int
    mismatched: int


@dataclass(kw_only=True)
class FirstCell(Record):
    connections: int
    size: int
    runs: list[FirstRun]
    median: FirstMedian


@dataclass(kw_only=True)
class FirstRow(Record):
    kind: RowKind
    address: str | None = field(default=None, metadata=OMITTED)
    loads: list[FirstCell]
    idle: IdleCosts | None = field(default=None, metadata=OMITTED)


@dataclass(kw_only=True)
class FirstPlan(Record):
    loads: tuple[tuple[int, int], ...]
    duration_s: float
    repeats: int
    warmup_s: float
    procs: int
    work_delay_s: float


@dataclass(kw_only=True)
class FirstMachine(Record):
    cpu: str
    cores: int
    kernel: str
    docker: str
    base_image: str
    python: str


@dataclass(kw_only=True)
class FirstResults(Record):
    """A ``make bench`` run in the first format: one median per cell, no bounds or spread."""

    started: str
    plan: FirstPlan
    machine: FirstMachine
    rows: dict[str, FirstRow]
    finished: str
