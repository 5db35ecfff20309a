"""Nothing lost when a process dies, with real processes killed: Comm's journal, and the MRE
rebuilt from Comm. On plain objects: tests/inprocess/test_durability.py."""

from __future__ import annotations

import os
import signal

from ..helpers import base_topology, wait_until


def kill_and_wait_for_restart(running, name):
    before = next(a for a in running.status()["actors"] if a["name"] == name)
    os.kill(before["pid"], signal.SIGKILL)

    def restarted():
        now = next(a for a in running.status()["actors"] if a["name"] == name)
        return now["state"] == "RUNNING" and now["pid"] not in (None, before["pid"])
    wait_until(restarted, timeout=15, what=f"{name} restarted")
    running.remember_pids()


def test_tasks_queued_and_agents_logged_in_survive_comm_then_mre_killed(start_topology, chat_client):
    running = start_topology(base_topology("durable"))
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    for agent, password in (("alice", "pw-alice"), ("bob", "pw-bob")):
        desk.login(agent, password, ready=False)  # NOT_READY: nobody takes the tasks yet
    tasks = []
    for n in range(4):
        msg_id = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"customer{n}"})
        tasks.append(desk.expect("TaskState", MsgId=msg_id, State="QUEUED")["TaskId"])

    kill_and_wait_for_restart(running, "comm.1")
    kill_and_wait_for_restart(running, "mre.1")

    # What a PUB socket sends before a subscriber has reconnected is lost (zeromq-rules 7):
    # confirm the subscription to the new Comm first, as any client must.
    desk.handshake()
    # no Connect, no Login: the agents are still logged in, the tasks still queued
    assert desk.agent_state("alice") == "NOT_READY" and desk.agent_state("bob") == "NOT_READY"
    msg_id = desk.send("GetTaskState", {"TaskId": tasks[0]})
    assert desk.expect("TaskState", MsgId=msg_id)["State"] == "QUEUED"
    for agent in ("alice", "bob"):
        desk.send("AgentState", {"AgentId": agent, "State": "READY", "Mrd": "chat"})
    routed = {}
    while len(routed) < len(tasks):  # one offer at a time per agent: accept each to get the next
        offer = desk.expect("TaskAgentSelected", timeout=10)
        routed[offer["TaskId"]] = offer["AgentId"]
        desk.send("TaskState", {"TaskId": offer["TaskId"], "AgentId": offer["AgentId"], "State": "ACTIVE"})
    assert set(routed) == set(tasks)
    assert sorted(routed.values()) == ["alice", "alice", "bob", "bob"]  # two each: the MRD's limit
    # a new task gets an id never given before
    msg_id = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "customer9"})
    assert desk.expect("TaskState", MsgId=msg_id, State="QUEUED")["TaskId"] not in tasks


def test_a_chat_server_that_vanishes_has_its_agents_logged_out_and_tasks_requeued(start_topology, chat_client):
    spec = base_topology("liveness")
    spec["actors"]["comm"]["logout_grace"] = 1
    running = start_topology(spec)
    gone = chat_client(running.endpoints(), "desk-gone")
    stays = chat_client(running.endpoints(), "desk-stays")  # sends no heartbeat: never watched
    for desk in (gone, stays):
        desk.handshake()
    gone.send("Heartbeat", {"Destination": "desk-gone"})
    gone.login("alice", "pw-alice")
    msg_id = gone.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
    task = gone.expect("TaskState", MsgId=msg_id, State="QUEUED")["TaskId"]
    gone.expect("TaskAgentSelected", TaskId=task, AgentId="alice")
    gone.send("TaskState", {"TaskId": task, "AgentId": "alice", "State": "ACTIVE"})
    gone.expect("TaskState", TaskId=task, State="ACTIVE")
    stays.login("bob", "pw-bob")
    # desk-gone now says nothing more, as if its process had been killed
    assert gone.expect("AgentState", AgentId="alice", State="UNKNOWN", timeout=8)["Mrd"] == "chat"
    gone.expect("AgentState", AgentId="alice", State="LOGOUT", timeout=5)
    assert stays.expect("TaskAgentSelected", TaskId=task, timeout=5)["AgentId"] == "bob"
    assert stays.agent_state("bob") == "RESERVED"
