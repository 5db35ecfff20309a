"""Storage faults degrade, never kill (issue 14), against real processes: a topology whose run
directory is a small tmpfs that fills up while tasks flow; and a flood of refused messages,
which must not write a log line each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from launch import client as control_client

from ..helpers import (MROUTE, ChatClient, Running, at_a_terminal, base_topology, pid_alive, read_until,
                       wait_until)

DISK = "16m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, unmounted afterwards whatever happened (requested before
    start_topology, so the topology is stopped first)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs as the run directory needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def top_up(filler: Any) -> None:
    """Take whatever room the disk has (what a log rotation or SQLite freed, too)."""
    for chunk in (1 << 20, 65536, 4096, 512):
        try:
            while True:
                filler.write(b"\0" * chunk)
        except OSError:
            pass


def answer(desk: ChatClient, msg_id: str, timeout: float) -> tuple[str, dict[str, Any]] | None:
    """The message that answers `msg_id`, whatever its type (the answer or an Error)."""
    return desk.answer(msg_id, timeout)


def ask(desk: ChatClient, type: str, body: dict[str, Any], attempts: int = 10) -> tuple[str, dict[str, Any]]:
    """Send until answered, as a Chat Server does: the answer to a wake-up that Comm undid
    never comes, and the retry (same MsgId) is answered."""
    msg_id = desk.send(type, body)
    for _ in range(attempts):
        got = answer(desk, msg_id, 1.0)
        if got is not None:
            return got
        desk.send_raw(type.encode(), orjson.dumps(body))
    raise AssertionError(f"no answer to {type} {msg_id}")


def actors(running: Running) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in running.status()["actors"]}


def chat_stats(running: Running) -> dict[str, dict[str, Any]]:
    stats = control_client.ask(running.topology, "stats")["actors"]
    return {name: s for name, s in stats.items() if name.startswith("chat.")}


def test_a_full_disk_degrades_comm_and_never_kills_and_it_serves_again_by_itself(small_disk, start_topology,
                                                                                 chat_client):
    spec = base_topology("diskfull", chat={"count": 2, "agents": 3, "rate": 25.0, "handle": 0.2})
    spec["run_dir"] = str(small_disk)
    running = start_topology(spec)
    pids = {name: a["pid"] for name, a in actors(running).items()}
    supervisor = running.status()["supervisor"]["pid"]
    wait_until(lambda: sum(s["created"] for s in chat_stats(running).values()) >= 50, timeout=20,
               what="tasks flowing (50 a second)")
    desk = chat_client(running.endpoints(), "probe-desk")
    desk.handshake()
    acknowledged = []
    for n in range(5):
        type, body = ask(desk, "Task", {"Mrd": "chat", "ClientUniqueId": f"before{n}"})
        assert (type, body["State"]) == ("TaskState", "QUEUED")
        acknowledged.append(body["TaskId"])
    events = subprocess.Popen([*MROUTE, "events", "-f", str(running.file), "--json", "--timeout", "100"],
                              cwd=running.directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              preexec_fn=at_a_terminal)   # it is stopped with Ctrl-C
    # its subscription confirmed before the disk fills: on a busy machine that takes a while,
    # and an event published before it is not seen
    assert any("# listening" in line for line in read_until(events, lambda line: "# listening" in line, 15))
    filler = open(small_disk / "filler", "wb", buffering=0)
    try:
        def refused() -> dict[str, Any] | None:
            top_up(filler)
            type, body = ask(desk, "Task", {"Mrd": "chat", "ClientUniqueId": f"while{len(acknowledged)}"})
            if type == "TaskState":  # acknowledged while the disk filled: it must survive all that follows
                acknowledged.append(body["TaskId"])
                return None
            return body
        error = wait_until(refused, timeout=60, interval=0.05, what="a Task refused while the disk is full")
        assert (error["Code"], error["Type"]) == ("UNAVAILABLE", "Task")
        assert error["Reason"].startswith("journal write failed: database or disk is full")
        # queries are answered, from what is journaled
        assert ask(desk, "GetAgentState", {"AgentId": "alice", "Mrd": "chat"})[0] == "AgentState"
        type, body = ask(desk, "GetTaskState", {"TaskId": acknowledged[0]})
        assert type == "TaskState" and body["TaskId"] == acknowledged[0]
        comm = wait_until(lambda: actors(running)["comm.1"]["state"] == "DEGRADED" and actors(running)["comm.1"],
                          timeout=10, what="comm.1 DEGRADED")
        assert comm["reason"].startswith("journal write failed: database or disk is full")
        shown = running.cli("status")
        assert shown.returncode == 1 and "DEGRADED" in shown.stdout, shown.stdout
        # A Chat Server started now: its log file is new, and the full disk takes none of it;
        # the topology file the actors read cannot be written either. Both wait, nothing dies.
        top_up(filler)
        scaled = running.cli("scale", "chat=3", "--force")
        assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        running.remember_pids()
        wait_until(lambda: running.status()["supervisor"]["log_dropped_bytes"] > 0, timeout=10,
                   what="chat.3's first lines dropped (no room for its log file)")
        metrics = running.status()["metrics"]
        wait_until(lambda: 'mroute_actor_degraded{actor="comm.1",role="comm"} 1.0' in urllib.request.urlopen(metrics, timeout=5)
                   .read().decode(), timeout=10, what="comm.1 degraded in the metrics")
        # nobody died, nobody was restarted: not the supervisor, not an actor
        assert pid_alive(supervisor)
        assert {name: (a["pid"], a["restarts"]) for name, a in actors(running).items() if name in pids} == \
            {name: (pid, 0) for name, pid in pids.items()}
        assert actors(running)["chat.3"]["state"] == "RUNNING"
    finally:
        filler.close()
        (small_disk / "filler").unlink()
    try:
        wait_until(lambda: all(a["state"] == "RUNNING" for a in actors(running).values()), timeout=15,
                   what="comm.1 RUNNING again, by itself")
        type, body = ask(desk, "Task", {"Mrd": "chat", "ClientUniqueId": "after"})
        assert (type, body["State"]) == ("TaskState", "QUEUED")
        acknowledged.append(body["TaskId"])
        assert running.cli("status").returncode == 0
        routed = sum(s["routed"] for s in chat_stats(running).values())
        wait_until(lambda: sum(s["routed"] for s in chat_stats(running).values()) > routed + 20, timeout=15,
                   what="tasks routed again (the MRE resends what waited, backing off to 5 s)")
        wait_until(lambda: running.status()["supervisor"]["files_unwritten"] == [], timeout=5,
                   what="topology.json and state.json written")
        events.send_signal(signal.SIGINT)
        seen = [json.loads(line) for line in events.communicate(timeout=10)[0].splitlines() if line.startswith(b"{")]
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    comm_events = [(e["state"], e.get("reason", "")) for e in seen if e.get("name") == "comm.1"]
    degraded_at = next(i for i, (state, reason) in enumerate(comm_events)
                       if state == "DEGRADED" and "database or disk is full" in reason)
    assert ("RUNNING", "serving again") in comm_events[degraded_at:]
    assert all(s["lost"] == 0 for s in chat_stats(running).values())

    # Nothing acknowledged is lost: a Comm restarted from its journal knows every task.
    resyncs = {name: s["resyncs"] for name, s in chat_stats(running).items()}
    os.kill(pids["comm.1"], signal.SIGKILL)
    wait_until(lambda: actors(running)["comm.1"]["state"] == "RUNNING"
               and actors(running)["comm.1"]["pid"] not in (None, pids["comm.1"]), timeout=15, what="comm.1 back")
    running.remember_pids()
    wait_until(lambda: answer(desk, desk.send("GetAgentState", {"AgentId": "alice", "Mrd": "chat"}), 0.2),
               timeout=10, what="our subscription live on the new Comm")  # (notifications of our tasks come too)
    for task_id in acknowledged:
        type, body = ask(desk, "GetTaskState", {"TaskId": task_id})
        assert type == "TaskState" and body["TaskId"] == task_id, body
    wait_until(lambda: all(s["resyncs"] > resyncs[name] for name, s in chat_stats(running).items()), timeout=15,
               what="the Chat Servers resynchronised with the new Comm")
    routed = sum(s["routed"] for s in chat_stats(running).values())
    wait_until(lambda: sum(s["routed"] for s in chat_stats(running).values()) > routed + 20, timeout=15,
               what="tasks routed again")
    assert all(s["lost"] == 0 for s in chat_stats(running).values())


def test_a_flood_of_refused_messages_writes_a_bounded_number_of_log_lines(start_topology, chat_client):
    running = start_topology(base_topology("floods"))
    desk = chat_client(running.endpoints(), "flood-desk")
    desk.handshake()
    for _ in range(300):
        desk.send_raw(b"Teleport", b"{}")
    comm = lambda: control_client.ask(running.topology, "stats")["actors"]["comm.1"]["counters"]  # noqa: E731
    wait_until(lambda: comm()["refused"] >= 300, timeout=10, what="300 refusals")
    log = running.topology.run_dir / "logs" / "comm.1.log"
    refusals = lambda: [line for line in log.read_text().splitlines() if "refused Teleport" in line]  # noqa: E731
    wait_until(lambda: len(refusals()) >= 20, timeout=10, what="the first 20 refusals in the log")
    assert len(refusals()) == 20
    assert comm()["refusals_unlogged"] >= 280
