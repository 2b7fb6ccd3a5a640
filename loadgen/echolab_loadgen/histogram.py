"""Latency recording on top of DDSketch, a mergeable quantile sketch with a 1% error bound.

Why DDSketch and not HdrHistogram: the ``hdrhistogram`` package needs its C extension and ships
it for x86_64 only, so the loadgen image would not build on an ARM laptop without a compiler;
``ddsketch`` is pure Python (one wheel for every Python and CPU).  Like HdrHistogram it keeps
counts in logarithmic buckets, never the samples, and sketches from several processes merge.

Adding to the sketch costs ~1.5 us in pure Python, as much as a whole echo on the fast variants,
so samples wait in a bounded buffer (at most ``FLUSH_AT``) and are folded in per distinct value
with ``Counter`` (C code): ~0.1 us a sample.
"""

from collections import Counter

from ddsketch import DDSketch

RELATIVE_ACCURACY = 0.01
FLUSH_AT = 65_536
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999))


class LatencyRecorder:
    """Latencies in whole microseconds; ``merge`` adds another process's recorder."""

    def __init__(self):
        self.sketch = DDSketch(RELATIVE_ACCURACY)
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

    def summary(self):
        """The ``latency_us`` block of the JSON output, in whole us (all zero when empty)."""
        if self.count == 0:
            return {name: 0 for name, _ in PERCENTILES} | {"max": 0}
        out = {name: round(self.sketch.get_quantile_value(q)) for name, q in PERCENTILES}
        out["max"] = self.max
        return out
