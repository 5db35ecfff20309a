"""A mergeable latency histogram, the form in which processes report latencies.

Log-linear buckets in microseconds (16 per power of two, about 6 % wide), so a process
records millions of samples in constant memory and the supervisor merges the reports of
many Chat Servers exactly, bucket by bucket.
"""

from __future__ import annotations

from typing import Any

_SUB_BITS = 4
_SUB = 1 << _SUB_BITS          # buckets per power of two
_LINEAR = 2 * _SUB             # below this every microsecond has its own bucket


def bucket_of(us: int) -> int:
    if us < _LINEAR:
        return max(us, 0)
    shift = us.bit_length() - (_SUB_BITS + 1)
    return _SUB * shift + (us >> shift)


def bucket_low(index: int) -> int:
    if index < _LINEAR:
        return index
    shift = index // _SUB - 1
    return (index % _SUB + _SUB) << shift


def bucket_mid(index: int) -> float:
    if index < _LINEAR:
        return float(index)
    shift = index // _SUB - 1
    return bucket_low(index) + (1 << shift) / 2


class Histogram:
    __slots__ = ("counts", "count", "max_us")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.max_us = 0

    def record(self, seconds: float) -> None:
        us = round(seconds * 1e6)
        index = bucket_of(us)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.count += 1
        if us > self.max_us:
            self.max_us = us

    def merge(self, other: "Histogram") -> None:
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.count += other.count
        self.max_us = max(self.max_us, other.max_us)

    def minus(self, earlier: "Histogram") -> "Histogram":
        """What was recorded since `earlier` (a snapshot of this same histogram)."""
        out = Histogram()
        out.counts = {i: n - earlier.counts.get(i, 0) for i, n in self.counts.items()
                      if n - earlier.counts.get(i, 0) > 0}
        out.count = self.count - earlier.count
        out.max_us = self.max_us  # the max since is not known from two snapshots: an upper bound
        return out

    def percentile(self, p: float) -> float | None:
        """The p-th percentile (0-100) in microseconds, or None with no samples: placed
        within its bucket by rank (samples taken as spread evenly across it), so that
        percentiles falling in one bucket differ, rather than all reading its middle."""
        if not self.count:
            return None
        rank = max(1, round(p / 100 * self.count))
        seen = 0
        for index in sorted(self.counts):
            n = self.counts[index]
            if seen + n >= rank:
                low, high = bucket_low(index), bucket_low(index + 1)
                return min(low + (high - low) * (rank - seen - 0.5) / n, float(self.max_us))
            seen += n
        return float(self.max_us)

    def mean(self) -> float | None:
        """The mean in microseconds (from bucket middles: within 3 %), or None."""
        if not self.count:
            return None
        return sum(bucket_mid(i) * n for i, n in self.counts.items()) / self.count

    def low(self) -> float | None:
        """The least sample, to its bucket's lower edge, in microseconds, or None."""
        return float(bucket_low(min(self.counts))) if self.counts else None

    def to_json(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "count": self.count,
                "max_us": self.max_us}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Histogram":
        hist = cls()
        hist.counts = {int(k): int(v) for k, v in data.get("counts", {}).items()}
        hist.count = int(data.get("count", 0))
        hist.max_us = int(data.get("max_us", 0))
        return hist
