"""A tap that reads nothing never makes Comm drop what a desk should get.

Comm's ChatEvents socket never drops silently: a subscriber whose queue is full makes the
send fail, and the message is counted as dropped (and seen as a gap by its desk). A tap
subscribed to every topic of that socket would, once its own queue filled, make every
send fail; so `mroute tap ChatEvents` reads a copy Comm mirrors to its tap socket, which
may lose lines but never holds Comm back.
"""

from __future__ import annotations

import select
import subprocess

from launch import client

from ..helpers import MROUTE, base_topology

TASKS = 5000
BATCH = 50


def test_a_tap_that_reads_nothing_never_makes_comm_drop(start_topology, chat_client):
    spec = base_topology("slowtap")
    spec["actors"]["comm"]["events_hwm"] = 100  # a full subscriber shows within a few hundred messages
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    desk.login("alice", "pw-alice", ready=False)  # nobody takes the tasks: one answer each
    # a tap whose output nobody reads: it stops reading its socket once its stdout pipe is full
    tap = subprocess.Popen([*MROUTE, "tap", "ChatEvents", "-f", str(running.file)], cwd=running.directory,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert select.select([tap.stdout], [], [], 15)[0], "the tap never started listening"
        assert tap.stdout.readline().startswith(b"# listening")  # and from now on nobody reads it
        answered = 0
        for first in range(0, TASKS, BATCH):  # the desk keeps up; the tap does not
            ids = [desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}"}) for n in range(first, first + BATCH)]
            for msg_id in ids:
                desk.expect("TaskState", MsgId=msg_id, State="QUEUED", timeout=10)
                answered += 1
        assert answered == TASKS
        comm = client.ask(running.topology, "stats")["actors"]["comm.1"]
        assert comm["tasks_created"] == TASKS
        assert comm["counters"].get("send_dropped", 0) == 0 and comm["dropped_to"] == {}
    finally:
        tap.kill()
        tap.wait()
        tap.stdout.close()
