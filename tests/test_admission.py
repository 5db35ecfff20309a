"""Admission control (issue 15): Comm refuses new Tasks at the door once it has been behind
its input (turn after turn with messages left waiting) past its budget, answers every one,
and takes everything else."""

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


def test_new_tasks_are_refused_once_comm_has_been_behind_past_its_budget():
    clock = Clock()
    began = [100.0]  # the loop's busy_since_cpu: kept while turns leave input waiting
    admission = Admission(lambda: began[0], budget=0.025, clock=clock)
    clock.now += 0.020
    assert admission.refusal() == ""  # within the budget
    clock.now += 0.010
    reason = admission.refusal()
    assert "behind its input for 30 ms of its CPU" in reason and "comm.admission_budget (25 ms)" in reason
    admission.refusal()
    began[0] = clock.now               # caught up: a new busy period, admitted again
    assert admission.refusal() == ""
    clock.now += 0.05
    assert admission.refusal()
    assert admission.stats()["admission"] == {"refused": 3, "busy_periods_refusing": 2, "budget_ms": 25.0}


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
    assert all("comm.admission_budget" in m["Reason"] for m in refused)
    assert all(m["State"] == "QUEUED" for m in queued)
    stats = running.cli("stats", "comm", "--json")
    assert stats.returncode == 0, stats.stderr
    comm = orjson.loads(stats.stdout)["actors"]["comm.1"]["stats"]
    assert comm["admission"]["refused"] == len(refused) and comm["tasks_live"] == len(queued)
