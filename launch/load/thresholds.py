"""`--fail-on EXPR`: a figure of a run's report against a limit, so that a load or a chaos
run can fail a CI job (k6's thresholds, Locust's exit codes). `routing_p99_ms < 50`,
`lost == 0`, `abandoned_pct <= 1`. A figure the run has no sample of (no task routed: no
percentile) misses its threshold: a check that cannot be made is not a pass."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "<": operator.lt, ">": operator.gt}
EXPR = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")
Figure = Callable[[dict[str, Any]], "float | None"]


def _ms(key: str) -> Figure:
    return lambda r: r[key] / 1000 if r.get(key) is not None else None


def _pct(key: str) -> Figure:
    return lambda r: 100.0 * r[key] / r["created"] if r.get("created") else None   # no task: no share


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

    def __str__(self) -> str:
        return f"{self.figure} {self.op} {self.limit:g}"


def parse(text: str, figures: dict[str, Figure]) -> Threshold:
    """A threshold, or ValueError saying what is wrong and what would be right."""
    match = EXPR.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not FIGURE OP NUMBER (e.g. routing_p99_ms<50; OP is one of < <= > >= ==)")
    figure, op, limit = match.groups()
    if figure not in figures:
        raise ValueError(f"{figure!r} is no figure of this run (known: {', '.join(figures)})")
    return Threshold(figure, op, float(limit))


def judge(report: dict[str, Any], thresholds: list[Threshold], figures: dict[str, Figure]) -> dict[str, Any]:
    """{"passed": all met, "thresholds": [{threshold, figure, actual, passed}]}."""
    results = []
    for threshold in thresholds:
        actual = figures[threshold.figure](report)
        passed = actual is not None and OPERATORS[threshold.op](actual, threshold.limit)
        results.append({"threshold": str(threshold), "figure": threshold.figure,
                        "actual": round(actual, 3) if actual is not None else None, "passed": passed})
    return {"passed": all(r["passed"] for r in results), "thresholds": results}


def missed(verdict: dict[str, Any]) -> str:
    """The thresholds a run missed, in words, for its last line."""
    def was(actual: float | None) -> str:
        return "no sample" if actual is None else f"{actual:g}"
    return "; ".join(f"{r['threshold']} (was {was(r['actual'])})" for r in verdict["thresholds"] if not r["passed"])


def click_option(figures: dict[str, Figure]) -> Callable[[Any], Any]:
    """`--fail-on EXPR`, repeatable; a malformed one is a usage error (exit 2)."""
    import click

    def convert(_ctx: Any, _param: Any, values: tuple[str, ...]) -> list[Threshold]:
        try:
            return [parse(value, figures) for value in values]
        except ValueError as exc:
            raise click.BadParameter(str(exc))
    return click.option("--fail-on", "fail_on", multiple=True, metavar="EXPR", callback=convert,
                        help=f"exit 1 unless FIGURE OP NUMBER holds (repeatable; OP: < <= > >= ==); "
                             f"figures: {', '.join(figures)}")
