"""What a new user meets first (issue 25, point 8), without starting anything: the README's
examples on the default topology, and uptime as the web console says it. What `make run`
installs, a standalone load, the lock and `port_base`: tests/processes/test_first_contact.py."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..helpers import base_topology

REPO = Path(__file__).resolve().parents[2]


def test_the_readmes_scale_examples_fit_the_default_topology():
    """Every `mroute scale NAME=N` the README shows starts on topology.yaml as it is: no
    Chat Server short of agents (`mroute scale chat=3` was refused: 22 agents for 30 desks)."""
    from launch.topology import load
    from wire.desking import short_of_agents
    topology = load(REPO / "topology.yaml")
    examples = re.findall(r"`mroute scale (\w+)=(\d+)`", (REPO / "README.md").read_text())
    assert ("chat", "3") in examples, examples
    for name, count in examples:
        actors = {**topology.actors, name: {**topology.actors[name], "count": int(count)}}
        assert short_of_agents(actors, len(topology.agents)) == {}, (
            f"mroute scale {name}={count}: the directory has {len(topology.agents)} agents")


def test_the_readmes_gc_example_names_an_agent_of_the_default_topology():
    from launch.topology import load
    agents = {a["id"]: a for a in load(REPO / "topology.yaml").agents}
    for agent, password, extension in re.findall(r"`mroute gc (\w+) Login (\S+) (\d+)`",
                                                  (REPO / "README.md").read_text()):
        assert agents[agent]["password"] == password and agents[agent]["extension"] == extension


def test_status_says_uptime_as_the_web_console_does(tmp_path, monkeypatch):
    """313 s reads "5 min" in both (launch/web/static/app.js `seconds`)."""
    from click.testing import CliRunner

    from launch import client
    from launch.commands.status import status
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(base_topology("aged")))
    answer = {"name": "aged", "supervisor": {"pid": 4242}, "actors": [
        {"name": "comm.1", "role": "comm", "pid": 101, "state": "RUNNING", "uptime": 313.0, "restarts": 0},
        {"name": "mre.1", "role": "mre", "pid": 102, "state": "RUNNING", "uptime": 5400.0, "restarts": 1},
        {"name": "gc.1", "role": "gc", "pid": None, "state": "FATAL", "uptime": 0.0, "restarts": 5}]}
    monkeypatch.setattr(client, "ask", lambda *args, **kwargs: answer)
    monkeypatch.setenv("COLUMNS", "120")
    shown = CliRunner().invoke(status, ["-f", str(tmp_path / "topology.yaml")])
    rows = {line.split()[1]: line for line in shown.output.splitlines() if line.startswith("│")}
    assert "5 min" in rows["comm.1"] and "313" not in rows["comm.1"], shown.output
    assert "1.5 h" in rows["mre.1"] and " - " in rows["gc.1"], shown.output
    from launch.commands.common import human_seconds
    # app.js: s < 60 ? `${s.toFixed(0)} s` : s < 3600 ? `${(s / 60).toFixed(0)} min` : `${(s / 3600).toFixed(1)} h`
    assert [human_seconds(s) for s in (0.4, 59.4, 59.6, 150, 3599, 3600, 4500)] == \
        ["0 s", "59 s", "60 s", "3 min", "60 min", "1.0 h", "1.3 h"]
