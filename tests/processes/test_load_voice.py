"""`mroute load --scenario FILE` with `voice:`: real runs in which the GC's simulated callers
ring agents who hold chats, the phones answer by themselves, the callers hang up, and every
chat and call is accounted for (the file's parsing alone: tests/inprocess/test_load_scenario.py;
the GC's callers without processes: tests/inprocess/test_voice.py)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from launch.load.run import calls_accounted

from ..helpers import MROUTE, base_topology
from .test_load import outcomes

# 6 agents on 2 Chat Servers, each with an extension (Comm logs it into voice); chats held
# 1.5 s, so that most calls ring an agent who holds one and interrupt it
SCENARIO = """
chat_servers: 2
agents_per_server: 3
drain: 20
customers: {rate: 4, duration: 5}
agents: {handle: fixed:1.5, think: fixed:0.05}
voice: {calls_per_s: 4, talk: fixed:0.3, ring: fixed:0.1}
"""


def voice_topology(**gc: object) -> dict:
    spec = base_topology("loadvoice")
    spec["agents"] = [{"id": f"v{i}", "password": f"pw-v{i}", "name": f"Voice {i}", "extension": f"20{i:02d}"}
                      for i in range(1, 7)]
    spec["actors"]["gc"] = {"role": "gc", "queues": {"sales": {"rate": 0}}, **gc}
    return spec


def run(tmp_path, spec: dict, scenario: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "scenario.yaml").write_text(scenario)
    return subprocess.run([*MROUTE, "load", "--quiet", "--json", "report.json", "--scenario", "scenario.yaml",
                           "--csv", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def test_voice_calls_interrupt_chats_are_answered_and_ended_and_nothing_is_lost(tmp_path):
    result = run(tmp_path, voice_topology(), SCENARIO)
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    # the chats: every one accounted for, none lost
    assert report["lost"] == 0 and report["unfinished"] == 0 and report["unacknowledged"] == 0
    assert outcomes(report) == report["created"] > 5
    voice = report["voice"]
    assert (voice["queue"], voice["talk"], voice["ring"], voice["calls_per_s"]) == ("sales", "fixed:0.3",
                                                                                     "fixed:0.1", 4.0)
    # Poisson arrivals over the seconds the GC placed calls: within 4 standard deviations
    expected = voice["calls_per_s"] * voice["calls_s"]
    assert abs(voice["calls_placed"] - expected) <= 4 * expected ** 0.5, voice
    # every call rang a free agent, whose phone answered; every caller hung up before the drain ended
    assert 0 < voice["calls_answered"] == voice["calls_ended"] == voice["calls_placed"], voice
    assert voice["calls_unfinished"] == voice["calls_dropped"] == voice["calls_live_at_start"] == 0
    assert voice["calls_placed"] == voice["calls_ended"] + voice["calls_dropped"] + voice["calls_unfinished"]
    assert calls_accounted(voice)
    assert report["chats_interrupted"] > 0, report
    assert "calls placed on the voice queue" in result.stdout and "chat agents interrupted by a call" in result.stdout


def test_voice_is_refused_before_anything_starts_without_a_gc_or_an_agent_with_an_extension(tmp_path):
    no_gc = voice_topology()
    del no_gc["actors"]["gc"]
    result = run(tmp_path, no_gc, SCENARIO, timeout=30)
    assert result.returncode == 2 and "voice: the topology has no gc actor" in result.stderr, result.stderr
    no_extension = voice_topology()
    for agent in no_extension["agents"]:
        del agent["extension"]
    result = run(tmp_path, no_extension, SCENARIO, timeout=30)
    assert result.returncode == 2 and "none of the 6 agents the Chat Servers desk has an extension" in result.stderr
    result = run(tmp_path, voice_topology(), SCENARIO.replace("ring:", "queue: billing, ring:"), timeout=30)
    assert result.returncode == 2 and "voice.queue: 'billing' is not a voice queue of the gc actor" in result.stderr


def test_an_attached_topologys_gc_places_the_calls_and_gets_its_settings_back(start_topology):
    from launch import client as control_client
    spec = voice_topology(auto_answer=None)
    spec["actors"]["gc"]["queues"] = {"sales": {"rate": 0, "talk": "exp:30"}}
    spec["actors"]["chat"] = {"role": "chat", "count": 2, "agents": 3, "rate": 0, "handle": "fixed:1.5",
                              "think": "fixed:0.05"}
    running = start_topology(spec)

    def gc_settings() -> dict:
        return control_client.ask(running.topology, "ask", {"role": "gc", "verb": "load", "body": {}})
    before = gc_settings()
    assert before == {"queues": {"sales": {"rate": 0.0, "talk": "exp:30"}}, "auto_answer": None}
    (running.directory / "scenario.yaml").write_text("drain: 20\ncustomers: {rate: 4, duration: 4}\n"
                                                    "voice: {calls_per_s: 4, talk: fixed:0.3, ring: fixed:0.1}\n")
    result = running.cli("load", "--attach", "--quiet", "--json", "report.json", "--scenario", "scenario.yaml",
                         timeout=90)
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads((running.directory / "report.json").read_text())
    voice = report["voice"]
    expected = voice["calls_per_s"] * voice["calls_s"]
    assert abs(voice["calls_placed"] - expected) <= 4 * expected ** 0.5, voice
    assert 0 < voice["calls_answered"] == voice["calls_ended"] == voice["calls_placed"], voice
    assert calls_accounted(voice) and voice["calls_dropped"] == voice["calls_unfinished"] == 0, voice
    assert report["chats_interrupted"] > 0 and report["lost"] == 0 and outcomes(report) == report["created"]
    assert gc_settings() == before   # the GC's own settings, given back when the run ended
    with pytest.raises(control_client.Refused) as refused:   # a bad value: BAD_FIELD naming it, nothing changed
        control_client.ask(running.topology, "ask", {"role": "gc", "verb": "load",
                                                     "body": {"queues": {"sales": {"rate": -2}}}})
    answer = refused.value.answer
    assert answer["code"] == "BAD_FIELD" and answer["reason"].startswith("queues.sales.rate: must be a number"), answer
    assert gc_settings() == before
