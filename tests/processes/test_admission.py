"""Admission control (issue 15) against a real Comm: a burst it cannot keep up with is
refused OVERLOADED and every Task is answered. The door's rules on a fake clock:
tests/inprocess/test_admission.py."""

from __future__ import annotations

import time

import orjson

from ..helpers import base_topology


def test_a_burst_comm_cannot_keep_up_with_is_refused_overloaded_and_every_task_is_answered(start_topology,
                                                                                         chat_client):
    spec = base_topology("admission")
    spec["actors"]["comm"]["admission_budget"] = 0.005
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "burst-desk")
    desk.handshake()
    sent = {desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}"}) for n in range(20_000)}
    answers: dict[str, tuple[str, dict]] = {}
    deadline = time.monotonic() + 60
    while len(answers) < len(sent) and time.monotonic() < deadline:
        message = desk.receive(1.0)
        if message is not None and message.MsgId in sent:
            assert message.MsgId not in answers, f"answered twice: {message}"
            answers[message.MsgId] = (message.type, message.body)
    assert len(answers) == len(sent), f"{len(sent) - len(answers)} Tasks never answered"
    refused = [m for t, m in answers.values() if t == "Error"]
    queued = [m for t, m in answers.values() if t == "TaskState"]
    assert refused and queued and len(refused) + len(queued) == len(sent)
    assert {(m["Code"], m["Type"]) for m in refused} == {("OVERLOADED", "Task")}
    # waited past comm.admission_budget, or found the door full
    assert all("comm.admission_budget" in m["Reason"] or "wait at Comm's door" in m["Reason"] for m in refused)
    assert all(m["State"] == "QUEUED" for m in queued)
    stats = running.cli("stats", "comm", "--json")
    assert stats.returncode == 0, stats.stderr
    comm = orjson.loads(stats.stdout)["actors"]["comm.1"]["stats"]
    assert comm["admission"]["refused"] == len(refused) and comm["tasks_live"] == len(queued)
    # most were refused from their bytes, undecoded (what they said of their sender was enough)
    assert 0 < comm["admission"]["refused_unread"] <= comm["admission"]["refused"]
