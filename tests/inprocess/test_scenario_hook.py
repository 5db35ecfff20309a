"""A load scenario's Python hook (wire/hook.py) in a simulated Chat Server, without a Comm:
what it changes of customers, offers and chats, what it watches and counts, and what it
may not break: a hook that raises or leaves a bad value is counted and the scenario's own
draw stands. Also how a hook is named and found (scenario file, topology entry)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from actors.chat import sim
from launch.load import scenario as scenarios
from launch.topocheck import TopologyError
from launch.topology import parse as parse_topology
from wire import hook as hooks

from ..helpers import base_topology
from .test_chat_sim import AGENTS, started

HOOK = '''
from wire.hook import Hook


class Vip(Hook):
    def on_customer(self, customer):
        if customer.number == 1:
            customer.data["vip"] = True
            customer.queue, customer.priority, customer.patience = "support", 9, None
            customer.params.append(["tier", "vip"])

    def on_offer(self, offer):
        if offer.customer is not None and offer.customer.data.get("vip"):
            offer.think = 0.0
        elif offer.agent_id == "a2":
            offer.think = None            # a2 leaves every other offer to time out

    def on_accept(self, chat):
        chat.handle = 7.0 if chat.customer is not None and chat.customer.data.get("vip") else chat.handle

    def on_message(self, message):
        self.sim.count("messages." + message.type)

    def on_close(self, closed):
        self.sim.count(f"{'vip' if closed.customer.data.get('vip') else 'other'}_{closed.outcome}")


class Broken(Hook):
    def on_customer(self, customer):
        customer.patience = "soon"

    def on_offer(self, offer):
        raise RuntimeError("the hook's own bug")

    def on_accept(self, chat):
        chat.handle = -1


class Unsendable(Hook):
    def on_customer(self, customer):
        if customer.number == 1:
            customer.params.append(["when", object()])      # JSON cannot say it
        elif customer.number == 2:
            customer.priority = 2 ** 64
        elif customer.number == 3:
            customer.queue = "nobody-s-queue"               # not the topology's
        else:
            raise SystemExit("a hook's sys.exit")

    def on_close(self, closed):
        self.sim.count("closed." + str(closed.code))
        self.sim.count("vip[/]")                            # not a name a table can show
        self.sim.later(float("inf"), print)


class FailsToStart(Hook):
    def __init__(self, sim):
        raise RuntimeError("no database")


class Misspelt(Hook):
    def on_ofer(self, offer):
        pass
'''


@pytest.fixture
def hook_file(tmp_path) -> Path:
    path = tmp_path / "vip.py"
    path.write_text(HOOK)
    return path


def hooked_desk(tmp_path, monkeypatch, spec: str):
    monkeypatch.setattr(sim, "read_credentials", lambda: {a: f"pw-{a}" for a in AGENTS})
    return started(str(tmp_path), hook=spec)


def test_the_hook_changes_its_customers_offers_and_chats_and_counts_what_it_watched(tmp_path, monkeypatch, hook_file):
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:Vip") as desk:
        desk.go_live()
        vip = desk.new_task()
        desk.server.numbers += 1
        desk.server.customers.new_task(desk.server.numbers)
        other = desk.requests("Task")[-1]
        # the VIP's Task was sent as the hook said; the other as the scenario (no queue)
        desk.answer(vip, "TaskState", {"TaskId": "e1-1", "State": "QUEUED", "ClientUniqueId": "c"})
        desk.answer(other["MsgId"], "TaskState", {"TaskId": "e1-2", "State": "QUEUED", "ClientUniqueId": "c"})
        assert dict(other["params"]) == {"channel": "web"}
        # patience None for the VIP: only the other customer's give_up timer runs
        assert desk.timers("give_up") == 1
        desk.offered("e1-1", "a2")          # a VIP: a2 takes it at once, whatever it does with others
        desk.offered("e1-2", "a2")          # not a VIP: left to time out
        assert desk.counts["ignored"] == 1
        assert [t.args for _w, _n, t in desk.server.loop.timers if t.fn.__name__ == "accept"] == [("a2", "e1-1")]
        # think 0 (the scenario's is 0.1 s): due at once
        assert [t.when <= time.monotonic() for _w, _n, t in desk.server.loop.timers
                if t.fn.__name__ == "accept"] == [True]
        desk.fire("accept")
        desk.publish("TaskState", {"TaskId": "e1-1", "State": "ACTIVE", "AgentId": "a2"})
        finish = [t for _w, _n, t in desk.server.loop.timers if t.fn.__name__ == "finish"]
        assert len(finish) == 1 and finish[0].when - time.monotonic() > 3   # the VIP's 7 s, not the scenario's 1 s
        desk.publish("TaskState", {"TaskId": "e1-1", "State": "CLOSED", "Code": "DONE", "AgentId": "a2"})
        desk.publish("TaskState", {"TaskId": "e1-2", "State": "CLOSED", "Code": "CANCELLED"})
        hook = desk.counts["hook"]
        assert hook["vip_closed"] == 1 and hook["other_abandoned"] == 1
        assert hook["messages.TaskAgentSelected"] == 2 and hook["messages.TaskState"] >= 5
        assert desk.counts["hook_errors"] == 0


def test_the_vip_task_names_the_hooks_queue_priority_and_params(tmp_path, monkeypatch, hook_file):
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:Vip") as desk:
        desk.go_live()
        desk.server.numbers += 1
        desk.server.customers.new_task(desk.server.numbers)
        params = dict(desk.requests("Task")[-1]["params"])
        assert params == {"channel": "web", "tier": "vip", "queue": "support", "priority": 9}


def test_a_hook_that_raises_or_leaves_bad_values_is_counted_and_the_scenario_stands(tmp_path, monkeypatch,
                                                                                   hook_file):
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:Broken") as desk:
        desk.go_live()
        desk.queued("e1-1")                  # patience "soon": the scenario's 30 s instead
        assert desk.timers("give_up") == 1
        desk.offered("e1-1", "a1")           # on_offer raises: the scenario's think time
        assert desk.timers("accept") == 1
        desk.fire("accept")
        desk.publish("TaskState", {"TaskId": "e1-1", "State": "ACTIVE", "AgentId": "a1"})
        assert desk.timers("finish") == 1    # handle -1: the scenario's 1 s
        assert desk.counts["hook_errors"] == 3 and desk.server.session.live


def test_what_a_hook_counts_is_bounded(tmp_path, monkeypatch, hook_file):
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:Vip") as desk:
        hooks_ = desk.server.hooks
        for i in range(100):
            hooks_.count(f"name{i}")
        hooks_.count("name0", 5)
        assert len(hooks_.counts) == 64 and hooks_.counts["name0"] == 6
        assert desk.counts["hook_names_dropped"] == 36
        hooks_.count("", 1)
        hooks_.count("x" * 65)
        hooks_.count("name1", 2 ** 70)   # a sum JSON could not carry: the stats would fail
        assert desk.counts["hook_errors"] == 3 and desk.counts["hook"]["name1"] == 1


def test_a_hook_is_checked_before_use_saying_what_is_wrong(tmp_path, hook_file):
    with pytest.raises(hooks.HookError, match="not a hook method"):
        hooks.load(f"{hook_file}:Misspelt")
    with pytest.raises(hooks.HookError, match="no class Nobody"):
        hooks.load(f"{hook_file}:Nobody")
    (tmp_path / "bad.py").write_text("import nothing_of_that_name\n")
    with pytest.raises(hooks.HookError, match="ModuleNotFoundError"):
        hooks.load(hooks.resolve("bad.py:X", tmp_path))
    for spec in ("vip.py", "vip.py:A:B", ":X", 3):
        with pytest.raises(hooks.HookError, match="FILE.py:CLASS"):
            hooks.resolve(spec, tmp_path)
    with pytest.raises(hooks.HookError, match="no file"):
        hooks.resolve("gone.py:X", tmp_path)


def test_a_scenario_names_its_hook_from_its_own_directory(tmp_path, hook_file):
    (tmp_path / "scenario.yaml").write_text("hook: vip.py:Vip\n")
    assert scenarios.read(tmp_path / "scenario.yaml").hook == f"{hook_file.resolve()}:Vip"
    (tmp_path / "wrong.yaml").write_text("hook: vip.py:Misspelt\n")
    with pytest.raises(scenarios.ScenarioError) as caught:
        scenarios.read(tmp_path / "wrong.yaml")
    assert caught.value.key == "hook" and "on_ofer" in caught.value.reason


def test_a_topology_names_a_chat_actors_hook_from_its_directory(tmp_path, hook_file):
    spec = base_topology(chat={"agents": 1, "hook": "vip.py:Vip"})
    topology = parse_topology(spec, tmp_path / "topology.yaml")
    assert topology.actors["chat"]["hook"] == f"{hook_file.resolve()}:Vip"
    spec["actors"]["chat"]["hook"] = "missing.py:Vip"
    with pytest.raises(TopologyError) as caught:
        parse_topology(spec, tmp_path / "topology.yaml")
    assert caught.value.key == "actors.chat.hook" and "no file" in caught.value.reason


def test_an_export_refuses_a_hook_file_its_pods_would_not_have(tmp_path, hook_file):
    from launch.export.plan import make_plan
    spec = base_topology(chat={"agents": 1, "hook": "vip.py:Vip"})
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(TopologyError) as caught:
        make_plan(tmp_path / "topology.yaml")
    assert caught.value.key == "actors.chat.hook" and "MODULE:CLASS" in caught.value.reason


def test_a_scenario_from_the_web_console_may_not_name_a_hook_and_nothing_is_imported(tmp_path):
    """The console's Load page sends a scenario's text: a hook in it would have our process
    import whatever file the request names. It is refused, and the file never runs."""
    from launch.topology import load
    from launch.web.loadrun import check
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom wire.hook import Hook\n"
                                      "class Vip(Hook):\n    pass\n")
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(base_topology(chat={"agents": 1})))
    with pytest.raises(ValueError, match="scenario: hook: only a scenario file run by mroute load"):
        check({"scenario": f"hook: {tmp_path / 'evil.py'}:Vip\n"}, load(tmp_path / "topology.yaml"))
    assert not marker.exists()


def test_a_hook_that_leaves_what_cannot_be_sent_is_counted_and_the_scenario_s_task_goes(tmp_path, monkeypatch,
                                                                                       hook_file):
    """Found in review: a param JSON cannot say, or a priority past 64 bits, failed only when
    the Task was encoded, out of the arrivals' timer (the server died); a queue of another name
    grew the counts by queue without end. Each is counted and the scenario's Task is sent."""
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:Unsendable") as desk:
        desk.go_live()
        for number in range(1, 5):
            desk.server.customers.new_task(number)
        assert [dict(t["params"]) for t in desk.requests("Task")] == [{"channel": "web"}] * 4
        assert desk.counts["hook_errors"] == 4 and desk.counts["queues"] == {}


