"""`mroute load`'s plan and report without running one: distributions, profiles, the live
line and a fleet's ports. Small real runs whose counts must add up: tests/processes/test_load.py."""

from __future__ import annotations

import random

import pytest
import yaml

from launch.load.plan import Profile, parse_profile
from launch.load.report import progress_line, stream_note
from wire.dist import parse, parse_optional

from ..helpers import base_topology


def test_durations_parse_and_sample_within_their_bounds():
    rng = random.Random(7)
    assert parse("fixed:2").sample(rng) == 2.0 and parse(3).sample(rng) == 3.0
    uniform = parse("uniform:1,3")
    assert all(1 <= uniform.sample(rng) <= 3 for _ in range(1000)) and str(uniform) == "uniform:1,3"
    assert parse([0.5, 1]) == parse("uniform:0.5,1")
    samples = [parse("exp:2").sample(rng) for _ in range(20_000)]
    assert min(samples) >= 0 and 1.9 < sum(samples) / len(samples) < 2.1
    assert parse_optional("none") is None and parse_optional(None) is None
    for bad in ("gamma:1", "uniform:3,1", "exp:-1", "uniform:1", "fixed:x", True, [1, 2, 3]):
        with pytest.raises(ValueError):
            parse(bad)


def test_profiles_reach_the_peak_rate():
    assert Profile().rate_at(0, 10, 100) == 100
    ramp = parse_profile("ramp")
    assert ramp.rate_at(0, 10, 100) == 0 and ramp.rate_at(5, 10, 100) == 50 and ramp.rate_at(10, 10, 100) == 100
    steps = parse_profile("steps:4")
    assert [steps.rate_at(t, 8, 100) for t in (0, 2.5, 4.5, 7.9)] == [25, 50, 75, 100]
    for bad in ("sawtooth", "steps:0", "ramp:3"):
        with pytest.raises(ValueError):
            parse_profile(bad)


def test_the_live_line_and_the_report_show_gaps_only_when_there_were_some():
    row = {"t": 3.0, "phase": "load", "offered_per_s": 10.0, "created_per_s": 10.0, "routed": 30, "closed": 20,
           "waiting": 1, "route_p50_us": 900.0, "route_p99_us": 2000.0, "gaps": 0, "missed": 0}
    assert "missed" not in progress_line(row)
    assert "missed 7 in 2 gaps" in progress_line({**row, "gaps": 2, "missed": 7})
    assert stream_note({"gaps": 0, "missed": 0, "resyncs": 0, "streams": 0}) == "no gap in Comm's numbered streams"
    note = stream_note({"gaps": 2, "missed": 7, "resyncs": 2, "streams": 1})
    assert "2 gaps" in note and "7 messages missed" in note and "resynchronised 2 times" in note


def test_a_fleet_never_takes_the_topologys_metrics_port(tmp_path):
    """`mroute load`, `bench` and `chaos` spawn a fleet beside a topology that may be
    running: its scrape target (topology.yaml: 9464) stays that topology's."""
    from launch.load.fleet import fleet_topology
    from launch.load.plan import LoadPlan
    from launch.topology import load
    spec = base_topology("metered")
    spec["metrics"] = {"port": 9464, "host": "127.0.0.1"}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    plan = LoadPlan(rate=1, duration=1, handle=parse("fixed:1"), think=parse("fixed:0"), patience=None)
    (tmp_path / "fleet").mkdir()
    written = fleet_topology(tmp_path / "topology.yaml", tmp_path / "fleet", 1, 2, plan)
    assert load(written).metrics["port"] == 0
