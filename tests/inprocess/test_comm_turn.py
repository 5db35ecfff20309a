"""Comm's turn in its parts (issue 27, 2): one registry of requests, one door for new Tasks,
one numbering for every stream, and a reload that goes back to the journal only for what
the journal holds."""

from __future__ import annotations

from typing import Any

import orjson

from actors.comm.admission import Admission
from actors.comm.state import CommState
from wire.catalogue import BY_QUEUE, GENERAL

from ..harness import Harness


def test_every_request_general_carries_has_one_entry_and_its_answer_is_the_catalogues():
    requests = Harness().comm.requests
    assert set(requests) == set(BY_QUEUE[GENERAL])
    for type, request in requests.items():
        assert request.answer == BY_QUEUE[GENERAL][type].answer, type
        # only the queries that change nothing have nothing to apply; every change is remembered
        assert (request.apply is None) == type.startswith("Get"), type
        assert request.query == (type in {"GetAgentState", "GetTaskState", "Heartbeat", "Resync"}), type
        assert (request.now is None) == (request.answer == "Ack"), type


def test_a_new_task_passes_the_door_once(monkeypatch):
    """It passed two doors before, one of them twice (server.turned_away, then
    TaskRequests.door inside the request)."""
    h = Harness()
    asked: list[Any] = []
    admit = Admission.admit

    def counted(self: Admission, handled: str | None) -> None:
        asked.append(handled)
        admit(self, handled)
    monkeypatch.setattr(Admission, "admit", counted)
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "ReplyTo": "web", "MsgId": "t1"})
    assert h.published_of("TaskState", MsgId="t1")[0]["State"] == "QUEUED"
    assert asked == ["web\x00t1"]
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "ReplyTo": "web", "MsgId": "t1"})  # a retry
    assert asked == ["web\x00t1"]    # answered by the ledger, before the door


def numbering(frames: list[bytes]) -> tuple[int, str]:
    body = orjson.loads(frames[-1])
    return body["Seq"], body["Stream"]


def test_the_mre_and_the_desks_hear_comm_on_one_stream_numbered_afresh_after_a_reload():
    h = Harness()
    h.login("a0", ready=False)
    h.to_mre.clear()
    sent: list[list[bytes]] = []
    h.comm.out.send_event = sent.append
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "ReplyTo": "web", "MsgId": "t1"})
    new_task = h.comm.out.mre_seq
    assert new_task > 1 and h.comm.out.seqs["web"] > 0
    assert {numbering(sent[-1])[1]} == {h.comm.out.stream} == {"s1"}
    h.comm.reload(CommState(task_prefix=h.comm.tasks.prefix), "s2")
    h.comm.out.send_event, h.comm.out.send_mre = sent.append, sent.append
    h.comm.out.to_mre("Snapshot", h.comm.snapshot())
    h.send("GetAgentState", {"AgentId": "a0", "Mrd": "chat", "ReplyTo": "web", "MsgId": "q"})
    snapshot, answer = sent[-2], sent[-1]
    assert numbering(snapshot) == (0, "s2") and numbering(answer) == (1, "s2")
