"""The simulated Chat Server's transfers and conferences from a load scenario
(actors/chat/handover.py), without a Comm: what its agents ask, how the desks concerned follow
the task as Comm moves it (README, "Where the code differs from protocol.md": TaskAgentTransferred
and TaskState code TRANSFERRED; a participant's end as CLOSED with Scope PARTICIPANT), and the
counts. Timers are fired by hand (the harness: test_chat_sim.py)."""

from __future__ import annotations

from .test_chat_sim import desk  # noqa: F401  (the fixture)

ACTIVE = {"TaskId": "e1-7", "AgentId": "a1", "State": "ACTIVE", "MRD": "chat"}


def accepted(desk, task_id: str = "e1-7", agent_id: str = "a1") -> None:  # noqa: F811
    desk.offered(task_id, agent_id)
    desk.fire("accept")
    accept = desk.requests("TaskState")[-1]
    desk.answer(accept["MsgId"], "TaskState", {**ACTIVE, "TaskId": task_id, "AgentId": agent_id})


def test_a_chat_drawn_for_transfer_goes_to_an_agent_we_heard_with_room_who_then_closes_it(desk):  # noqa: F811
    desk.go_live()
    desk.server.set_load({"transfer": 1})
    accepted(desk)
    assert desk.counts["transfers"] == 1 and desk.timers("transfer") == 1
    desk.fire("transfer")
    ask = desk.requests("Transfer")
    assert [(b["TaskId"], b["OwnerAgentId"], b["RecipientAgentId"]) for b in ask] == [("e1-7", "a1", "a2")]
    # Comm moves it and tells our desk once (both agents are ours): the answer, and the TaskState
    desk.answer(ask[0]["MsgId"], "TaskAgentTransferred", {"TaskId": "e1-7", "AgentId": "a2", "PreviousAgentId": "a1"})
    desk.publish("TaskState", {**ACTIVE, "AgentId": "a2", "Code": "TRANSFERRED", "PreviousAgentId": "a1"})
    assert desk.counts["transferred"] == 1 and desk.server.desk.held == {"e1-7": "a2"}
    assert desk.counts["acceptances"] == 1   # a transfer is no new acceptance, and draws again nothing
    assert desk.fire("finish") == 2          # a1's (it no longer has the chat) and a2's
    closes = desk.requests("TaskState")
    assert [(b["AgentId"], b["State"], b["Code"]) for b in closes] == [("a2", "CLOSED", "DONE")]
    desk.answer(closes[0]["MsgId"], "TaskState", {**ACTIVE, "AgentId": "a2", "State": "CLOSED", "Code": "DONE"})
    assert desk.counts["handled"] == 1 and desk.server.desk.held == {}


def test_a_refused_transfer_is_counted_and_the_chat_goes_on_with_its_owner(desk):  # noqa: F811
    desk.go_live()
    desk.server.set_load({"transfer": 1})
    accepted(desk)
    desk.fire("transfer")
    ask = desk.requests("Transfer")[0]
    desk.answer(ask["MsgId"], "Error", {"Code": "INVALID_STATE", "Type": "Transfer", "Reason": "a2 has an offer"})
    assert desk.counts["transfer_refused"] == 1 and desk.counts["transferred"] == 0
    assert desk.server.desk.held == {"e1-7": "a1"}
    desk.fire("finish")
    assert [(b["AgentId"], b["State"]) for b in desk.requests("TaskState")] == [("a1", "CLOSED")]


def test_with_no_agent_with_room_the_transfer_is_not_asked_and_is_counted_skipped(desk):  # noqa: F811
    desk.go_live()
    desk.server.set_load({"transfer": 1})
    desk.publish("AgentState", {"AgentId": "a2", "State": "BUSY", "Mrd": "chat"})   # at its limit
    accepted(desk)
    desk.fire("transfer")
    assert desk.requests("Transfer") == [] and desk.counts["transfer_skipped"] == 1


def test_a_chat_transferred_from_or_to_another_desks_agent_leaves_or_joins_ours(desk):  # noqa: F811
    desk.go_live()
    accepted(desk)
    desk.publish("TaskState", {**ACTIVE, "AgentId": "zed", "Code": "TRANSFERRED", "PreviousAgentId": "a1"})
    assert desk.server.desk.held == {}
    desk.publish("TaskState", {**ACTIVE, "TaskId": "e1-8", "AgentId": "a2", "Code": "TRANSFERRED",
                               "PreviousAgentId": "zed"})
    assert desk.server.desk.held == {"e1-8": "a2"}
    desk.fire("finish")
    assert [(b["TaskId"], b["AgentId"]) for b in desk.requests("TaskState")] == [("e1-8", "a2")]


