"""Comm's rules as a plain object: sessions, the agent state machine, tasks."""

from __future__ import annotations

import pytest

from actors.comm.state import Task
from wire import states as S
from wire.codec import WireError

from ..harness import Harness


def refused(h: Harness, type: str, body: dict) -> WireError:
    with pytest.raises(WireError) as info:
        h.apply(type, body)
    return info.value


def test_transition_table_matches_the_protocol():
    assert S.agent_move_allowed(S.NOT_READY, S.READY)
    assert S.agent_move_allowed(S.BUSY, S.PENDING_NOT_READY)
    assert not S.agent_move_allowed(S.READY, S.BUSY)
    assert not S.agent_move_allowed(S.PENDING_NOT_READY, S.READY)
    assert not S.agent_move_allowed(S.LOGOUT, S.READY)
    assert all(S.agent_move_allowed(state, S.LOGOUT) for state in S.AGENT_STATES)
    assert all(S.agent_move_allowed(S.UNKNOWN, state) for state in S.AGENT_STATES)


def test_login_lands_in_not_ready_and_is_published_to_the_agents_chat_server():
    h = Harness()
    h.login("a0", ready=False)
    assert h.state("a0") == S.NOT_READY
    assert ("desk-a0", "AgentState") == h.published[-1][:2]
    assert h.published[-1][2]["StateChangeTime"].endswith("Z")


def test_connect_and_login_refusals():
    h = Harness()
    assert refused(h, "Connect", {"AgentId": "a0", "Password": "no", "Destination": "d"}).code == \
        S.AUTHORIZATION_FAILURE
    assert refused(h, "Connect", {"AgentId": "zed", "Password": "pw", "Destination": "d"}).code == \
        S.AUTHORIZATION_FAILURE
    assert refused(h, "Login", {"AgentId": "a0", "Password": "pw", "Mrd": "chat"}).code == S.INVALID_STATE
    h.send("Connect", {"AgentId": "a0", "Password": "pw", "Destination": "desk-a0"})
    err = refused(h, "Login", {"AgentId": "a0", "Password": "pw", "Mrd": "fax"})
    assert (err.code, err.field) == (S.NOT_FOUND, "Mrd")


def test_agent_may_ask_only_for_ready_not_ready_and_logout():
    h = Harness()
    h.login("a0", ready=False)
    for state in (S.BUSY, S.RESERVED, S.ACTIVE, S.INTERRUPTED):
        err = refused(h, "AgentState", {"AgentId": "a0", "State": state, "Mrd": "chat"})
        assert (err.code, err.field) == (S.INVALID_STATE, "State")
    assert refused(h, "AgentState", {"AgentId": "a0", "State": "NAP", "Mrd": "chat"}).code == S.BAD_FIELD


def test_not_ready_with_tasks_is_pending_until_the_last_one_closes():
    h = Harness()
    h.login("a0")
    task = h.task()
    assert h.offer_of("a0") == task and h.state("a0") == S.RESERVED
    h.send("TaskState", {"AgentId": "a0", "TaskId": task, "State": S.ACTIVE})
    assert h.state("a0") == S.ACTIVE
    h.send("AgentState", {"AgentId": "a0", "State": S.NOT_READY, "Mrd": "chat", "ReasonCode": "7"})
    assert h.state("a0") == S.PENDING_NOT_READY
    second = h.task()
    assert h.offer_of("a0") is None  # no new work while pending
    err = refused(h, "AgentState", {"AgentId": "a0", "State": S.READY, "Mrd": "chat"})
    assert err.code == S.INVALID_STATE
    h.send("TaskState", {"AgentId": "a0", "TaskId": task, "State": S.CLOSED, "Code": S.DONE})
    assert h.state("a0") == S.NOT_READY
    assert h.comm.agents.sessions["a0"].mrds["chat"].reason == "7"
    assert h.comm.tasks.live[second].state == S.QUEUED


def test_busy_at_the_limit_then_active_again():
    h = Harness(agents=1)
    h.login("a0")
    tasks = [h.task(client=f"c{i}") for i in range(3)]
    for task in tasks[:2]:
        h.send("TaskState", {"AgentId": "a0", "TaskId": task, "State": S.ACTIVE})
    assert h.state("a0") == S.BUSY
    assert h.comm.tasks.live[tasks[2]].state == S.QUEUED
    h.send("TaskState", {"AgentId": "a0", "TaskId": tasks[0], "State": S.CLOSED})
    assert h.comm.tasks.live[tasks[2]].owner == "a0" and h.state("a0") == S.RESERVED


