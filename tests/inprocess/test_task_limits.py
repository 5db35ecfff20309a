"""One client cannot buy unbounded memory (issue 14, found on main: a Task with 60,000
params pairs, 889 KB, cost about 10 MB in Comm and 10.7 MB in the MRE; 30 of them stalled
every other client)."""

from __future__ import annotations

from actors.mre.engine import Engine
from wire import states as S

from ..harness import MRDS, QUEUES, Harness


def test_the_mre_keeps_and_is_sent_only_the_params_it_reads():
    h = Harness()
    task = h.task(note="n" * 500, priority=3, colour="blue")
    assert h.mre.tasks[task].params == {"queue": "chat-default", "priority": 3}
    assert h.comm.tasks.live[task].params["note"] == "n" * 500            # Comm keeps the task's data
    h.send("TaskState", {"TaskId": task, "State": S.CLOSED, "Code": S.CANCELLED, "ReplyTo": "web"})
    assert h.comm.tasks.closed[task].params == {"queue": "chat-default", "priority": 3}  # not once closed
    assert h.comm.tasks.params_bytes == 0
    engine = Engine(MRDS, lambda t, b: None, queues=QUEUES)
    engine.on_new_task({"MRD": "chat", "TaskId": "t1", "params": {"note": "x" * 1000, "queue": "chat-default"}})
    assert engine.tasks["t1"].params == {"queue": "chat-default"}


def test_no_more_than_max_waiting_tasks_wait_for_an_agent_and_a_retry_is_still_answered():
    from actors.comm.admission import TaskLimits
    h = Harness(agents=3)
    h.login("a0", ready=False)  # nobody to route to: tasks wait
    h.comm.admission.limits = TaskLimits(max_waiting=2)
    first = h.task(client="c1")
    h.task(client="c2")
    assert h.comm.tasks.waiting == 2
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c3", "ReplyTo": "web", "MsgId": "third"})
    error = h.published_of("Error", MsgId="third")[-1]
    assert error["Code"] == S.OVERLOADED and "comm.max_waiting" in error["Reason"]
    h.send("TaskState", {"TaskId": first, "State": "CLOSED", "Code": "CANCELLED", "ReplyTo": "web"})
    assert h.comm.tasks.waiting == 1
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c3", "ReplyTo": "web", "MsgId": "again"})
    assert h.published_of("TaskState", MsgId="again")[-1]["State"] == S.QUEUED
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c3", "ReplyTo": "web", "MsgId": "again"})  # a retry, full
    assert [b["State"] for b in h.published_of("TaskState", MsgId="again")] == [S.QUEUED, S.QUEUED]
    h.send("AgentState", {"AgentId": "a0", "State": "READY", "Mrd": "chat"})  # one offered: still waiting
    assert h.comm.tasks.waiting == 2
    offered = h.offer_of("a0")
    h.send("TaskState", {"TaskId": offered, "AgentId": "a0", "State": "ACTIVE", "ReplyTo": "desk-a0"})
    assert h.comm.tasks.waiting == 1  # accepted: no longer waiting
