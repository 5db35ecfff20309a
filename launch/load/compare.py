"""`mroute load --compare BASE.json`: this run's figures beside an earlier run's (its
`--json` report), each change in percent. The figures are the ones `--fail-on` knows, so
that what a table shows moved is what a relative threshold can hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .thresholds import LOAD_FIGURES

# a figure whose rise is a loss: the table marks its change the other way round
HIGHER_IS_BETTER = {"closed_per_s"}


def read_base(path: str) -> dict[str, Any]:
    """An earlier run's report, or ValueError saying why it cannot be one."""
    try:
        base = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{path} cannot be read as JSON: {exc}")
    if not isinstance(base, dict) or "created" not in base or "plan" not in base:
        raise ValueError(f"{path} is no `mroute load --json` report (it has no 'created' and 'plan')")
    return base


def change_pct(base: float | None, now: float | None) -> float | None:
    """The change from base to now in percent; None where no percent says it (a figure
    missing on one side, or rising from 0)."""
    if base is None or now is None:
        return None
    if base == now:
        return 0.0
    return round(100 * (now - base) / base, 1) if base else None


def compare(report: dict[str, Any], base: dict[str, Any], path: str) -> dict[str, Any]:
    """{"base": what the base run was, "figures": [{figure, base, this, change_pct}]}."""
    rows = []
    for figure, read in LOAD_FIGURES.items():
        was, now = read(base), read(report)
        rows.append({"figure": figure, "base": round(was, 3) if was is not None else None,
                     "this": round(now, 3) if now is not None else None, "change_pct": change_pct(was, now)})
    run = base.get("run", {})
    return {"base": {"file": path, "date": run.get("date"), "command": run.get("command"), "plan": base["plan"]},
            "figures": rows}


def table(comparison: dict[str, Any]) -> Any:
    from rich.table import Table
    base = comparison["base"]
    title = f"against {base['file']}" + (f" ({base['date']})" if base.get("date") else "")
    out = Table(title=f"this run {title}")
    for column in ("figure", "base", "this run", "change"):
        out.add_column(column, justify="left" if column == "figure" else "right")

    def shown(value: float | None) -> str:
        return "no sample" if value is None else f"{value:,g}"
    for row in comparison["figures"]:
        change = row["change_pct"]
        if change is None:
            text = "-"
        else:
            worse = change < 0 if row["figure"] in HIGHER_IS_BETTER else change > 0
            text = f"{change:+.1f} %" if change else "0.0 %"
            text = f"[red]{text}[/]" if worse and change else text
        out.add_row(row["figure"], shown(row["base"]), shown(row["this"]), text)
    return out