def test_wrap_up_makes_the_agent_work_ready_and_ready_ends_it():
    h = Harness(agents=1)
    h.login("a0")
    task = h.task()
    h.send("TaskState", {"AgentId": "a0", "TaskId": task, "State": S.ACTIVE})
    h.send("TaskState", {"AgentId": "a0", "TaskId": task, "State": S.WRAP_UP})
    assert h.state("a0") == S.WORK_READY
    h.send("AgentState", {"AgentId": "a0", "State": S.READY, "Mrd": "chat"})
    assert h.state("a0") == S.READY
    assert task in h.comm.tasks.closed and h.comm.tasks.closed[task].code == S.DONE


def test_accepting_needs_the_offered_agent():
    h = Harness()
    h.login("a0")
    task = h.task()
    h.login("a1")
    err = refused(h, "TaskState", {"AgentId": "a1", "TaskId": task, "State": S.ACTIVE})
    assert (err.code, err.field) == (S.AUTHORIZATION_FAILURE, "AgentId")
    assert refused(h, "TaskState", {"AgentId": "a0", "TaskId": "nope", "State": S.ACTIVE}).code == S.NOT_FOUND


def test_customer_cancel_removes_a_waiting_task_and_rescinds_an_offer():
    h = Harness()
    waiting = h.task()
    h.send("TaskState", {"TaskId": waiting, "State": S.CLOSED, "Code": S.CANCELLED, "ReplyTo": "web"})
    h.login("a0")
    assert h.offer_of("a0") is None and waiting in h.comm.tasks.closed
    offered = h.task()
    assert h.offer_of("a0") == offered
    h.send("TaskState", {"TaskId": offered, "State": S.CLOSED, "Code": S.CANCELLED, "ReplyTo": "web"})
    assert h.offer_of("a0") is None and h.state("a0") == S.READY
    assert not h.mre.tasks


def test_not_ready_while_an_offer_rings_sends_the_task_back():
    h = Harness()
    h.login("a0")
    task = h.task()
    h.send("AgentState", {"AgentId": "a0", "State": S.NOT_READY, "Mrd": "chat"})
    assert h.state("a0") == S.NOT_READY
    assert h.comm.tasks.live[task].state == S.QUEUED
    h.login("a1")
    assert h.offer_of("a1") == task


def test_transfer_and_conference_rules():
    h = Harness()
    for agent in ("a0", "a1", "a2"):
        h.login(agent)
    task = h.task()
    owner = h.comm.tasks.live[task].owner
    h.send("TaskState", {"AgentId": owner, "TaskId": task, "State": S.ACTIVE})
    other, third = [a for a in ("a0", "a1", "a2") if a != owner][:2]
    err = refused(h, "Transfer", {"TaskId": task, "OwnerAgentId": other, "RecipientAgentId": third})
    assert (err.code, err.field) == (S.AUTHORIZATION_FAILURE, "OwnerAgentId")
    h.send("AgentState", {"AgentId": third, "State": S.NOT_READY, "Mrd": "chat"})
    err = refused(h, "Transfer", {"TaskId": task, "OwnerAgentId": owner, "RecipientAgentId": third})
    assert (err.code, err.field) == (S.INVALID_STATE, "RecipientAgentId")
    h.send("Transfer", {"TaskId": task, "OwnerAgentId": owner, "RecipientAgentId": other})
    assert h.comm.tasks.live[task].owner == other
    assert h.published_of("TaskAgentTransferred", TaskId=task, AgentId=other, PreviousAgentId=owner)
    assert task in h.mre.routers["chat"].agents[other].active
    assert task not in h.mre.routers["chat"].agents[owner].active
    err = refused(h, "Conference", {"TaskId": task, "ConferenceOwner": other, "ConferenceParticipant": third,
                                       "Mrd": "chat"})
    assert err.code == S.INVALID_STATE
    h.send("Conference", {"TaskId": task, "ConferenceOwner": other, "ConferenceParticipant": owner,
                             "Mrd": "chat"})
    assert h.published_of("TaskConferenced", TaskId=task, OwnerAgentId=other, ParticipantAgentId=owner)
    # the participant leaves; the task stays with its owner
    h.send("TaskState", {"AgentId": owner, "TaskId": task, "State": S.CLOSED, "Code": S.DONE})
    assert h.comm.tasks.live[task].participants == [] and h.comm.tasks.live[task].owner == other
    assert task not in h.mre.routers["chat"].agents[owner].active


