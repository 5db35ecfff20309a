"""A full disk answers everyone (issue 24, 9). Found on main, with the run directory on a
16 MB tmpfs filled during use: of 20 Tasks sent one after another, 19 were answered
(QUEUED or UNAVAILABLE) and one never was (its answer left with the wake-up Comm undid);
once space came back, one run refused 596 of the retried Tasks OVERLOADED."""

from __future__ import annotations

from pathlib import Path

from launch import client as control_client

from ..helpers import base_topology, wait_until
from .test_disk_full import answer, small_disk, top_up  # noqa: F401  (small_disk is a fixture)


def test_every_request_is_answered_while_the_disk_is_full_and_retries_are_served_after(
        small_disk: Path, start_topology, chat_client):
    spec = base_topology("answers", chat={"count": 2, "agents": 3, "rate": 40.0, "handle": 0.2})
    spec["run_dir"] = str(small_disk)
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "probe-desk")
    desk.handshake()
    comm = lambda: control_client.ask(running.topology, "stats")["actors"]["comm.1"]  # noqa: E731
    wait_until(lambda: comm()["tasks_created"] >= 40, timeout=20, what="tasks flowing")
    refused: list[tuple[str, dict]] = []
    filler = open(small_disk / "filler", "wb", buffering=0)
    try:
        top_up(filler)
        n = 0
        while len(refused) < 20:   # each sent once, never again: each must be answered
            assert n < 2000, "the disk never filled"
            body = {"Mrd": "chat", "ClientUniqueId": f"full{n}", "MsgId": f"full-{n}"}
            desk.send("Task", dict(body))
            got = answer(desk, body["MsgId"], 10)
            assert got is not None, f"Task {n} was never answered"
            type, reply = got
            assert type == "TaskState" or reply["Code"] == "UNAVAILABLE", reply
            if type == "Error":
                refused.append(("Task", body))
            top_up(filler)
            n += 1
    finally:
        filler.close()
        (small_disk / "filler").unlink()
    wait_until(lambda: not comm()["degraded"], timeout=15, what="Comm writing again")
    for _, body in refused:   # the retries (same MsgId), with the Chat Servers' own retries besides
        desk.send("Task", dict(body))
    for _, body in refused:
        got = answer(desk, body["MsgId"], 10)
        assert got is not None and got[0] == "TaskState", f"retry of {body['MsgId']}: {got}"
    chat = control_client.ask(running.topology, "stats")["actors"]
    assert all(s["lost"] == 0 for name, s in chat.items() if name.startswith("chat."))
