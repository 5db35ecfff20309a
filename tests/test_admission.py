"""Admission control (issue 15): Comm refuses new Tasks at the door while it is behind,
answers every one, and takes everything else."""

from __future__ import annotations

import time

import orjson

from actors.comm.admission import Admission

from .helpers import base_topology


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_new_tasks_are_refused_once_comm_has_been_behind_for_the_lag_until_a_turn_empties_the_queue():
    clock = Clock()
    admission = Admission(lag=0.2, clock=clock)
    admission.took(False)              # a full turn, more waiting
    clock.now += 0.1
    assert admission.refusal() == ""  # behind, not for long enough
    admission.took(False)
    clock.now += 0.15
    reason = admission.refusal()
    assert "for 250 ms" in reason and "comm.admission_lag 200 ms" in reason
    admission.refusal()
    admission.took(True)               # caught up: admitted again at once
    assert admission.refusal() == ""
    admission.took(False)
    clock.now += 0.3
    assert admission.refusal()
    assert admission.stats()["admission"] == {"refused": 3, "episodes": 2, "behind_ms": 300}


def test_a_burst_comm_cannot_keep_up_with_is_refused_overloaded_and_every_task_is_answered(start_topology,
                                                                                         chat_client):
    spec = base_topology("admission")
    spec["actors"]["comm"]["admission_lag"] = 0.05
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "burst-desk")
    desk.handshake()
    sent = {desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}"}) for n in range(20_000)}
    answers: dict[str, tuple[str, dict]] = {}
    deadline = time.monotonic() + 60
    while len(answers) < len(sent) and time.monotonic() < deadline:
        if desk.sub.poll(1000):
            for type, msg in desk.take():
                if msg.get("MsgId") in sent:
                    assert msg["MsgId"] not in answers, f"answered twice: {msg}"
                    answers[msg["MsgId"]] = (type, msg)
    assert len(answers) == len(sent), f"{len(sent) - len(answers)} Tasks never answered"
    refused = [m for t, m in answers.values() if t == "Error"]
    queued = [m for t, m in answers.values() if t == "TaskState"]
    assert refused and queued and len(refused) + len(queued) == len(sent)
    assert {(m["Code"], m["Type"]) for m in refused} == {("OVERLOADED", "Task")}
    assert all("comm.admission_lag" in m["Reason"] for m in refused)
    assert all(m["State"] == "QUEUED" for m in queued)
    stats = running.cli("stats", "comm", "--json")
    assert stats.returncode == 0, stats.stderr
    comm = orjson.loads(stats.stdout)
    comm = comm.get("actors", comm).get("comm.1", comm)["stats"]
    assert comm["admission"]["refused"] == len(refused) and comm["tasks_live"] == len(queued)