def test_selection_for_an_agent_that_moved_meanwhile_goes_back_to_the_queue():
    h = Harness()
    h.login("a0")
    h.login("a1")
    task_id = "t-x"
    # The MRE chose a0, but before Comm heard of it a0 went NOT_READY.
    h.comm.tasks.live[task_id] = Task(task_id, "chat", "c", "", {}, "web")
    h.mre.on_new_task({"MRD": "chat", "TaskId": task_id, "params": {}})
    chosen = h.mre.tasks[task_id].offered_to
    h.apply("AgentState", {"AgentId": chosen, "State": S.NOT_READY, "Mrd": "chat"})
    assert h.comm.tasks.live[task_id].owner not in (None, chosen)
    assert h.comm.tasks.counters["offers_refused"] == 1


def test_a_participant_ending_wrap_up_leaves_the_owner_with_the_task():
    h = Harness()
    h.login("a0")
    h.login("a1")
    task = h.task()
    owner = h.comm.tasks.live[task].owner
    other = "a1" if owner == "a0" else "a0"
    h.send("TaskState", {"AgentId": owner, "TaskId": task, "State": S.ACTIVE})
    h.send("Conference", {"TaskId": task, "ConferenceOwner": owner, "ConferenceParticipant": other,
                             "Mrd": "chat"})
    h.send("TaskState", {"AgentId": owner, "TaskId": task, "State": S.WRAP_UP})
    assert h.state(other) == S.WORK_READY
    h.send("AgentState", {"AgentId": other, "State": S.READY, "Mrd": "chat"})
    assert h.comm.tasks.live[task].state == S.WRAP_UP and h.comm.tasks.live[task].owner == owner
    assert h.state(owner) == S.WORK_READY and h.state(other) == S.READY


def test_time_to_live_counts_only_time_spent_waiting():
    h = Harness(agents=2)
    h.login("a0")
    task = h.task()
    h.send("TaskState", {"AgentId": "a0", "TaskId": task, "State": S.ACTIVE})
    h.advance(1000)  # a long chat, far past the queue's 300 s time to live
    h.send("AgentState", {"AgentId": "a0", "State": S.LOGOUT, "Mrd": "chat"})
    assert h.comm.tasks.live[task].state == S.QUEUED  # requeued, not expired
    h.advance(299)
    assert h.comm.tasks.live[task].state == S.QUEUED
    h.advance(2)
    assert h.comm.tasks.closed[task].code == S.NO_AGENT_AVAILABLE


def test_logging_out_of_voice_ends_the_interruption():
    h = Harness(agents=2)
    h.login("a0")
    h.login("a0", mrd="voice")
    call = h.task(mrd="voice")
    h.send("TaskState", {"AgentId": "a0", "TaskId": call, "State": S.ACTIVE})
    assert h.state("a0") == S.INTERRUPTED
    h.send("AgentState", {"AgentId": "a0", "State": S.LOGOUT, "Mrd": "voice"})
    assert h.state("a0") == S.READY
    chat = h.task()
    assert h.offer_of("a0") == chat


def test_a_retry_of_an_agent_request_is_answered_not_applied_twice():
    h = Harness()
    h.login("a0", ready=False)
    body = {"AgentId": "a0", "State": S.READY, "Mrd": "chat", "MsgId": "m-1"}
    h.send("AgentState", dict(body))
    first = h.published_of("AgentState", AgentId="a0", MsgId="m-1")
    assert [a["State"] for a in first] == [S.READY]
    changes = len(h.published_of("AgentState", AgentId="a0"))
    moves = len([m for m in h.to_mre])  # nothing more reaches the MRE: not applied twice
    h.send("AgentState", dict(body))
    answers = h.published_of("AgentState", AgentId="a0")
    assert len(answers) == changes + 1 and answers[-1]["MsgId"] == "m-1" and answers[-1]["State"] == S.READY
    assert len(h.to_mre) == moves and h.comm.ledger.duplicates == 1


# Voice through the Generic Connector (protocol.md 2.5) ---------------------------------------

