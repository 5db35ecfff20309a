"""The journal's life across whole-topology stops, through the CLI and real processes.

Found by an operator: SIGKILL of a detached topology's supervisor holding 10 queued tasks
and 3 logged-in agents, then `mroute up --detach`: the journal was deleted, every task
NOT_FOUND and the agents LOGOUT."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess

import yaml

from ..helpers import MROUTE, ChatClient, base_topology, pid_alive, wait_until
from .terminal import Terminal


def run(directory, *args, timeout=60):
    return subprocess.run([*MROUTE, *args], cwd=directory, capture_output=True, text=True, timeout=timeout)


def up_detached(directory):
    started = run(directory, "up", "--detach")
    assert started.returncode == 0, started.stderr + started.stdout
    return json.loads(run(directory, "status", "--json").stdout)


@contextlib.contextmanager
def detached_with_a_desk(directory, name):
    """A detached topology and a raw desk on it; `down` afterwards, whatever happened."""
    (directory / "topology.yaml").write_text(yaml.safe_dump(base_topology(name)))
    desk = None
    try:
        state = up_detached(directory)
        desk = ChatClient(state["endpoints"], "desk")
        desk.handshake()
        yield state, desk
    finally:
        if desk is not None:
            desk.close()
        run(directory, "down")


def task_state(desk, task_id):
    msg = desk.send("GetTaskState", {"TaskId": task_id})
    return desk.expect("TaskState", MsgId=msg)["State"]


def test_the_journal_survives_a_killed_supervisor_and_down_and_fresh_starts_empty(tmp_path):
    with detached_with_a_desk(tmp_path, "kept") as (state, desk):
        agents = ["agent1", "agent2", "agent3"]
        for agent in agents:
            desk.login(agent, "secret", ready=False)    # NOT_READY: the tasks stay queued
        tasks = []
        for n in range(10):
            msg = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}"})
            tasks.append(desk.expect("TaskState", MsgId=msg, State="QUEUED")["TaskId"])
        actors = [a["pid"] for a in state["actors"]]
        os.kill(state["supervisor"]["pid"], signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(p) for p in actors), timeout=10, what="actors to die with it")

        backup_while_down = run(tmp_path, "backup", str(tmp_path / "copy.sqlite"))
        assert backup_while_down.returncode == 0, backup_while_down.stderr
        assert "10 live tasks and 3 logged-in agents" in backup_while_down.stdout

        up_detached(tmp_path)                           # after a crash: carries on
        desk.handshake()
        assert {task_state(desk, t) for t in tasks} == {"QUEUED"}
        assert {desk.agent_state(a) for a in agents} == {"NOT_READY"}
        backup = run(tmp_path, "backup", str(tmp_path / "live.sqlite"))   # while it runs
        assert backup.returncode == 0 and "10 live tasks and 3 logged-in agents" in backup.stdout, backup.stdout
        assert run(tmp_path, "reset", "--yes").returncode == 1             # not while running

        assert run(tmp_path, "down").returncode == 0    # after a clean stop: carries on too
        up_detached(tmp_path)
        desk.handshake()
        assert {task_state(desk, t) for t in tasks} == {"QUEUED"}
        assert run(tmp_path, "down").returncode == 0

        fresh = run(tmp_path, "up", "--detach", "--fresh")   # not a terminal: --fresh is meant
        assert fresh.returncode == 0, fresh.stderr
        desk.handshake()
        msg = desk.send("GetTaskState", {"TaskId": tasks[0]})
        assert desk.expect("Error", MsgId=msg)["Code"] == "NOT_FOUND"
        assert desk.agent_state("agent1") == "LOGOUT"


def test_fresh_and_reset_ask_on_a_terminal_before_discarding_live_tasks(tmp_path):
    with detached_with_a_desk(tmp_path, "asked") as (_state, desk):
        msg = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "c"})
        task = desk.expect("TaskState", MsgId=msg, State="QUEUED")["TaskId"]
        assert run(tmp_path, "down").returncode == 0
        with Terminal(tmp_path, "reset") as term:
            term.expect("holds 1 live tasks and 0 logged-in agents. Discard it? [y/N]")
            term.line("n")
            assert term.wait_exit() == 1
        up_detached(tmp_path)                           # the answer was no: it is all there
        desk.handshake()
        assert task_state(desk, task) == "QUEUED"
        assert run(tmp_path, "down").returncode == 0
        reset = run(tmp_path, "reset", "--yes")
        assert reset.returncode == 0 and "journal discarded (1 live tasks" in reset.stdout, reset.stdout
        assert "no journal" in run(tmp_path, "reset", "--yes").stdout
