"""The whole documented flow against real processes over real sockets, played by a Chat
Server that knows only protocol.md and the endpoints the topology resolves."""

from __future__ import annotations

import pytest

from ..helpers import base_topology


@pytest.fixture
def system(start_topology, chat_client):
    running = start_topology(base_topology("flow"))
    desk = chat_client(running.endpoints(), "desk-1")
    desk.handshake()
    return running, desk



def unnumbered(body):
    """A message without the numbering every message to a destination carries."""
    assert isinstance(body.pop("Seq"), int) and isinstance(body.pop("Stream"), str)
    return body

def test_task_is_routed_accepted_transferred_conferenced_and_closed(system, chat_client):
    running, desk = system
    customer = chat_client(running.endpoints(), "web-1")
    customer.handshake()
    desk.login("alice", "pw-alice")
    desk.login("bob", "pw-bob")
    desk.login("agent1", "secret")

    customer.send("Task", {"Mrd": "chat", "ClientUniqueId": "cust-42", "name": "Carol",
                           "params": [["topic", "billing"]], "MsgId": "web-1-task-1"})
    queued = customer.expect("TaskState", State="QUEUED", MsgId="web-1-task-1")
    task_id = queued["TaskId"]
    assert queued["MRD"] == "chat" and queued["ClientUniqueId"] == "cust-42"

    # Routed: the customer's Chat Server and the chosen agent's both hear of it.
    selected = customer.expect("TaskAgentSelected", TaskId=task_id)
    assert selected["Status"] == "RESERVED"
    owner = selected["AgentId"]
    assert desk.expect("TaskAgentSelected", TaskId=task_id)["AgentId"] == owner
    desk.expect("AgentState", AgentId=owner, State="RESERVED")

    desk.send("TaskState", {"AgentId": owner, "TaskId": task_id, "State": "ACTIVE"})
    customer.expect("TaskState", TaskId=task_id, State="ACTIVE", AgentId=owner)
    desk.expect("AgentState", AgentId=owner, State="ACTIVE")

    desk.send("GetTaskState", {"TaskId": task_id, "AgentId": owner})
    state = desk.expect("TaskState", TaskId=task_id, State="ACTIVE", Code="")
    assert state["AgentId"] == owner and state["MRD"] == "chat"

    others = [a for a in ("alice", "bob", "agent1") if a != owner]
    desk.send("Transfer", {"TaskId": task_id, "OwnerAgentId": owner, "RecipientAgentId": others[0]})
    moved = customer.expect("TaskAgentTransferred", TaskId=task_id)
    assert unnumbered(moved) == {"TaskId": task_id, "AgentId": others[0], "PreviousAgentId": owner}
    desk.expect("TaskAgentTransferred", TaskId=task_id)
    new_owner = others[0]

    desk.send("Conference", {"TaskId": task_id, "ConferenceOwner": new_owner,
                             "ConferenceParticipant": others[1], "Mrd": "chat"})
    conf = customer.expect("TaskConferenced", TaskId=task_id)
    assert unnumbered(conf) == {"TaskId": task_id, "OwnerAgentId": new_owner, "ParticipantAgentId": others[1]}
    desk.send("GetTaskState", {"TaskId": task_id})
    assert desk.expect("TaskState", TaskId=task_id, State="ACTIVE", Participants=[others[1]])["AgentId"] == new_owner

    desk.send("TaskState", {"AgentId": new_owner, "TaskId": task_id, "State": "CLOSED", "Code": "DONE"})
    closed = customer.expect("TaskState", TaskId=task_id, State="CLOSED")
    assert closed["Code"] == "DONE"
    desk.send("GetTaskState", {"TaskId": task_id})
    desk.expect("TaskState", TaskId=task_id, State="CLOSED", Code="DONE")
    # Everyone who held it is free again.
    for agent in (new_owner, others[1]):
        desk.send("GetAgentState", {"AgentId": agent, "Mrd": "chat"})
        desk.expect("AgentState", AgentId=agent, State="READY")


def test_waiting_task_is_routed_when_an_agent_becomes_ready(system):
    _, desk = system
    desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
    task_id = desk.expect("TaskState", State="QUEUED")["TaskId"]
    desk.login("alice", "pw-alice")
    assert desk.expect("TaskAgentSelected", TaskId=task_id)["AgentId"] == "alice"


def test_capacity_is_respected_and_freed(system):
    _, desk = system
    desk.login("alice", "pw-alice")  # max_tasks 2 on chat
    ids = []
    for n in range(3):
        desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}"})
        ids.append(desk.expect("TaskState", State="QUEUED")["TaskId"])
    for task_id in ids[:2]:
        desk.expect("TaskAgentSelected", TaskId=task_id, AgentId="alice")
        desk.send("TaskState", {"AgentId": "alice", "TaskId": task_id, "State": "ACTIVE"})
        desk.expect("TaskState", TaskId=task_id, State="ACTIVE")
    desk.expect("AgentState", AgentId="alice", State="BUSY")
    desk.send("GetTaskState", {"TaskId": ids[2]})
    assert desk.expect("TaskState", TaskId=ids[2])["State"] == "QUEUED"
    desk.send("TaskState", {"AgentId": "alice", "TaskId": ids[0], "State": "CLOSED", "Code": "DONE"})
    desk.expect("TaskAgentSelected", TaskId=ids[2], AgentId="alice")