def voice_harness():
    h = Harness(agents=2)
    h.commands = []

    def to_gc(frames):  # a GC command [name#who, params] as (name, who, *params)
        name, who = frames[0].decode().split("#", 1)
        h.commands.append((name, who, *(frames[1].decode().split(",") if frames[1] else ())))
    h.comm = h.new_comm(gc_send=to_gc)
    h.sync()
    h.comm.voice.live = True  # as if the GC had answered our Hello
    for agent in h.directory.values():
        agent["extension"] = "100" + agent["id"][1:]
    return h


def test_an_agent_with_an_extension_is_logged_into_voice_at_connect():
    h = voice_harness()
    h.login("a0")
    assert ("Connect", "a0", "comm.1", "pw") in h.commands and ("Login", "a0", "pw", "1000") in h.commands
    h.comm.voice.on_state({"type": "State", "agentId": "a0", "state": "NOT_READY", "reasonCode": ""})
    h.pump()
    assert h.state("a0", "voice") == S.NOT_READY
    assert h.published_of("AgentState", AgentId="a0", Mrd="voice", State=S.NOT_READY)


def test_a_call_interrupts_chat_and_the_earlier_state_returns():
    h = voice_harness()
    h.login("a0")
    h.login("a1")
    for state in ("READY", "RESERVED"):
        h.comm.voice.on_state({"type": "State", "agentId": "a0", "state": state, "reasonCode": ""})
        h.pump()
    assert h.state("a0") == S.INTERRUPTED and h.state("a0", "voice") == S.RESERVED
    chat = h.task()
    assert h.comm.tasks.live[chat].owner == "a1"
    for state, voice in (("TALKING", S.BUSY), ("HOLD", S.BUSY)):
        h.comm.voice.on_state({"type": "State", "agentId": "a0", "state": state, "reasonCode": ""})
        h.pump()
        assert h.state("a0") == S.INTERRUPTED and h.state("a0", "voice") == voice
    h.comm.voice.on_state({"type": "State", "agentId": "a0", "state": "WORK_READY", "reasonCode": ""})
    h.pump()
    assert h.state("a0") == S.READY  # the call is over: wrap-up on voice does not hold chat
    second = h.task(client="c2")
    assert h.offer_of("a0") == second


def test_voice_requests_go_to_the_voice_side():
    h = voice_harness()
    h.login("a0")
    h.comm.voice.on_state({"type": "State", "agentId": "a0", "state": "NOT_READY", "reasonCode": ""})
    h.pump()
    h.commands.clear()
    for state, reason, command in ((S.READY, "", ("MakeReady", "a0")),
                                   (S.NOT_READY, "2", ("MakeNotReadyWithReason", "a0", "2")),
                                   (S.LOGOUT, "", ("AbruptDisconnect", "a0"))):
        h.send("AgentState", {"AgentId": "a0", "State": state, "Mrd": "voice", "ReasonCode": reason})
        assert h.commands[-1] == command
    h.comm.voice.on_state({"type": "State", "agentId": "a0", "state": "LOGOUT", "reasonCode": ""})
    h.pump()
    h.commands.clear()
    h.send("Login", {"AgentId": "a0", "Password": "pw", "Mrd": "voice"})  # back into voice: through the GC
    assert ("Login", "a0", "pw", "1000") in h.commands
    h.commands.clear()
    h.comm.voice.login_all()  # a restarted GC, or the voice side back in service
    assert ("Login", "a0", "pw", "1000") in h.commands


