"""One client cannot buy unbounded memory (issue 14, found on main: a Task with 60,000
params pairs, 889 KB, cost about 10 MB in Comm and 10.7 MB in the MRE; 30 of them stalled
every other client)."""

from __future__ import annotations

from actors.mre.engine import Engine
from wire import states as S

from .harness import MRDS, QUEUES, Harness
from .helpers import base_topology


def test_params_are_bounded_in_pairs_bytes_and_all_live_tasks_together(start_topology, chat_client):
    spec = base_topology("bounded")
    spec["actors"]["comm"].update(max_params=8, max_params_bytes=1000, max_live_bytes=3000)
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    too_many = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "params": [[f"k{i}", i] for i in range(9)]})
    err = desk.expect("Error", MsgId=too_many)
    assert (err["Code"], err["Field"]) == ("BAD_FIELD", "params") and "at most 8" in err["Reason"]
    too_big = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "params": [["note", "x" * 1200]]})
    err = desk.expect("Error", MsgId=too_big)
    assert (err["Code"], err["Field"]) == ("BAD_FIELD", "params") and "comm.max_params_bytes" in err["Reason"]
    # far too big to be worth decoding: refused from its size, still answered to its sender
    huge = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "params": [[f"k{i}", "v"] for i in range(3000)]})
    err = desk.expect("Error", MsgId=huge)
    assert (err["Code"], err["Field"], err["Type"]) == ("BAD_FIELD", "params", "Task")
    assert err["Reason"].startswith("a Task of ") and "comm.max_params_bytes" in err["Reason"]
    # 900-byte tasks: three fit in the 3,000-byte budget of live tasks, the fourth waits its turn
    answers = []
    for n in range(4):
        msg = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}", "params": [["note", "y" * 850]]})
        answers.append(desk.expect("Error" if n == 3 else "TaskState", MsgId=msg))
    assert answers[3]["Code"] == "OVERLOADED" and "comm.max_live_bytes" in answers[3]["Reason"]
    desk.send("TaskState", {"TaskId": answers[0]["TaskId"], "State": "CLOSED", "Code": "CANCELLED"})
    desk.expect("TaskState", TaskId=answers[0]["TaskId"], State="CLOSED")
    again = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c9", "params": [["note", "y" * 850]]})
    assert desk.expect("TaskState", MsgId=again)["State"] == "QUEUED"   # room again once one closed
    assert desk.agent_state("alice") == "LOGOUT"                         # and others are still served


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
