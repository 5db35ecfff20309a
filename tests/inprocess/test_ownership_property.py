"""A desk changes only what it owns (protocol.md 1.2, who may ask what), as a property:
random desks send random requests about random agents and tasks; every request from a desk
that does not own what it names is refused, the Error goes to that desk alone, and nothing
else changes (issue 24: on main desk B logged desk A's agent out with an AgentState, closed
its task with no ReplyTo, and read its agents with a Resync naming desk A)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st

from wire import states as S

from ..harness import Harness

AGENTS = ("a0", "a1", "a2", "a3")
DESKS = ("desk-a0", "desk-a1", "desk-a2", "desk-a3", "web", "intruder")


def world() -> tuple[Harness, list[str]]:
    """Four agents, each at its own desk: a0 holds an accepted task, a1 has one on offer,
    a2 is READY and a3 NOT_READY; a task waits; the customers' desk is `web`."""
    h = Harness(agents=4, mrds={"chat": {"max_tasks": 1, "interruptible": True, "default_queue": "chat-default"},
                                "voice": {"max_tasks": 1, "interruptible": False,
                                          "default_queue": "voice-default"}})
    for agent in AGENTS[:2]:
        h.login(agent)
    held, offered = h.task(), h.task()
    owner = h.comm.tasks.live[held].owner
    h.send("TaskState", {"TaskId": held, "AgentId": owner, "State": S.ACTIVE})
    h.login("a2")
    h.login("a3", ready=False)
    h.send("AgentState", {"AgentId": "a2", "State": S.NOT_READY, "Mrd": "chat"})
    waiting = h.task()
    h.send("AgentState", {"AgentId": "a2", "State": S.READY, "Mrd": "chat"})
    assert {h.comm.tasks.live[t].state for t in (held, offered)} == {S.ACTIVE, S.RESERVED}
    return h, [held, offered, waiting]


def fingerprint(h: Harness) -> Any:
    sessions = {a: (s.destination, {m: (p.state, p.wants, p.reason, p.offer, sorted(p.tasks))
                                    for m, p in s.mrds.items()}) for a, s in h.comm.agents.sessions.items()}
    tasks = {t: (task.state, task.owner, list(task.participants), task.code, task.origin)
             for t, task in h.comm.tasks.live.items()}
    return sessions, tasks, sorted(h.comm.desks.watched), len(h.comm.ledger.seen)


def owner_desk(h: Harness, agent: str) -> str | None:
    return h.comm.agents.destination(agent)


def request(draw: Any, tasks: list[str]) -> tuple[str, dict[str, Any]]:
    agent, other = draw(st.sampled_from(AGENTS)), draw(st.sampled_from(AGENTS))
    task = draw(st.sampled_from(tasks))
    kind = draw(st.sampled_from(["AgentState", "Login", "TaskState", "Cancel", "Transfer", "Conference",
                                 "Resync", "Heartbeat", "WrongPassword"]))
    if kind == "AgentState":
        return kind, {"AgentId": agent, "Mrd": "chat", "State": draw(st.sampled_from([S.READY, S.NOT_READY,
                                                                                    S.LOGOUT]))}
    if kind == "Login":
        return kind, {"AgentId": agent, "Mrd": draw(st.sampled_from(["chat", "voice"])), "Password": "pw"}
    if kind == "TaskState":
        return kind, {"TaskId": task, "AgentId": agent, "State": draw(st.sampled_from([S.ACTIVE, S.WRAP_UP,
                                                                                     S.CLOSED]))}
    if kind == "Cancel":
        return "TaskState", {"TaskId": task, "State": S.CLOSED, "Code": S.CANCELLED}
    if kind == "Transfer":
        return kind, {"TaskId": task, "OwnerAgentId": agent, "RecipientAgentId": other}
    if kind == "Conference":
        return kind, {"TaskId": task, "ConferenceOwner": agent, "ConferenceParticipant": other, "Mrd": "chat"}
    if kind == "WrongPassword":
        return "Connect", {"AgentId": agent, "Password": "guess", "Destination": draw(st.sampled_from(DESKS))}
    return kind, {"Destination": draw(st.sampled_from(DESKS))}


def sender_of(type: str, body: dict[str, Any]) -> str | None:
    """Who a request says it comes from: its ReplyTo; a Connect, Heartbeat or Resync with
    none comes from the Destination it names."""
    if body.get("ReplyTo") is None and type in ("Connect", "Heartbeat", "Resync"):
        return body["Destination"]
    return body.get("ReplyTo")


