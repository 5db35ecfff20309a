"""One client cannot buy unbounded memory (issue 14), against real processes: params are
bounded in pairs, bytes and all live tasks together. The rest: tests/inprocess/test_task_limits.py."""

from __future__ import annotations

from ..helpers import base_topology


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