def test_transfers_are_told_at_once_each_answered_with_its_own_move():
    """Found by review: desks heard of a transfer only through the MRE's report, which a
    snapshot could make the MRE forget (Comm had applied the move already, so nothing would
    report it again): the recipient's desk never heard. And a second Transfer of the same
    task took the first one's report as its answer."""
    h = Harness(agents=3)
    for agent in ("a0", "a1", "a2"):
        h.login(agent)
    task = h.task()
    owner = h.comm.tasks.live[task].owner
    h.send("TaskState", {"AgentId": owner, "TaskId": task, "State": S.ACTIVE, "MsgId": "acc",
                         "ReplyTo": f"desk-{owner}"})
    first, second = [a for a in ("a0", "a1", "a2") if a != owner]
    h.comm.request("Transfer", {"TaskId": task, "OwnerAgentId": owner, "RecipientAgentId": first,
                                "MsgId": "t1", "ReplyTo": f"desk-{owner}"})
    h.comm.request("Transfer", {"TaskId": task, "OwnerAgentId": first, "RecipientAgentId": second,
                                "MsgId": "t2", "ReplyTo": f"desk-{first}"})
    h.to_comm.clear()  # whatever the MRE reports of them is lost
    h.to_mre.clear()
    assert [(b["AgentId"], b["PreviousAgentId"]) for b in h.published_of("TaskAgentTransferred", MsgId="t1")] == \
        [(first, owner)]
    assert [(b["AgentId"], b["PreviousAgentId"]) for b in h.published_of("TaskAgentTransferred", MsgId="t2")] == \
        [(second, first)]
    for agent, previous in ((first, owner), (second, first)):  # the desks of both agents heard each move
        told = {d for d, t, b in h.published if t == "TaskAgentTransferred" and b["AgentId"] == agent}
        assert {"web", f"desk-{agent}", f"desk-{previous}"} <= told
    moved = h.published_of("TaskState", TaskId=task, Code=S.TRANSFERRED)
    assert {(b["AgentId"], b["PreviousAgentId"]) for b in moved} == {(first, owner), (second, first)}
    # a retry is answered from what is true now, and moves nothing
    h.send("Transfer", {"TaskId": task, "OwnerAgentId": owner, "RecipientAgentId": first, "MsgId": "t1",
                        "ReplyTo": f"desk-{owner}"})
    again = h.published_of("TaskAgentTransferred", MsgId="t1")
    assert len(again) == 2 and again[-1]["AgentId"] == second and h.comm.tasks.live[task].owner == second


def test_a_request_nobody_could_be_told_of_is_refused_before_it_changes_anything():
    """Found by review: a customer's cancel with no ReplyTo (and no agent) closed the task,
    then was refused for having nowhere to answer; its retry was answered by nothing."""
    h = Harness()
    task = h.task()
    err = refused_request(h, "TaskState", {"TaskId": task, "State": S.CLOSED, "Code": S.CANCELLED, "MsgId": "x"})
    assert (err.code, err.field) == (S.MISSING_FIELD, "ReplyTo")
    assert h.comm.tasks.live[task].state == S.QUEUED and "x" not in h.comm.ledger.seen


def refused_request(h: Harness, type: str, body: dict) -> WireError:
    with pytest.raises(WireError) as info:
        h.comm.request(type, body)
    return info.value


def test_comm_watches_a_bounded_number_of_desks():
    """Found by review: any name in a Heartbeat became a watched desk, journaled, for ever."""
    from actors.comm import desks
    h = Harness()
    h.comm.desks.watched.update(f"desk-{n}" for n in range(desks.MAX_WATCHED))
    err = refused_request(h, "Heartbeat", {"Destination": "one-too-many"})
    assert (err.code, err.field) == (S.OVERLOADED, "Destination") and "one-too-many" not in h.comm.desks.watched


def test_a_closed_desk_logs_its_agents_out_at_once_and_requeues_their_tasks():
    """Found by an operator: `scale chat=1` left the removed servers' agents UNKNOWN, then
    logged them out only after the grace period, their tasks stuck with them meanwhile."""
    h = Harness()
    h.login("a0")
    h.login("a1")
    h.send("Heartbeat", {"Destination": "desk-a0"})
    task = h.task()
    owner = h.published_of("TaskAgentSelected", TaskId=task)[-1]["AgentId"]
    h.send("TaskState", {"AgentId": owner, "TaskId": task, "State": S.ACTIVE})
    answer = h.comm.operator.desks_closed({"desks": [f"desk-{owner}"]})
    h.pump()
    assert answer == {"agents": [owner]}
    assert h.state(owner) == S.LOGOUT                       # no grace period, no UNKNOWN first
    assert h.published_of("TaskState", TaskId=task, State=S.QUEUED, Code=S.AGENT_LOGOUT)
    other = "a1" if owner == "a0" else "a0"
    assert h.published_of("TaskAgentSelected", TaskId=task)[-1]["AgentId"] == other  # routed again
    assert f"desk-{owner}" not in h.comm.desks.watched


