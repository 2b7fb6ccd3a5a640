"""Latency recording on top of DDSketch, a mergeable quantile sketch with a 1% error bound.

Why DDSketch and not HdrHistogram: the ``hdrhistogram`` package needs its C extension and ships
it for x86_64 only, so the loadgen image would not build on an ARM laptop without a compiler;
``ddsketch`` is pure Python (one wheel for every Python and CPU).  Like HdrHistogram it keeps
counts in logarithmic buckets, never the samples, and sketches from several processes merge.

Adding to the sketch costs ~1.5 us in pure Python, as much as a whole echo on the fast variants,
so samples wait in a bounded buffer (at most ``FLUSH_AT``) and are folded in per distinct value
with ``Counter`` (C code): ~0.1 us a sample.

A recorder travels as JSON too (``to_json``/``from_json``): loadgen replicas on other hosts
each report their sketch, and the merge reads the quantiles once from the sum of the sketches.
The sketch is built from its parts here, so its bins are ours to read (ddsketch's own
serialization needs protobuf).
"""

from collections import Counter

from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

RELATIVE_ACCURACY = 0.01
FLUSH_AT = 65_536
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999))


class LatencyRecorder:
    """Latencies in whole microseconds; ``merge`` adds another process's recorder."""

    def __init__(self):
        self.store = DenseStore()  # positive latencies; zeros are counted apart by the sketch
        self.sketch = BaseDDSketch(
            LogarithmicMapping(RELATIVE_ACCURACY), self.store, DenseStore(), 0
        )
        self.max = 0
        self.pending = []

    def record(self, micros):
        self.pending.append(micros)
        if len(self.pending) >= FLUSH_AT:
            self.flush()

    def flush(self):
        if self.pending:
            self.max = max(self.max, max(self.pending))
            for value, count in Counter(self.pending).items():
                self.sketch.add(value, count)
            self.pending.clear()

    def merge(self, other):
        self.flush()
        other.flush()
        self.sketch.merge(other.sketch)
        self.max = max(self.max, other.max)

    @property
    def count(self):
        self.flush()
        return int(self.sketch.count)

    def __getstate__(self):  # sent between processes: fold the buffer in first
        self.flush()
        return self.__dict__

    def to_json(self):
        """The sketch as plain JSON: its non-empty bins (key, count), the zeros, the maximum."""
        self.flush()
        bins = [[self.store.offset + i, int(n)] for i, n in enumerate(self.store.bins) if n]
        return {
            "relative_accuracy": RELATIVE_ACCURACY,
            "bins": bins,
            "zero_count": self.count - sum(n for _, n in bins),
            "max": self.max,
        }

    @classmethod
    def from_json(cls, data):
        """The recorder ``to_json`` described; ValueError if it does not fit this loadgen's."""
        try:
            if data["relative_accuracy"] != RELATIVE_ACCURACY:
                raise ValueError(
                    f"a sketch of relative accuracy {data['relative_accuracy']}, "
                    f"this loadgen merges {RELATIVE_ACCURACY} only"
                )
            recorder = cls()
            for key, n in data["bins"]:
                recorder.store.add(int(key), int(n))
            zeros = int(data["zero_count"])
            recorder.max = int(data["max"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a latency sketch: {exc!r}") from None
        recorder.sketch = BaseDDSketch(
            LogarithmicMapping(RELATIVE_ACCURACY), recorder.store, DenseStore(), zeros
        )
        return recorder

    def summary(self):
        """The ``latency_us`` block of the JSON output, in whole us (all zero when empty)."""
        if self.count == 0:
            return {name: 0 for name, _ in PERCENTILES} | {"max": 0}
        out = {name: round(self.sketch.get_quantile_value(q)) for name, q in PERCENTILES}
        out["max"] = self.max
        return out