def test_what_a_hook_counts_or_schedules_wrongly_is_refused_and_its_close_hears_comms_code(tmp_path, monkeypatch,
                                                                                          hook_file):
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:Unsendable") as desk:
        desk.go_live()
        msg_id = desk.new_task()
        desk.answer(msg_id, "Error", {"Code": "NOT_FOUND", "Type": "Task"})
        assert desk.counts["hook"] == {"closed.NOT_FOUND": 1}   # Comm's code, not OVERLOADED
        # the markup-like name and the endless delay: refused, counted (with the bad param)
        assert desk.counts["hook_errors"] == 3 and desk.timers("print") == 0


def test_a_hook_whose_making_fails_is_said_before_the_load_starts_and_a_server_runs_without_it(tmp_path,
                                                                                              monkeypatch,
                                                                                              hook_file):
    (tmp_path / "scenario.yaml").write_text("hook: vip.py:FailsToStart\n")
    with pytest.raises(scenarios.ScenarioError) as caught:
        scenarios.read(tmp_path / "scenario.yaml")
    assert caught.value.key == "hook" and "RuntimeError: no database" in caught.value.reason
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:FailsToStart") as desk:
        desk.go_live()
        assert desk.server.hooks is None and desk.new_task()


def test_a_hook_closes_only_a_chat_its_agent_holds(tmp_path, monkeypatch, hook_file):
    with hooked_desk(tmp_path, monkeypatch, f"{hook_file}:Vip") as desk:
        desk.go_live()
        desk.queued("e1-1")
        desk.offered("e1-1", "a1")
        desk.server.hooks.close("a1", "e1-1")     # offered, not accepted: nothing to close
        assert desk.requests("TaskState") == []
        desk.fire("accept")
        desk.publish("TaskState", {"TaskId": "e1-1", "State": "ACTIVE", "AgentId": "a1"})
        desk.sent()
        desk.server.hooks.close("a1", "e1-1")
        assert [(b["State"], b["Code"]) for b in desk.requests("TaskState")] == [("CLOSED", "DONE")]


def test_a_spawned_fleet_keeps_the_base_topologys_chat_hook_unless_the_scenario_names_one(tmp_path, hook_file):
    """Found in review: the fleet's chat actor was written from the load's plan alone, so a
    hook the base topology's Chat Servers name was dropped without a word."""
    from launch.load.fleet import fleet_topology
    from launch.load.plan import LoadPlan
    from wire.dist import parse
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(base_topology(chat={"agents": 1, "hook": "vip.py:Vip"})))
    plan = LoadPlan(rate=1, duration=1, handle=parse("fixed:1"), think=parse("fixed:0"), patience=None)
    for given, expected in ((None, f"{hook_file.resolve()}:Vip"), ("elsewhere.py:Other", "elsewhere.py:Other")):
        plan.hook = given
        (tmp_path / "fleet").mkdir(exist_ok=True)
        written = yaml.safe_load(fleet_topology(tmp_path / "topology.yaml", tmp_path / "fleet", 1, 2, plan).read_text())
        assert written["actors"]["chat"]["hook"] == expected
