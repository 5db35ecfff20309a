"""`--fail-on EXPR`: a figure of a run's report against a limit, so that a load or a chaos
run can fail a CI job (k6's thresholds, Locust's exit codes). `routing_p99_ms < 50`,
`lost == 0`, `abandoned_pct <= 1`. A figure the run has no sample of (no task routed: no
percentile) misses its threshold: a check that cannot be made is not a pass.

A load's limit may be relative to an earlier run's report (`mroute load --compare
BASE.json`): `routing_p99_ms < base * 1.2` (20 % slower at most), `errors <= base + 5`,
`closed_per_s >= base - 10`, `lost <= base`; `base` is that figure in the base report, and
a base with no sample of it misses, as the run's own would."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "<": operator.lt, ">": operator.gt}
NUMBER = r"-?\d+(?:\.\d+)?"
# FIGURE OP NUMBER, or FIGURE OP base [(*|+|-) NUMBER]
EXPR = re.compile(rf"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|==|<|>)\s*(?:({NUMBER})|base(?:\s*([*+-])\s*({NUMBER}))?)\s*$")
RELATIVE: dict[str, Callable[[float, float], float]] = {"*": operator.mul, "+": operator.add, "-": operator.sub}
BASE_NEEDS = "--compare BASE.json"
Figure = Callable[[dict[str, Any]], "float | None"]


def _ms(key: str) -> Figure:
    return lambda r: r[key] / 1000 if r.get(key) is not None else None


def _pct(key: str) -> Figure:
    # no task: no share; nor in a base report from an mroute that did not count it
    return lambda r: 100.0 * r[key] / r["created"] if r.get("created") and r.get(key) is not None else None


def _count(key: str) -> Figure:
    return lambda r: float(r[key]) if r.get(key) is not None else None


LOAD_FIGURES: dict[str, Figure] = {
    "routing_p50_ms": _ms("route_p50_us"), "routing_p90_ms": _ms("route_p90_us"),
    "routing_p95_ms": _ms("route_p95_us"), "routing_p99_ms": _ms("route_p99_us"),
    "queue_wait_p99_ms": _ms("queue_wait_p99_us"), "lost": _count("lost"), "unfinished": _count("unfinished"),
    "abandoned_pct": _pct("abandoned"), "refused_pct": _pct("refused"), "errors": _count("errors"),
    "closed_per_s": _count("closed_per_s")}
CHAOS_FIGURES: dict[str, Figure] = {
    key: _count(key) for key in ("lost", "unfinished", "double_assigned", "over_capacity", "created", "closed",
                                 "gaps", "missed", "kills")}


@dataclass(frozen=True)
class Threshold:
    figure: str
    op: str
    limit: float
    relative: str | None = None    # None: the limit is absolute; else how it applies to the base's figure

    def __str__(self) -> str:
        if self.relative is None:
            return f"{self.figure} {self.op} {self.limit:g}"
        by = "" if self.relative == "*" and self.limit == 1 else f" {self.relative} {self.limit:g}"
        return f"{self.figure} {self.op} base{by}"

    def bound(self, base: dict[str, Any] | None, figures: dict[str, Figure]) -> float | None:
        """The limit this run is held to: the number, or the base report's figure moved by
        it (None: the base has no sample of it)."""
        if self.relative is None:
            return self.limit
        if base is None:
            raise ValueError(f"{self} compares with a base run: give {BASE_NEEDS}")
        figure = figures[self.figure](base)
        return RELATIVE[self.relative](figure, self.limit) if figure is not None else None


def parse(text: str, figures: dict[str, Figure], relative: bool = False) -> Threshold:
    """A threshold, or ValueError saying what is wrong and what would be right."""
    match = EXPR.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not FIGURE OP NUMBER (e.g. routing_p99_ms<50; OP is one of < <= > >= ==)"
                         + (" or FIGURE OP base [* + - NUMBER] (e.g. routing_p99_ms < base * 1.2)" if relative
                            else ""))
    figure, op, limit, how, by = match.groups()
    if figure not in figures:
        raise ValueError(f"{figure!r} is no figure of this run (known: {', '.join(figures)})")
    if limit is not None:
        return Threshold(figure, op, float(limit))
    if not relative:
        raise ValueError(f"{text!r} compares with a base run, which this command has none of")
    return Threshold(figure, op, float(by) if by is not None else 1.0, how or "*")


def judge(report: dict[str, Any], thresholds: list[Threshold], figures: dict[str, Figure],
          base: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"passed": all met, "thresholds": [{threshold, figure, actual, passed}]}; a relative
    threshold's also says the limit it came to (`limit`: None when the base has no sample)."""
    results = []
    for threshold in thresholds:
        actual = figures[threshold.figure](report)
        limit = threshold.bound(base, figures)
        passed = actual is not None and limit is not None and OPERATORS[threshold.op](actual, limit)
        result = {"threshold": str(threshold), "figure": threshold.figure,
                  "actual": round(actual, 3) if actual is not None else None, "passed": passed}
        if threshold.relative is not None:
            result["limit"] = round(limit, 3) if limit is not None else None
        results.append(result)
    return {"passed": all(r["passed"] for r in results), "thresholds": results}


def missed(verdict: dict[str, Any]) -> str:
    """The thresholds a run missed, in words, for its last line."""
    def was(r: dict[str, Any]) -> str:
        actual = "no sample" if r["actual"] is None else f"{r['actual']:g}"
        if "limit" not in r:
            return actual
        return f"{actual}, limit {'none: no sample in the base' if r['limit'] is None else format(r['limit'], 'g')}"
    return "; ".join(f"{r['threshold']} (was {was(r)})" for r in verdict["thresholds"] if not r["passed"])


def click_option(figures: dict[str, Figure], relative: bool = False) -> Callable[[Any], Any]:
    """`--fail-on EXPR`, repeatable; a malformed one is a usage error (exit 2). With
    `relative`, a limit may be `base ...` (the command checks it has a base)."""
    import click

    def convert(_ctx: Any, _param: Any, values: tuple[str, ...]) -> list[Threshold]:
        try:
            return [parse(value, figures, relative) for value in values]
        except ValueError as exc:
            raise click.BadParameter(str(exc))
    against = (" or FIGURE OP base [* + - NUMBER], against the figure in --compare's report (e.g. "
               "'routing_p99_ms < base * 1.2')") if relative else ""
    return click.option("--fail-on", "fail_on", multiple=True, metavar="EXPR", callback=convert,
                        help=f"exit 1 unless FIGURE OP NUMBER holds{against} (repeatable; OP: < <= > >= ==); "
                             f"figures: {', '.join(figures)}")
