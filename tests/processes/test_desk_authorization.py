"""Desks change only what they own, through real processes (issue 14, found on main: desk B
closed desk A's ACTIVE task naming A's agent and got an Ack; cancelled A's queued task; a
Connect from a second desk moved a live agent and the first desk was told nothing)."""

from __future__ import annotations

import pytest

from ..helpers import base_topology


@pytest.fixture
def desks(start_topology, chat_client):
    def make(**comm):
        spec = base_topology("owners")
        spec["actors"]["comm"].update(comm)
        running = start_topology(spec)
        a, b = chat_client(running.endpoints(), "desk-a"), chat_client(running.endpoints(), "desk-b")
        a.handshake()
        b.handshake()
        return a, b
    return make


def refused(desk, type, body):
    msg = desk.send(type, body)
    return desk.expect("Error", MsgId=msg)


def test_a_desk_acts_only_for_its_own_agents_and_cancels_only_its_own_tasks(desks):
    a, b = desks()
    a.login("alice", "pw-alice")
    b.login("bob", "pw-bob", ready=False)
    queued = a.expect("TaskState", MsgId=a.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"}))["TaskId"]
    a.expect("TaskAgentSelected", TaskId=queued, AgentId="alice")
    a.send("TaskState", {"AgentId": "alice", "TaskId": queued, "State": "ACTIVE"})
    a.expect("TaskState", TaskId=queued, State="ACTIVE")
    closed = refused(b, "TaskState", {"AgentId": "alice", "TaskId": queued, "State": "CLOSED", "Code": "DONE"})
    assert (closed["Code"], closed["Field"]) == ("AUTHORIZATION_FAILURE", "ReplyTo")
    moved = refused(b, "Transfer", {"TaskId": queued, "OwnerAgentId": "alice", "RecipientAgentId": "bob"})
    assert moved["Code"] == "AUTHORIZATION_FAILURE"
    # a customer's task left waiting: alice is NOT_READY, bob too
    a.send("AgentState", {"AgentId": "alice", "State": "NOT_READY", "Mrd": "chat"})
    waiting = a.expect("TaskState", MsgId=a.send("Task", {"Mrd": "chat", "ClientUniqueId": "c2"}))["TaskId"]
    cancel = refused(b, "TaskState", {"TaskId": waiting, "State": "CLOSED", "Code": "CANCELLED"})
    assert cancel["Code"] == "AUTHORIZATION_FAILURE"
    for task, state in ((queued, "ACTIVE"), (waiting, "QUEUED")):   # nothing changed
        assert a.expect("TaskState", MsgId=a.send("GetTaskState", {"TaskId": task}))["State"] == state
    a.send("TaskState", {"TaskId": waiting, "State": "CLOSED", "Code": "CANCELLED"})   # its own desk may
    a.expect("TaskState", TaskId=waiting, State="CLOSED", Code="CANCELLED")
    # ids carry a random part: the next task's id is not the last one's number plus one
    epoch, number, token = queued.split("-")
    assert len(token) == 12 and f"{epoch}-{int(number) + 1}" != waiting


def test_a_session_moved_to_another_desk_tells_the_first(desks):
    a, b = desks()
    a.login("alice", "pw-alice")
    b.send("Connect", {"AgentId": "alice", "Password": "pw-alice", "Destination": "desk-b"})
    told = a.expect("AgentState", AgentId="alice", State="LOGOUT")
    assert told["ReasonCode"] == "SESSION_MOVED"
    assert b.agent_state("alice") == "READY"            # the session moved, states and all


def test_session_takeover_refuse_keeps_the_agent_where_it_is(desks):
    a, b = desks(session_takeover="refuse")
    a.login("alice", "pw-alice")
    err = refused(b, "Connect", {"AgentId": "alice", "Password": "pw-alice", "Destination": "desk-b"})
    assert (err["Code"], err["Field"]) == ("INVALID_STATE", "Destination") and "desk-a" in err["Reason"]
    assert a.agent_state("alice") == "READY"