def test_a_conferenced_agent_ends_its_part_and_the_chat_stays_with_its_owner(desk):  # noqa: F811
    desk.go_live()
    desk.server.set_load({"conference": 1})
    desk.publish("AgentState", {"AgentId": "a2", "State": "ACTIVE", "Mrd": "chat"})   # busy with room: asked too
    accepted(desk)
    assert desk.counts["conferences"] == 1
    desk.fire("conference")
    ask = desk.requests("Conference")
    assert [(b["TaskId"], b["ConferenceOwner"], b["ConferenceParticipant"], b["Mrd"]) for b in ask] == \
        [("e1-7", "a1", "a2", "chat")]
    desk.answer(ask[0]["MsgId"], "TaskConferenced", {"TaskId": "e1-7", "OwnerAgentId": "a1",
                                                     "ParticipantAgentId": "a2"})
    assert desk.counts["conferenced"] == 1 and desk.server.desk.handover.joined == {"e1-7": "a2"}
    desk.fire("leave")
    part = desk.requests("TaskState")
    assert [(b["AgentId"], b["State"], b["Code"]) for b in part] == [("a2", "CLOSED", "DONE")]
    desk.answer(part[0]["MsgId"], "TaskState", {**ACTIVE, "AgentId": "a2", "State": "CLOSED", "Code": "DONE",
                                                "Scope": "PARTICIPANT"})
    assert desk.server.desk.handover.joined == {} and desk.server.desk.held == {"e1-7": "a1"}
    # its part ended; the chat is not over: its owner closes it
    assert desk.counts["parts_ended"] == 1 and desk.counts["handled"] == 0
    desk.fire("finish")
    assert [(b["AgentId"], b["State"]) for b in desk.requests("TaskState")] == [("a1", "CLOSED")]


def test_the_owners_close_ends_a_participants_part_and_its_late_timer_asks_nothing(desk):  # noqa: F811
    desk.go_live()
    desk.publish("TaskConferenced", {"TaskId": "e1-9", "OwnerAgentId": "zed", "ParticipantAgentId": "a1"})
    assert desk.server.desk.handover.joined == {"e1-9": "a1"} and desk.counts["conferenced"] == 0  # not ours
    desk.publish("TaskState", {**ACTIVE, "TaskId": "e1-9", "AgentId": "zed", "State": "CLOSED", "Code": "DONE"})
    assert desk.server.desk.handover.joined == {} and desk.counts["parts_ended"] == 0
    assert desk.fire("leave") == 1 and desk.requests("TaskState") == []


def test_the_snapshot_settles_the_parts_our_agents_have(desk):  # noqa: F811
    desk.go_live()
    desk.publish("TaskConferenced", {"TaskId": "e1-9", "OwnerAgentId": "zed", "ParticipantAgentId": "a1"})
    desk.publish("TaskState", {**ACTIVE, "TaskId": "e1-5", "AgentId": "zed"}, skip=1)   # a gap: news was lost
    resync = desk.requests("Resync")[-1]
    assert "e1-9" in resync["TaskIds"]   # a part is followed like any task of ours
    desk.answer(resync["MsgId"], "Snapshot", {
        "Destination": "chat.1", "Unknown": [],
        "Agents": [{"AgentId": a, "State": "READY", "Mrd": "chat"} for a in ("a1", "a2")],
        "Tasks": [{**ACTIVE, "TaskId": "e1-10", "AgentId": "zed", "Participants": ["a2"]}]})
    assert desk.server.desk.handover.joined == {"e1-10": "a2"}   # e1-9 ended meanwhile; e1-10's news was lost
    assert desk.timers("leave") == 2 and desk.fire("leave") == 2
    assert [(b["TaskId"], b["AgentId"]) for b in desk.requests("TaskState")] == [("e1-10", "a2")]


def test_one_draw_shares_accepted_chats_between_transfer_conference_and_neither(desk):  # noqa: F811
    desk.go_live()
    desk.server.set_load({"transfer": 0.3, "conference": 0.2})
    for n in range(400):
        desk.offered(f"t{n}", "a1")
        desk.publish("TaskState", {**ACTIVE, "TaskId": f"t{n}"})
    c = desk.counts
    assert c["acceptances"] == 400
    # 400 draws: p = 0.3 gives 120 +- 9.2, p = 0.2 gives 80 +- 8; 4 of them either side
    assert abs(c["transfers"] - 120) <= 37 and abs(c["conferences"] - 80) <= 32
    assert desk.timers("transfer") == c["transfers"] and desk.timers("conference") == c["conferences"]
