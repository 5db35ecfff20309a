"""Random durations for simulated people: handling time, think time, customer patience.

Written as `fixed:2`, `uniform:1,3` or `exp:4` (exponential with mean 4), in the topology
and on the command line alike; a bare number is `fixed`, a two-number list `uniform`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

KINDS = ("fixed", "uniform", "exp")


@dataclass(frozen=True)
class Distribution:
    kind: str
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0

    @property
    def mean(self) -> float:
        return (self.a + self.b) / 2 if self.kind == "uniform" else self.a

    def __str__(self) -> str:
        number = lambda x: f"{x:g}"  # noqa: E731
        if self.kind == "uniform":
            return f"uniform:{number(self.a)},{number(self.b)}"
        return f"{self.kind}:{number(self.a)}"


def parse(spec: Any) -> Distribution:
    """A Distribution from `fixed:X`, `uniform:A,B`, `exp:MEAN`, a number or [A, B]; raises
    ValueError saying what is wrong."""
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, bool):
        raise ValueError(f"{spec!r} is not a duration")
    if isinstance(spec, (int, float)):
        return _checked(Distribution("fixed", float(spec)))
    if isinstance(spec, (list, tuple)):
        if len(spec) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in spec):
            raise ValueError(f"{spec!r}: a list must be [min, max] seconds")
        return _checked(Distribution("uniform", float(spec[0]), float(spec[1])))
    if not isinstance(spec, str):
        raise ValueError(f"{spec!r} is not a duration (fixed:X, uniform:A,B or exp:MEAN)")
    kind, colon, values = spec.strip().partition(":")
    if not colon:
        kind, values = "fixed", kind
    if kind not in KINDS:
        raise ValueError(f"{spec!r}: {kind!r} is not a distribution (known: {', '.join(KINDS)})")
    try:
        numbers = [float(v) for v in values.split(",")]
    except ValueError:
        raise ValueError(f"{spec!r}: {values!r} is not a number or a comma-separated pair") from None
    if len(numbers) != (2 if kind == "uniform" else 1):
        raise ValueError(f"{spec!r}: {kind} takes {'two numbers (min,max)' if kind == 'uniform' else 'one number'}")
    return _checked(Distribution(kind, *numbers))


def _checked(dist: Distribution) -> Distribution:
    if not (0 <= dist.a < math.inf and 0 <= dist.b < math.inf):
        raise ValueError(f"{dist}: durations must be finite and >= 0 seconds")
    if dist.kind == "uniform" and dist.a > dist.b:
        raise ValueError(f"{dist}: min must not exceed max")
    return dist


def parse_optional(spec: Any) -> Distribution | None:
    """Like parse, with `none`/null meaning no limit (a customer who never gives up)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("none", "inf", "")):
        return None
    return parse(spec)