def test_refusals_name_the_code_and_field(system):
    _, desk = system
    desk.send("Connect", {"AgentId": "alice", "Password": "wrong", "Destination": "desk-1"})
    err = desk.expect("Error", Type="Connect")
    assert err["Code"] == "AUTHORIZATION_FAILURE" and err["Field"] == "Password"

    desk.login("alice", "pw-alice", ready=False)
    desk.send("AgentState", {"AgentId": "alice", "State": "BUSY", "Mrd": "chat"})
    assert desk.expect("Error", Type="AgentState")["Code"] == "INVALID_STATE"
    desk.send("AgentState", {"AgentId": "alice", "State": "SLEEPING", "Mrd": "chat"})
    assert desk.expect("Error", Type="AgentState")["Code"] == "BAD_FIELD"

    desk.login("bob", "pw-bob")
    desk.send("AgentState", {"AgentId": "alice", "State": "READY", "Mrd": "chat"})
    desk.expect("AgentState", AgentId="alice", State="READY")
    desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
    task_id = desk.expect("TaskState", State="QUEUED")["TaskId"]
    owner = desk.expect("TaskAgentSelected", TaskId=task_id)["AgentId"]
    desk.send("TaskState", {"AgentId": owner, "TaskId": task_id, "State": "ACTIVE"})
    desk.expect("TaskState", TaskId=task_id, State="ACTIVE")
    intruder = "bob" if owner == "alice" else "alice"
    desk.send("Transfer", {"TaskId": task_id, "OwnerAgentId": intruder, "RecipientAgentId": intruder})
    err = desk.expect("Error", Type="Transfer")
    assert err["Code"] == "AUTHORIZATION_FAILURE" and err["Field"] == "OwnerAgentId"
    desk.send("Transfer", {"TaskId": "no-such-task", "OwnerAgentId": owner, "RecipientAgentId": intruder})
    assert desk.expect("Error", Type="Transfer")["Code"] == "NOT_FOUND"
    desk.send("Task", {"Mrd": "fax", "ClientUniqueId": "c2"})
    err = desk.expect("Error", Type="Task")
    assert err["Code"] == "NOT_FOUND" and err["Field"] == "Mrd"


def test_bad_input_gets_an_error_and_the_actor_keeps_serving(system, chat_client):
    running, desk = system
    watcher = chat_client(running.endpoints(), "mroute.errors")
    watcher.handshake()
    desk.send_raw(b"Task", b"{not json")
    assert watcher.expect("Error")["Code"] == "BAD_MESSAGE"
    desk.send_raw(b"Teleport", b'{"ReplyTo": "desk-1", "MsgId": "m1"}')
    err = desk.expect("Error", MsgId="m1")
    assert err["Code"] == "BAD_MESSAGE" and err["Type"] == "Teleport"
    desk.send("Login", {"AgentId": "alice", "Mrd": "chat", "MsgId": "m2"})
    err = desk.expect("Error", MsgId="m2")
    assert (err["Code"], err["Field"]) == ("MISSING_FIELD", "Password")
    desk.send("Task", {"Mrd": "chat", "ClientUniqueId": 7, "MsgId": "m3"})
    err = desk.expect("Error", MsgId="m3")
    assert (err["Code"], err["Field"]) == ("BAD_FIELD", "ClientUniqueId")
    desk.send_raw(b"only-one-frame")
    assert watcher.expect("Error")["Code"] == "BAD_MESSAGE"
    # still serving, with the MRD key spelt either way
    desk.send("Task", {"MRD": "chat", "ClientUniqueId": "c9", "MsgId": "m4"})
    assert desk.expect("TaskState", MsgId="m4")["State"] == "QUEUED"
    assert all(a["state"] == "RUNNING" and a["restarts"] == 0 for a in running.status()["actors"])


def test_a_retried_task_is_created_once(system):
    _, desk = system
    for _ in range(3):
        desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1", "MsgId": "same-id"})
    ids = {desk.expect("TaskState", MsgId="same-id")["TaskId"] for _ in range(3)}
    assert len(ids) == 1


def test_logout_with_a_task_puts_it_back_in_the_queue(system):
    _, desk = system
    desk.login("alice", "pw-alice")
    desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
    task_id = desk.expect("TaskState", State="QUEUED")["TaskId"]
    desk.expect("TaskAgentSelected", TaskId=task_id, AgentId="alice")
    desk.send("TaskState", {"AgentId": "alice", "TaskId": task_id, "State": "ACTIVE"})
    desk.expect("TaskState", TaskId=task_id, State="ACTIVE")
    desk.send("AgentState", {"AgentId": "alice", "State": "LOGOUT", "Mrd": "chat"})
    back = desk.expect("TaskState", TaskId=task_id, State="QUEUED", Code="AGENT_LOGOUT")
    assert back["AgentId"] == "alice"
    desk.login("bob", "pw-bob")
    desk.expect("TaskAgentSelected", TaskId=task_id, AgentId="bob")
