"""Time that cannot jump (issue 24, item 6), with real processes under libfaketime: the wall
clock stepped, then Comm killed, and no task expires early. The story and the clocks
injected: tests/inprocess/test_journal_time.py."""

from __future__ import annotations

import glob
import os
import signal
import time
from pathlib import Path

import pytest

from launch import client as control_client

from ..helpers import base_topology, wait_until


LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)  # Debian's faketime


def step_to(stamp: Path, offset: str) -> None:
    """What every process's wall clock reads from now on: whole, never a half-written file."""
    partial = stamp.with_name(stamp.name + ".tmp")
    partial.write_text(f"{offset}\n")
    partial.replace(stamp)


def comm_queue(running) -> dict:
    stats = control_client.ask(running.topology, "stats")["actors"]["comm.1"]
    return stats["queues"]["chat-default"]


@pytest.mark.skipif(LIBFAKETIME is None, reason="libfaketime is not installed (Debian package faketime)")
@pytest.mark.parametrize("step", ["+1h", "-1h"])
def test_a_wall_clock_step_then_comm_killed_expires_nothing_early_in_real_processes(
        tmp_path, monkeypatch, start_topology, chat_client, step):
    """Every process of the topology reads a wall clock the test steps (as `date -s` or NTP
    would step the machine's); the monotonic clock is left alone, as a step leaves it."""
    stamp = tmp_path / "faketime"
    step_to(stamp, "+0")
    for key, value in {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(stamp), "FAKETIME_NO_CACHE": "1",
                       "FAKETIME_DONT_FAKE_MONOTONIC": "1"}.items():
        monkeypatch.setenv(key, value)
    spec = base_topology("clockstep")
    spec["queues"] = {"chat-default": {"mrd": "chat", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15,
                                       "ttl": 300, "steps": [{"expr": "true", "timeout": 30}]}}
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    tasks = []
    for n in range(5):   # nobody logged in: they wait
        msg_id = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"customer{n}"})
        tasks.append(desk.expect("TaskState", MsgId=msg_id, State="QUEUED")["TaskId"])
    wait_until(lambda: comm_queue(running)["oldest_wait_s"] > 0, what="a wait Comm can measure")
    before_asked = time.monotonic()
    waited_before = comm_queue(running)["oldest_wait_s"]

    step_to(stamp, step)   # the machine's wall clock jumps an hour
    comm = next(a for a in running.status()["actors"] if a["name"] == "comm.1")
    os.kill(comm["pid"], signal.SIGKILL)

    def restarted():
        now = next(a for a in running.status()["actors"] if a["name"] == "comm.1")
        return now["state"] == "RUNNING" and now["pid"] not in (None, comm["pid"])
    wait_until(restarted, timeout=15, what="comm.1 restarted")
    running.remember_pids()
    desk.handshake()
    for task in tasks:
        msg_id = desk.send("GetTaskState", {"TaskId": task})
        answer = desk.expect("TaskState", MsgId=msg_id)
        assert answer["State"] == "QUEUED", f"{task} after a {step} step: {answer}"
    queue = comm_queue(running)
    waited_after = queue["oldest_wait_s"]
    asked_again = time.monotonic()
    assert queue["waiting"] == 5
    # what was waited still counts, and no more than the time that really went by (the
    # downtime included: same machine, same monotonic clock); 1 ms: Comm rounds to it
    assert waited_before <= waited_after <= waited_before + (asked_again - before_asked) + 0.001