def test_the_mre_hears_only_what_it_acts_on_the_desk_hears_every_state():
    """Moves between routable states follow from the task (offer, accept, close): the MRE
    follows those from the tasks, so Comm does not send it those AgentStates."""
    h = Harness(agents=3)
    h.login("a0")
    to_mre: list[tuple[str, str]] = []
    for type, handler in list(h.mre_handlers.items()):
        if type != "Confirm":  # the confirmations of the MRE's own decisions are not news
            h.mre_handlers[type] = lambda body, type=type, handler=handler: (
                to_mre.append((type, body.get("State", ""))), handler(body))
    task_id = h.task()
    assert h.offer_of("a0") == task_id
    h.send("TaskState", {"TaskId": task_id, "AgentId": "a0", "State": "ACTIVE", "ReplyTo": "desk-a0"})
    h.send("TaskState", {"TaskId": task_id, "AgentId": "a0", "State": "CLOSED", "Code": "DONE", "ReplyTo": "desk-a0"})
    h.send("AgentState", {"AgentId": "a0", "State": "NOT_READY", "Mrd": "chat"})
    assert to_mre == [("NewTask", ""), ("TaskState", "ACTIVE"), ("TaskState", "CLOSED"), ("AgentState", "NOT_READY")]
    assert [b["State"] for b in h.published_of("AgentState", AgentId="a0")][-4:] == \
        ["RESERVED", "ACTIVE", "READY", "NOT_READY"]
    assert h.mre.routers["chat"].agents["a0"].shown_state(2) == "NOT_READY"


def test_the_journal_is_given_only_the_meta_keys_that_changed():
    """`watched` holds one entry a Chat Server (up to 10,000): writing it with every new
    task's number was most of a busy topology's meta writes."""
    h = Harness(agents=3)
    for n in range(3):
        h.send("Heartbeat", {"Destination": f"desk-{n}"})
    first = h.comm.take_changes().meta
    assert set(first) == {"task_prefix", "task_number", "watched", "decisions", "counters"}
    h.login("a0", ready=False)
    h.comm.take_changes()
    h.task(client="c1")
    assert set(h.comm.take_changes().meta) == {"task_prefix", "task_number", "counters"}  # what became of tasks
    h.send("Heartbeat", {"Destination": "desk-new"})
    assert set(h.comm.take_changes().meta) == {"watched"}
    assert h.comm.take_changes().meta == {}


def test_an_agent_never_logged_in_has_a_state_change_time_in_iso_8601():
    """Issue 25, 9: a logged-out agent's StateChangeTime was "" where protocol.md says ISO 8601."""
    import re
    h = Harness()
    h.send("GetAgentState", {"AgentId": "a1", "Mrd": "chat", "ReplyTo": "desk", "MsgId": "q"})
    (answer,) = h.published_of("AgentState", MsgId="q")
    assert answer["State"] == S.LOGOUT
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", answer["StateChangeTime"]), answer


def test_a_desk_started_afresh_has_the_tasks_it_lost_closed_once_and_a_retry_closes_nothing_more():
    """Issue 25, 2: the previous run's tasks, whose customers were gone, were served. A desk
    that starts afresh names the tasks it still has (Resync Reset): the others it created
    close CANCELLED. Its retry of that Resync (same MsgId) must not close what it created since."""
    h = Harness(agents=2)
    lost = h.task(client="c-old")    # created through `web` by an earlier process
    h.send("Resync", {"Destination": "web", "ReplyTo": "web", "TaskIds": [], "Reset": True, "MsgId": "reset-1"})
    assert lost not in h.comm.tasks.live and h.comm.tasks.closed[lost].code == S.CANCELLED
    kept = h.task(client="c-new")    # this process's first customer
    h.send("Resync", {"Destination": "web", "ReplyTo": "web", "TaskIds": [], "Reset": True, "MsgId": "reset-1"})
    assert kept in h.comm.tasks.live
    assert len(h.published_of("Snapshot", MsgId="reset-1")) == 2    # each answered


def test_an_operator_sees_every_logged_in_agent_with_its_tasks():
    """Issue 25, 6: no list of agents anywhere, only counts by state (the web console's team
    view asks Comm this over the control channel)."""
    h = Harness(agents=3)
    h.login("a0")
    h.login("a2", ready=False)
    task = h.task()
    h.send("TaskState", {"TaskId": task, "AgentId": "a0", "State": S.ACTIVE})
    team = h.comm.agents.team(limit=10)
    assert team["total"] == 2 and not team["truncated"]
    assert [row["AgentId"] for row in team["agents"]] == ["a0", "a2"]
    a0 = team["agents"][0]
    assert a0["Destination"] == "desk-a0" and a0["Mrds"]["chat"]["Tasks"] == 1 and a0["Mrds"]["chat"]["State"] == S.ACTIVE
    assert team["agents"][1]["Mrds"]["chat"]["State"] == S.NOT_READY
    assert h.comm.agents.team(limit=1)["truncated"]
