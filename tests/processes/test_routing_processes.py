"""The routing engine's rules through real processes and sockets."""

from __future__ import annotations

import json

import pytest

from ..helpers import base_topology


@pytest.fixture
def system(start_topology, chat_client):
    spec = base_topology("rules")
    spec["agents"][0]["attributes"] = {"billing": 8, "english": True}
    spec["agents"][1]["attributes"] = {"billing": 3, "english": True}
    spec["queues"] = {
        "sales": {"mrd": "chat", "offer_timeout": 0.5, "ttl": 60,
                  "steps": [{"expr": "billing >= 5", "timeout": 0.4}, {"expr": "english", "timeout": 0}]},
        # sales's steps with an offer that does not time out while the mroute CLI starts
        "widening": {"mrd": "chat", "offer_timeout": 30, "ttl": 60,
                     "steps": [{"expr": "billing >= 5", "timeout": 0.4}, {"expr": "english", "timeout": 0}]},
        "quick": {"mrd": "chat", "offer_timeout": 30, "ttl": 0.3},
        "calls": {"mrd": "voice", "offer_timeout": 30, "ttl": 60},
        "experts": {"mrd": "chat", "policy": "MOST_SKILLED", "steps": [{"expr": "billing > 0", "timeout": 0}]},
    }
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    return running, desk


def new_task(desk, queue="sales", **params):
    msg = desk.send("Task", {"Mrd": params.pop("mrd", "chat"), "ClientUniqueId": params.pop("client", "c"),
                             "params": [["queue", queue], *[[k, v] for k, v in params.items()]]})
    return desk.expect("TaskState", MsgId=msg)["TaskId"]


def test_an_offer_not_accepted_in_time_is_a_rona(system):
    _, desk = system
    desk.login("alice", "pw-alice")
    task = new_task(desk)
    desk.expect("TaskAgentSelected", TaskId=task, AgentId="alice")
    back = desk.expect("TaskState", TaskId=task, State="QUEUED", Code="RONA", timeout=5)
    assert back["AgentId"] == "alice"
    assert desk.expect("AgentState", AgentId="alice", State="NOT_READY")["ReasonCode"] == "RONA"
    desk.login("bob", "pw-bob")  # matches the second step only; the task has reached it
    desk.expect("TaskAgentSelected", TaskId=task, AgentId="bob", timeout=5)


def test_a_task_nobody_takes_closes_when_its_time_to_live_runs_out(system):
    _, desk = system
    task = new_task(desk, "quick")
    closed = desk.expect("TaskState", TaskId=task, State="CLOSED", timeout=5)
    assert closed["Code"] == "NO_AGENT_AVAILABLE"


def test_steps_widen_after_their_timeout_and_explain_shows_it(system):
    running, desk = system
    desk.login("bob", "pw-bob")
    task = new_task(desk, "widening")
    desk.expect("TaskAgentSelected", TaskId=task, AgentId="bob", timeout=5)
    out = running.cli("explain", task, "--json")
    assert out.returncode == 0, out.stderr
    decisions = json.loads(out.stdout)["decisions"]
    assert [d["event"] for d in decisions] == ["queued", "step", "offered"]
    assert decisions[-1]["step"] == 1 and decisions[-1]["policy"] == "LONGEST_AVAILABLE"
    text = running.cli("explain", task)
    assert "offered" in text.stdout and "bob" in text.stdout
    assert "the policy prefers: fewest tasks in hand, then available longest" in text.stdout
    assert "best of step 1: bob (0 tasks in hand, available" in text.stdout
    assert running.cli("explain", "no-such-task").returncode != 0


def test_priority_is_served_first(system):
    _, desk = system
    low = new_task(desk, client="low")
    high = new_task(desk, client="high", priority=5)
    desk.login("alice", "pw-alice")
    first = desk.expect("TaskAgentSelected", AgentId="alice")
    assert first["TaskId"] == high and low != high


def test_customer_leaving_and_operator_flush(system):
    running, desk = system
    waiting = new_task(desk)
    desk.send("TaskState", {"TaskId": waiting, "State": "CLOSED", "Code": "CANCELLED"})
    assert desk.expect("TaskState", TaskId=waiting, State="CLOSED")["Code"] == "CANCELLED"
    desk.login("alice", "pw-alice")
    offered = new_task(desk, "widening")  # (sales's 0.5 s offer could time out while the CLI starts)
    desk.expect("TaskAgentSelected", TaskId=offered, AgentId="alice")
    result = running.cli("flush", offered)
    assert result.returncode == 0, result.stderr
    assert desk.expect("TaskState", TaskId=offered, State="CLOSED")["Code"] == "FORCE_CLOSED"
    desk.expect("AgentState", AgentId="alice", State="READY")
    assert running.cli("flush", offered).returncode != 0  # closed already


def test_a_call_interrupts_chat(system):
    _, desk = system
    desk.login("alice", "pw-alice")
    desk.login("alice", "pw-alice", mrd="voice")
    call = new_task(desk, "calls", mrd="voice")
    desk.expect("TaskAgentSelected", TaskId=call, AgentId="alice")
    desk.expect("AgentState", AgentId="alice", Mrd="chat", State="INTERRUPTED")
    desk.send("TaskState", {"AgentId": "alice", "TaskId": call, "State": "ACTIVE"})
    desk.expect("TaskState", TaskId=call, State="ACTIVE")
    chat = new_task(desk)
    desk.login("bob", "pw-bob")
    assert desk.expect("TaskAgentSelected", TaskId=chat)["AgentId"] == "bob"
    desk.send("TaskState", {"AgentId": "alice", "TaskId": call, "State": "CLOSED", "Code": "DONE"})
    desk.expect("AgentState", AgentId="alice", Mrd="chat", State="READY")


def test_most_skilled_policy_and_returning_customer(system):
    _, desk = system
    desk.login("bob", "pw-bob")      # billing 3, READY first: longest available
    desk.login("alice", "pw-alice")  # billing 8
    task = new_task(desk, "experts", client="dora")
    desk.expect("TaskAgentSelected", TaskId=task, AgentId="alice")
    desk.send("TaskState", {"AgentId": "alice", "TaskId": task, "State": "ACTIVE"})
    desk.expect("TaskState", TaskId=task, State="ACTIVE")
    desk.send("TaskState", {"AgentId": "alice", "TaskId": task, "State": "CLOSED"})
    desk.expect("TaskState", TaskId=task, State="CLOSED")
    again = new_task(desk, "quick", client="dora")  # longest available alone would pick bob
    desk.expect("TaskAgentSelected", TaskId=again, AgentId="alice")
