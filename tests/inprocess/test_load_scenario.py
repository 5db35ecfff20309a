"""`mroute load --scenario FILE`: the file's keys, its refusals naming the key, and the flags
that win over it (real runs of a scenario: tests/processes/test_load.py)."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from launch.load.plan import Profile, VoicePlan
from launch.load.scenario import ScenarioError, check_queues, parse, voice_queue
from wire.dist import parse as dist

ISSUE_EXAMPLE = """
chat_servers: 2
agents_per_server: 20
customers:
  rate: 15
  duration: 20
  queues: {sales: 3, support: 1}
  priority: {sales: 0, support: 5}
  patience: exp:60
agents:
  handle: exp:1.5
  think: uniform:0.05,0.3
  ignore_offer: 0.1
  transfer: 0.1
  conference: 0.05
  breaks: {every: exp:15, length: 'uniform:1,3'}
  shifts: {logout: 0.05, every: exp:30}
voice:
  calls_per_s: 0.5
"""


def test_the_issues_scenario_parses_to_flags_behaviours_and_voice():
    scenario = parse(yaml.safe_load(ISSUE_EXAMPLE))
    assert scenario.flags == {"servers": 2, "agents": 20, "rate": 15.0, "duration": 20.0, "patience": dist("exp:60"),
                              "handle": dist("exp:1.5"), "think": dist("uniform:0.05,0.3")}
    behaviour = scenario.behaviour
    assert behaviour.queues == {"sales": 3.0, "support": 1.0} and behaviour.priority == {"sales": 0, "support": 5}
    assert behaviour.ignore_offer == 0.1 and behaviour.transfer == 0.1 and behaviour.conference == 0.05
    assert behaviour.breaks.every == dist("exp:15") and behaviour.breaks.length == dist("uniform:1,3")
    assert behaviour.shifts.logout == 0.05 and behaviour.shifts.every == dist("exp:30")
    assert behaviour.to_json()["breaks"] == {"every": "exp:15", "length": "uniform:1,3"}
    assert parse({"customers": {"profile": "steps:3"}}).flags == {"profile": Profile("steps", 3)}
    assert parse(None).flags == {} and parse({}).behaviour.queues == {}
    # voice: the issue's calls a second; the callers talk exp:20 and the phones ring fixed:1 unless told
    assert scenario.voice == VoicePlan(0.5, None, dist("exp:20"), dist("fixed:1"))
    assert parse({"voice": {"calls_per_s": 3, "queue": "sales", "talk": "fixed:0.3", "ring": 0.1}}).voice == \
        VoicePlan(3.0, "sales", dist("fixed:0.3"), dist("fixed:0.1"))
    assert parse({}).voice is None and parse({"voice": None}).voice is None
    assert VoicePlan(2, "sales", dist("fixed:0.3")).gc_body(2.0) == \
        {"queues": {"sales": {"rate": 2.0, "talk": "fixed:0.3"}}, "auto_answer": "fixed:1"}
    assert VoicePlan(2, "sales").stop_body() == {"queues": {"sales": {"rate": 0.0}}}
    with pytest.raises(ValueError, match="not resolved"):   # the queue is the topology's: voice_queue says it
        scenario.voice.gc_body(2.0)


@pytest.mark.parametrize("data, key, why", [
    ({"agents": {"transfer": 1.1}}, "agents.transfer", "from 0 to 1"),
    ({"agents": {"transfer": 0.7, "conference": 0.4}}, "agents.conference", "together at most 1"),
    ({"voice": {"calls_per_s": 0}}, "voice.calls_per_s", "number > 0"),
    ({"voice": {"calls_per_s": "many"}}, "voice.calls_per_s", "number > 0"),
    ({"voice": {"calls_per_s": 1000.5}}, "voice.calls_per_s", "at most 1000 calls a second"),
    ({"voice": {"queue": "sales"}}, "voice.calls_per_s", "missing"),
    ({"voice": {"calls_per_s": 1, "queue": 7}}, "voice.queue", "name of a voice queue"),
    ({"voice": {"calls_per_s": 1, "talk": "none"}}, "voice.talk", "not a number"),
    ({"voice": {"calls_per_s": 1, "ring": "gamma:1"}}, "voice.ring", "not a distribution"),
    ({"voice": {"calls_per_s": 1, "patience": 3}}, "voice.patience", "unknown key"),
    ({"voice": 0.5}, "voice", "expected a mapping"),
    ({"chat_server": 2}, "chat_server", "unknown key"),
    ({"customers": {"rates": 2}}, "customers.rates", "unknown key"),
    ({"customers": 3}, "customers", "expected a mapping"),
    ({"chat_servers": 0}, "chat_servers", "integer >= 1"),
    ({"agents_per_server": "ten"}, "agents_per_server", "integer >= 1"),
    ({"customers": {"rate": -1}}, "customers.rate", "number >= 0"),
    ({"customers": {"duration": 0.1}}, "customers.duration", "number >= 0.5"),
    ({"customers": {"profile": "sawtooth"}}, "customers.profile", "not an arrival profile"),
    ({"customers": {"patience": "gamma:3"}}, "customers.patience", "not a distribution"),
    ({"agents": {"handle": "uniform:3,1"}}, "agents.handle", "min must not exceed max"),
    ({"customers": {"queues": {"sales": -1}}}, "customers.queues.sales", "weight must be a number >= 0"),
    ({"customers": {"queues": {"sales": 0}}}, "customers.queues", "at least one weight"),
    ({"customers": {"queues": ["sales"]}}, "customers.queues", "expected a mapping"),
    ({"customers": {"queues": {"sales": 1}, "priority": {"support": 2}}}, "customers.priority.support",
     "not one of the queues"),
    ({"customers": {"priority": {"sales": "high"}}}, "customers.priority.sales", "must be an integer"),
    ({"agents": {"ignore_offer": 1.5}}, "agents.ignore_offer", "from 0 to 1"),
    ({"agents": {"ignore_offer": True}}, "agents.ignore_offer", "from 0 to 1"),
    ({"agents": {"breaks": {"every": "exp:10"}}}, "agents.breaks.length", "missing"),
    ({"agents": {"breaks": {"every": "exp:10", "length": 1, "reason": "lunch"}}}, "agents.breaks.reason",
     "unknown key"),
    ({"agents": {"breaks": {"every": 0, "length": 1}}}, "agents.breaks.every", "above 0"),
    ({"agents": {"shifts": {"logout": 2, "every": "exp:3"}}}, "agents.shifts.logout", "from 0 to 1"),
    ({"agents": {"shifts": {"logout": 0.1}}}, "agents.shifts.every", "missing"),
    ([1, 2], "(top)", "a mapping of keys"),
    (yaml.safe_load("agents: {breaks: {every: exp:1, length: uniform:1,3}}"), "agents.breaks.3", "quote a uniform"),
])
def test_a_bad_scenario_is_refused_naming_the_key_and_why(data, key, why):
    with pytest.raises(ScenarioError) as caught:
        parse(data)
    assert caught.value.key == key and why in caught.value.reason


def test_the_queues_customers_choose_are_the_topologys_on_the_chat_servers_mrd():
    queues = {"sales": {"mrd": "chat"}, "support": {"mrd": "chat"}, "calls": {"mrd": "voice"}}
    check_queues(parse({"customers": {"queues": {"sales": 1, "support": 2}}}), queues, "chat")
    with pytest.raises(ScenarioError, match="customers.queues.billing: not a queue of the topology"):
        check_queues(parse({"customers": {"queues": {"billing": 1}}}), queues, "chat")
    with pytest.raises(ScenarioError, match="customers.queues.calls: on MRD 'voice'"):
        check_queues(parse({"customers": {"queues": {"calls": 1}}}), queues, "chat")


def test_a_flag_given_on_the_command_line_wins_over_the_scenario_and_a_bad_file_is_a_usage_error(tmp_path,
                                                                                                  monkeypatch):
    from launch.commands import load as command
    from launch.load import plan as planmod
    seen = {}

    class Stop(Exception):
        pass

    def caught(**plan):   # the plan the command built, before any fleet starts
        seen.update(rate=plan["rate"], duration=plan["duration"], handle=str(plan["handle"]),
                    queues=plan["behaviour"].queues)
        raise Stop
    monkeypatch.setattr(planmod, "LoadPlan", caught)
    monkeypatch.chdir(tmp_path)   # no topology.yaml: nothing could start even if the plan went through
    (tmp_path / "s.yaml").write_text("customers: {rate: 15, duration: 20, queues: {chat-default: 1}}\n"
                                     "agents: {handle: exp:1.5}\n")
    runner = CliRunner()
    result = runner.invoke(command.load_command, ["--scenario", str(tmp_path / "s.yaml"), "--rate", "3"])
    assert isinstance(result.exception, Stop), result.output
    assert seen == {"rate": 3.0, "duration": 20.0, "handle": "exp:1.5", "queues": {"chat-default": 1.0}}
    (tmp_path / "bad.yaml").write_text("voice: {calls_per_s: -0.5}\n")
    result = runner.invoke(command.load_command, ["--scenario", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2
    assert "voice.calls_per_s: must be a number > 0, not -0.5" in result.output


VOICE_MRDS = {"chat": {}, "voice": {}}
WITH_EXTENSION = [{"id": "alice", "extension": "1001"}, {"id": "bob"}]


def test_voice_calls_go_to_the_gcs_first_queue_or_the_one_named_and_need_a_topology_that_can_take_them():
    scenario = parse({"voice": {"calls_per_s": 1}})
    gc = {"comm": {"role": "comm"}, "gc": {"role": "gc", "count": 1, "queues": {"sales": {}, "support": {}}}}
    assert voice_queue(scenario, gc, VOICE_MRDS, WITH_EXTENSION) == VoicePlan(1.0, "sales")
    assert voice_queue(parse({"voice": {"calls_per_s": 1, "queue": "support"}}), gc, VOICE_MRDS,
                       WITH_EXTENSION).queue == "support"
    assert voice_queue(parse({}), {}, {}, []) is None   # no voice: nothing asked of the topology
    for args, key, why in (
            ((scenario, {"comm": {"role": "comm"}}, VOICE_MRDS, WITH_EXTENSION), "voice", "no gc actor"),
            ((scenario, {"gc": {"role": "gc", "count": 0}}, VOICE_MRDS, WITH_EXTENSION), "voice", "no gc actor"),
            ((parse({"voice": {"calls_per_s": 1, "queue": "billing"}}), gc, VOICE_MRDS, WITH_EXTENSION),
             "voice.queue", "'billing' is not a voice queue of the gc actor (it has: sales, support)"),
            ((scenario, gc, {"chat": {}}, WITH_EXTENSION), "voice", "no voice MRD"),
            ((scenario, gc, VOICE_MRDS, [{"id": "bob"}, {"id": "carol", "extension": ""}]), "voice",
             "none of the 2 agents the Chat Servers desk has an extension")):
        with pytest.raises(ScenarioError) as caught:
            voice_queue(*args)
        assert caught.value.key == key and why in caught.value.reason


def test_voice_with_attach_pods_is_refused_before_any_pod_is_asked(tmp_path):
    from launch.commands import load as command
    (tmp_path / "s.yaml").write_text("voice: {calls_per_s: 1}\n")
    result = CliRunner().invoke(command.load_command, ["--scenario", str(tmp_path / "s.yaml"), "--attach-pods",
                                                       "nowhere.invalid:8080"])
    assert result.exit_code == 2 and "voice: --attach-pods drives Chat Servers only" in result.output


def test_the_web_consoles_load_page_takes_a_voice_scenario_checked_as_the_command_checks_it(tmp_path):
    from launch.topology import load
    from launch.web.loadrun import check, plan_of
    spec = {"name": "t", "mrds": {"chat": {"max_tasks": 2, "interruptible": True},
                                  "voice": {"max_tasks": 1, "interruptible": False}},
            "agents": [{"id": "alice", "password": "p", "extension": "1001"}, {"id": "bob", "password": "p"}],
            "actors": {"comm": {"role": "comm"}, "mre": {"role": "mre"}, "gc": {"role": "gc", "queues": {"sales": {}}},
                       "chat": {"role": "chat", "agents": 2}}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    topology = load(tmp_path / "t.yaml")
    plan, _servers = plan_of({"scenario": "voice: {calls_per_s: 2, talk: fixed:3}"}, topology)
    assert plan.voice == VoicePlan(2.0, "sales", dist("fixed:3"), dist("fixed:1"))
    assert check({"scenario": "voice: {calls_per_s: 2}"}, topology)["voice"]["queue"] == "sales"
    assert plan_of({}, topology)[0].voice is None
    with pytest.raises(ValueError, match="scenario: voice.queue: 'support' is not a voice queue"):
        plan_of({"scenario": "voice: {calls_per_s: 2, queue: support}"}, topology)
    with pytest.raises(ValueError, match="scenario: voice.calls_per_s: must be at most 1000 calls a second"):
        plan_of({"scenario": "voice: {calls_per_s: 5000}"}, topology)