def owns(h: Harness, type: str, body: dict[str, Any], sender: str | None) -> bool:
    """Whether the ownership table lets `sender` ask this (it may still be refused)."""
    if sender is None or type == "Connect":   # Connect: only with the password, which these lack
        return False
    if type in ("Resync", "Heartbeat"):
        return body["Destination"] == sender
    if body.get("Code") == S.CANCELLED:
        task = h.comm.tasks.live.get(body["TaskId"])
        return task is not None and task.origin == sender
    agent = body.get("AgentId") or body.get("OwnerAgentId") or body.get("ConferenceOwner")
    return owner_desk(h, agent) == sender


@settings(max_examples=150)
@given(st.data())
def test_every_request_from_a_desk_that_does_not_own_it_is_refused_and_changes_nothing(data):
    h, tasks = world()
    for n in range(data.draw(st.integers(1, 12))):
        type, body = data.draw(st.composite(lambda draw: request(draw, tasks))())
        body = {**body, "ReplyTo": data.draw(st.sampled_from(DESKS + (None,))), "MsgId": f"m{n}"}
        sender = sender_of(type, body)
        if owns(h, type, body, sender):
            h.send(type, body)   # the owner may or may not be refused: the world moves on
            continue
        before, published = fingerprint(h), len(h.published)
        h.send(type, body)
        after = h.published[published:]
        assert fingerprint(h) == before, (type, body)
        assert [(dest, kind) for dest, kind, _ in after] == [(sender or "mroute.errors", "Error")], (type, body, after)
        err = after[0][2]
        assert err["MsgId"] == f"m{n}" and err["Code"] in (
            S.AUTHORIZATION_FAILURE, S.MISSING_FIELD, S.INVALID_STATE, S.NOT_FOUND), err
        if sender is None:
            assert (err["Code"], err["Field"]) == (S.MISSING_FIELD, "ReplyTo")


def test_a_desk_cannot_change_another_desks_agent():
    """Issue 24, 1: `mroute send AgentState '{"AgentId":"alice","State":"LOGOUT",...,
    "ReplyTo":"not-alices-desk"}'` logged alice out."""
    h, _ = world()
    for agent, state in (("a2", S.LOGOUT), ("a3", S.READY), ("a2", S.NOT_READY)):
        before = h.state(agent)
        h.send("AgentState", {"AgentId": agent, "State": state, "Mrd": "chat", "ReplyTo": "not-its-desk"})
        err = h.published_of("Error")[-1]
        assert (err["Code"], err["Field"]) == (S.AUTHORIZATION_FAILURE, "ReplyTo")
        assert h.state(agent) == before != state


def test_a_request_with_no_reply_to_never_acts_as_the_agents_desk():
    """Issue 24, 2: TaskState CLOSED and Transfer with no ReplyTo were taken as coming from
    the agent's desk."""
    h, (held, _, _) = world()
    owner = h.comm.tasks.live[held].owner
    for type, body in (("TaskState", {"TaskId": held, "AgentId": owner, "State": S.CLOSED, "Code": S.DONE}),
                       ("Transfer", {"TaskId": held, "OwnerAgentId": owner, "RecipientAgentId": "a2"}),
                       ("AgentState", {"AgentId": owner, "State": S.LOGOUT, "Mrd": "chat"})):
        h.send(type, {**body, "ReplyTo": None})
        err = h.published_of("Error")[-1]
        assert (err["Code"], err["Field"]) == (S.MISSING_FIELD, "ReplyTo")
        assert h.comm.tasks.live[held].state == S.ACTIVE and h.comm.tasks.live[held].owner == owner


def test_a_desk_resyncs_only_what_it_holds():
    """Issue 24, 3: Resync {Destination: deskA} sent by desk B returned desk A's agents."""
    h, _ = world()
    h.send("Resync", {"Destination": "desk-a0", "ReplyTo": "desk-a1", "MsgId": "r1"})
    assert not h.published_of("Snapshot")
    err = h.published_of("Error", MsgId="r1")[0]
    assert (err["Code"], err["Field"]) == (S.AUTHORIZATION_FAILURE, "Destination")
    h.send("Resync", {"Destination": "desk-a0", "ReplyTo": "desk-a0", "MsgId": "r2"})
    [snapshot] = h.published_of("Snapshot", MsgId="r2")
    assert [a["AgentId"] for a in snapshot["Agents"]] == ["a0"]


def test_a_msgid_is_its_senders_own():
    """A desk that sends another desk's MsgId again is not answered what that request
    did (a Task's id): it is another request, checked as any other."""
    h, _ = world()
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c9", "ReplyTo": "web", "MsgId": "shared"})
    created = h.published_of("TaskState", MsgId="shared")[0]["TaskId"]
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c9", "ReplyTo": "intruder", "MsgId": "shared"})
    answer = [b for d, t, b in h.published if d == "intruder" and b.get("MsgId") == "shared"][0]
    assert answer.get("TaskId") != created
