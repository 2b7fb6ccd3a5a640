"""Latency recording on top of DDSketch, a mergeable quantile sketch with a 1% error bound.

Why DDSketch and not HdrHistogram: the ``hdrhistogram`` package needs its C extension and ships
it for x86_64 only, so the loadgen image would not build on an ARM laptop without a compiler;
``ddsketch`` is pure Python (one wheel for every Python and CPU).  Like HdrHistogram it keeps
counts in logarithmic buckets, never the samples, and sketches from several processes merge.

Adding to the sketch costs ~1.5 us in pure Python, as much as a whole echo on the fast variants,
so samples wait in a bounded buffer (at most ``FLUSH_AT``) and are folded in per distinct value
with ``Counter`` (C code): ~0.1 us a sample.

A recorder travels as JSON too (``LatencySketch``): loadgen replicas on other hosts each report
their sketch, and the merge reads the quantiles once from the sum of the sketches. The sketch is
built from its parts here, so its bins are ours to read (ddsketch's own serialization needs
protobuf).
"""

from collections import Counter
from dataclasses import dataclass

from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore
from echolab_common.record import Record

RELATIVE_ACCURACY = 0.01
FLUSH_AT = 65_536


@dataclass(kw_only=True)
class LatencySummary(Record):
    """The ``latency_us`` block of a report: quantiles and the maximum, in whole us."""

    p50: int
    p90: int
    p99: int
    p999: int
    max: int


QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "p999": 0.999}  # LatencySummary's fields


@dataclass(kw_only=True)
class LatencySketch(Record):
    """A recorder as JSON: the sketch's non-empty bins (key, count), its zeros, the maximum."""

    relative_accuracy: float
    bins: list[tuple[int, int]]
    zero_count: int
    max: int


class LatencyRecorder:
    """Latencies in whole microseconds; ``merge`` adds another process's recorder."""

    def __init__(self) -> None:
        self.store = DenseStore()  # positive latencies; zeros are counted apart by the sketch
        self.sketch = BaseDDSketch(
            LogarithmicMapping(RELATIVE_ACCURACY), self.store, DenseStore(), 0
        )
        self.max = 0
        self.pending: list[int] = []

    def record(self, micros: int) -> None:
        self.pending.append(micros)
        if len(self.pending) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.max = max(self.max, max(self.pending))
            for value, count in Counter(self.pending).items():
                self.sketch.add(value, count)
            self.pending.clear()

    def merge(self, other: "LatencyRecorder") -> None:
        self.flush()
        other.flush()
        self.sketch.merge(other.sketch)
        self.max = max(self.max, other.max)

    @property
    def count(self) -> int:
        self.flush()
        return int(self.sketch.count)

    def __getstate__(self) -> dict[str, object]:  # sent between processes: fold the buffer in
        self.flush()
        return self.__dict__

    def to_sketch(self) -> LatencySketch:
        """The recorder as it travels in a report (``loadgen --json``)."""
        self.flush()
        bins = [(self.store.offset + i, int(n)) for i, n in enumerate(self.store.bins) if n]
        return LatencySketch(
            relative_accuracy=RELATIVE_ACCURACY,
            bins=bins,
            zero_count=self.count - sum(n for _, n in bins),
            max=self.max,
        )

    @classmethod
    def from_sketch(cls, sketch: LatencySketch) -> "LatencyRecorder":
        """The recorder ``to_sketch`` described; ValueError if it does not fit this loadgen's."""
        if sketch.relative_accuracy != RELATIVE_ACCURACY:
            raise ValueError(
                f"a sketch of relative accuracy {sketch.relative_accuracy}, "
                f"this loadgen merges {RELATIVE_ACCURACY} only"
            )
        recorder = cls()
        for key, n in sketch.bins:
            recorder.store.add(key, n)
        recorder.max = sketch.max
        recorder.sketch = BaseDDSketch(
            LogarithmicMapping(RELATIVE_ACCURACY), recorder.store, DenseStore(), sketch.zero_count
        )
        return recorder

    def quantile(self, q: float) -> float:
        value = self.sketch.get_quantile_value(q)
        return 0.0 if value is None else value  # None: an empty sketch

    def summary(self) -> LatencySummary:
        """The ``latency_us`` block of a report, in whole us (all zero when empty)."""
        if self.count == 0:
            return LatencySummary(p50=0, p90=0, p99=0, p999=0, max=0)
        quantiles = {name: round(self.quantile(q)) for name, q in QUANTILES.items()}
        return LatencySummary(**quantiles, max=self.max)
