"""`mroute load --compare BASE.json` and thresholds relative to the base, without a run
(a real run compared with a base: tests/processes/test_load.py)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from launch.load import compare, thresholds
from launch.load.thresholds import CHAOS_FIGURES, LOAD_FIGURES, Threshold, judge, missed, parse

BASE = {"created": 100, "plan": {"rate": 10}, "run": {"date": "2026-01-01T00:00:00+00:00", "command": "mroute load"},
        "route_p99_us": 10_000.0, "route_p50_us": None, "errors": 0, "lost": 0, "closed_per_s": 50.0, "abandoned": 5}


def test_a_limit_may_be_the_base_runs_figure_moved_by_a_factor_or_an_amount():
    assert parse("routing_p99_ms < base * 1.2", LOAD_FIGURES, relative=True) == \
        Threshold("routing_p99_ms", "<", 1.2, "*")
    for text in ("routing_p99_ms < base * 1.2", "errors <= base + 5", "closed_per_s >= base - 10", "lost <= base"):
        assert str(parse(text, LOAD_FIGURES, relative=True)) == text
    assert str(parse("lost<=base", LOAD_FIGURES, relative=True)) == "lost <= base"
    with pytest.raises(ValueError, match="FIGURE OP base"):
        parse("routing_p99_ms < base / 2", LOAD_FIGURES, relative=True)
    # a command with no base run (chaos) refuses one
    with pytest.raises(ValueError, match="compares with a base run"):
        parse("lost <= base", CHAOS_FIGURES)


def test_a_relative_threshold_is_judged_against_the_base_and_says_its_limit():
    run = {**BASE, "route_p99_us": 11_000.0, "errors": 7, "closed_per_s": 45.0}
    held = [parse(t, LOAD_FIGURES, relative=True) for t in
            ("routing_p99_ms < base * 1.2", "errors <= base + 5", "closed_per_s >= base - 10", "routing_p50_ms < base")]
    verdict = judge(run, held, LOAD_FIGURES, BASE)
    assert [(r["passed"], r["limit"]) for r in verdict["thresholds"]] == \
        [(True, 12.0), (False, 5.0), (True, 40.0), (False, None)]
    assert missed(verdict) == ("errors <= base + 5 (was 7, limit 5); "
                               "routing_p50_ms < base (was no sample, limit none: no sample in the base)")
    # an absolute threshold's result is as before: no limit of its own
    assert "limit" not in judge(run, [parse("lost == 0", LOAD_FIGURES)], LOAD_FIGURES, BASE)["thresholds"][0]
    with pytest.raises(ValueError, match="--compare"):
        judge(run, held, LOAD_FIGURES)


def test_the_comparison_gives_each_figure_its_change_in_percent():
    run = {**BASE, "route_p99_us": 11_000.0, "errors": 3, "closed_per_s": 40.0, "abandoned": 5}
    comparison = compare.compare(run, BASE, "base.json")
    rows = {row["figure"]: row for row in comparison["figures"]}
    assert list(rows) == list(LOAD_FIGURES)
    assert rows["routing_p99_ms"] == {"figure": "routing_p99_ms", "base": 10.0, "this": 11.0, "change_pct": 10.0}
    assert rows["closed_per_s"]["change_pct"] == -20.0
    assert rows["lost"]["change_pct"] == 0.0             # 0 then 0: no change
    assert rows["errors"]["change_pct"] is None          # from 0: no percent says it
    assert rows["routing_p50_ms"]["change_pct"] is None  # no sample
    assert comparison["base"]["file"] == "base.json" and comparison["base"]["date"].startswith("2026")
    console = Console(width=120, record=True)
    console.print(compare.table(comparison))
    text = console.export_text()
    assert "against base.json" in text and "+10.0 %" in text and "-20.0 %" in text


def test_a_base_that_is_no_load_report_is_refused_saying_why(tmp_path):
    (tmp_path / "chaos.json").write_text(json.dumps({"lost": 0}))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="no `mroute load --json` report"):
        compare.read_base(str(tmp_path / "chaos.json"))
    with pytest.raises(ValueError, match="cannot be read as JSON"):
        compare.read_base(str(tmp_path / "broken.json"))
    (tmp_path / "base.json").write_text(json.dumps(BASE))
    assert compare.read_base(str(tmp_path / "base.json"))["created"] == 100
    assert thresholds.BASE_NEEDS == "--compare BASE.json"
