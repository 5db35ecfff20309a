"""Process control against real topologies: restarts after kill -9, crash loops, stops
that need KILL, scaling, the event stream, logs and the send probe."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import pytest

from ..helpers import MROUTE, base_topology, pid_alive, read_until, wait_until
from .terminal import Terminal

SIM = {"count": 1, "agents": 3, "rate": 0, "handle": 0.2, "think": [0.0, 0.05]}


def actor(running, name):
    return next(a for a in running.status()["actors"] if a["name"] == name)


def task_is_routed(running, chat_client, timeout=20.0):
    """A customer's task reaches an agent; retried while the topology recovers."""
    customer = chat_client(running.endpoints(), f"customer-{os.urandom(3).hex()}")

    def attempt():
        msg_id = customer.send("Task", {"Mrd": "chat", "ClientUniqueId": "c"})
        try:
            task_id = customer.expect("TaskState", MsgId=msg_id, timeout=0.5)["TaskId"]
            customer.expect("TaskAgentSelected", TaskId=task_id, timeout=2)
            return True
        except AssertionError:
            return False
    wait_until(attempt, timeout=timeout, interval=0, what="a task to be routed")


@pytest.mark.parametrize("victim", ["comm.1", "mre.1", "chat.1"])
def test_kill_9_of_a_role_restarts_it_and_tasks_route_again(start_topology, chat_client, victim):
    running = start_topology(base_topology(f"k{victim[0]}", chat=SIM))
    task_is_routed(running, chat_client)
    old_pid = actor(running, victim)["pid"]
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: (a := actor(running, victim))["state"] == "RUNNING" and a["restarts"] >= 1,
               timeout=15, what=f"{victim} to be RUNNING again")
    assert actor(running, victim)["pid"] != old_pid
    running.remember_pids()
    task_is_routed(running, chat_client)
    assert not pid_alive(old_pid)


def listen(running, seconds: float) -> subprocess.Popen:
    """`mroute events --json`, returned once it says its subscription is live."""
    events = subprocess.Popen([*MROUTE, "events", "--json", "--timeout", str(seconds)], cwd=running.directory,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = read_until(events, lambda line: "# listening" in line, timeout=10)
    assert any("# listening" in line for line in lines), lines
    return events


def tcp_endpoints() -> dict[str, str]:
    """Every endpoint on a port the kernel just handed out (tests never bind fixed ports)."""
    ports = []
    for _ in range(6):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    names = ("General", "RoutingEngine", "CommunicationServer", "ChatEvents", "GC", "GCEvents")
    return {name: f"tcp://127.0.0.1:{port}" for name, port in zip(names, ports)}


def test_a_role_that_exits_at_once_backs_off_then_is_fatal(start_topology):
    import zmq
    spec = base_topology("crashy")
    spec["transport"] = "tcp"
    spec["endpoints"] = tcp_endpoints()
    running = start_topology(spec)
    events = listen(running, 30)
    try:
        assert running.cli("stop", "mre").returncode == 0
        ctx = zmq.Context()
        squatter = ctx.socket(zmq.PULL)
        squatter.linger = 0
        squatter.bind(spec["endpoints"]["RoutingEngine"])  # the MRE cannot bind: it dies at start
        try:
            result = running.cli("start", "mre")
            assert result.returncode != 0
            assert actor(running, "mre.1")["state"] == "FATAL"
            status = running.cli("status")
            assert status.returncode != 0 and "FATAL" in status.stdout
        finally:
            squatter.close()
            ctx.term()
        assert running.cli("start", "mre").returncode == 0  # an operator starts it again
        assert actor(running, "mre.1")["state"] == "RUNNING"
    finally:
        events.terminate()
        out, _ = events.communicate(timeout=10)
    states = [e["state"] for e in map(json.loads, out.decode().splitlines()) if e["name"] == "mre.1"]
    assert states.index("BACKOFF") < states.index("FATAL")
    assert states.count("STARTING") >= 5 and states[-1] == "RUNNING"


def test_down_kills_an_actor_that_ignores_sigterm(start_topology):
    spec = base_topology("hung")
    spec["supervisor"] = {"stop_grace": 0.5}
    running = start_topology(spec)
    mre = actor(running, "mre.1")["pid"]
    comm = actor(running, "comm.1")["pid"]
    events = listen(running, 20)
    try:
        os.kill(mre, signal.SIGSTOP)  # a hung actor: TERM stays pending until KILL
        result = running.cli("down")
        assert result.returncode == 0, result.stderr
        assert not pid_alive(mre) and not pid_alive(comm)
    finally:
        events.terminate()
        out, _ = events.communicate(timeout=10)
    stopped = {e["name"]: e["exit_status"] for e in map(json.loads, out.decode().splitlines())
               if e["state"] == "STOPPED"}
    assert stopped["mre.1"] == -signal.SIGKILL
    assert stopped["comm.1"] == 0


def test_scale_up_and_down(start_topology, chat_client):
    spec = base_topology("scaler", chat={**SIM, "agents": 2}, agents=6)
    spec["supervisor"] = {"stop_grace": 0.5}
    running = start_topology(spec)
    result = running.cli("scale", "chat=3")
    assert result.returncode == 0, result.stderr
    names = [a["name"] for a in running.status()["actors"]]
    assert names == ["comm.1", "mre.1", "chat.1", "chat.2", "chat.3"]
    running.remember_pids()
    chat3 = actor(running, "chat.3")["pid"]
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    for agent in ("agent3", "agent4"):  # chat.3 desks the directory's 5th and 6th agents
        wait_until(lambda agent=agent: desk.agent_state(agent) == "READY", what=f"{agent} READY")
    # 8 agents in the directory, 2 a server: a 5th server would desk nobody yet make chats
    refused = running.cli("scale", "chat=5")
    assert refused.returncode == 1
    assert "chat.5 would desk 0 of their 2 agents" in refused.stderr and "at most 4" in refused.stderr, refused.stderr
    assert [a["name"] for a in running.status()["actors"]][-1] == "chat.3"   # nothing started
    with Terminal(running.directory, "scale", "chat=5") as term:   # a person is asked
        term.expect("Start them anyway? [y/N]")
        term.line("n")
        assert term.wait_exit() == 1
    assert [a["name"] for a in running.status()["actors"]][-1] == "chat.3"
    os.kill(chat3, signal.SIGSTOP)  # hung: it cannot sign its agents out as chat.2 does when stopped
    result = running.cli("scale", "chat=1")
    assert result.returncode == 0, result.stderr
    assert [a["name"] for a in running.status()["actors"]] == ["comm.1", "mre.1", "chat.1"]
    assert not pid_alive(chat3)
    # the removed servers' agents are out now (Comm answered before the CLI did), not UNKNOWN
    # until a grace period ends
    assert "logged out at once (their tasks back to the queues): agent3, agent4" in result.stdout
    assert {desk.agent_state(a) for a in ("agent1", "agent2", "agent3", "agent4")} == {"LOGOUT"}
    assert desk.agent_state("alice") == "READY"
    assert running.cli("scale", "comm=2").returncode != 0


def test_restart_stop_start_logs_and_send(start_topology):
    running = start_topology(base_topology("ops", chat=SIM))
    old = actor(running, "chat.1")["pid"]
    assert running.cli("restart", "chat").returncode == 0
    assert actor(running, "chat.1")["pid"] != old and actor(running, "chat.1")["state"] == "RUNNING"
    running.remember_pids()
    assert running.cli("stop", "chat.1").returncode == 0
    assert actor(running, "chat.1")["state"] == "STOPPED"
    assert running.cli("status").returncode == 1
    assert running.cli("start", "chat.1").returncode == 0
    running.remember_pids()
    assert running.cli("restart", "nobody").returncode != 0

    logs = running.cli("logs", "chat", "-n", "50")
    assert logs.returncode == 0 and "chat.1" in logs.stdout and "READY" in logs.stdout

    sent = running.cli("send", "Task", '{"Mrd": "chat", "ClientUniqueId": "probe"}', "--wait", "2")
    assert sent.returncode == 0, sent.stderr
    assert "TaskState" in sent.stdout and '"QUEUED"' in sent.stdout and "TaskAgentSelected" in sent.stdout
    bad = running.cli("send", "Task", '{"Mrd": "chat"}', "--wait", "1")
    assert "MISSING_FIELD" in bad.stdout


def test_two_topologies_run_side_by_side(start_topology, chat_client, tmp_path):
    first = start_topology(base_topology("one", chat=SIM))
    second = start_topology(base_topology("two", chat=SIM))
    assert first.topology.endpoints["General"] != second.topology.endpoints["General"]
    task_is_routed(first, chat_client)
    task_is_routed(second, chat_client)
    first.stop()
    task_is_routed(second, chat_client)


def test_up_refuses_a_topology_that_is_running(start_topology):
    running = start_topology(base_topology("twice"))
    proc = subprocess.Popen([*MROUTE, "up", "-f", str(running.file)], cwd=running.directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = read_until(proc, lambda line: False, timeout=20)
    assert proc.wait(timeout=20) != 0
    assert any("running already" in line for line in lines)


def test_a_child_that_fails_to_start_brings_its_traceback_to_the_cli(tmp_path):
    import yaml
    import zmq
    spec = base_topology("broken")
    spec["transport"] = "tcp"
    spec["endpoints"] = tcp_endpoints()
    spec["supervisor"] = {"ready_timeout": 5}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    ctx = zmq.Context()
    squatter = ctx.socket(zmq.PULL)
    squatter.linger = 0
    squatter.bind(spec["endpoints"]["RoutingEngine"])
    try:
        result = subprocess.run([*MROUTE, "up", "--detach"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60)
    finally:
        squatter.close()
        ctx.term()
        subprocess.run([*MROUTE, "down"], cwd=tmp_path, capture_output=True, timeout=30)
    assert result.returncode != 0
    assert "mre.1 (mre) failed to start" in result.stderr
    assert "Traceback" in result.stderr and "Address already in use" in result.stderr


def test_a_frozen_actor_is_unresponsive_then_killed_and_restarted(start_topology):
    """A SIGSTOPped actor answers no ping: UNRESPONSIVE (status exits non-zero), RUNNING
    again if it wakes within the grace, else killed and restarted like a crashed one."""
    spec = base_topology("frozen")
    spec["supervisor"] = {"ping_interval": 0.2, "ping_misses": 3, "unresponsive_grace": 2}
    running = start_topology(spec)
    events = listen(running, 60)
    mre, comm = actor(running, "mre.1")["pid"], actor(running, "comm.1")["pid"]
    try:
        os.kill(mre, signal.SIGSTOP)  # frozen a moment only: it answers again, the same process
        wait_until(lambda: actor(running, "mre.1")["state"] == "UNRESPONSIVE", timeout=5, what="mre.1 UNRESPONSIVE")
        os.kill(mre, signal.SIGCONT)
        wait_until(lambda: actor(running, "mre.1")["state"] == "RUNNING", timeout=5, what="mre.1 RUNNING again")
        assert actor(running, "mre.1")["pid"] == mre and actor(running, "mre.1")["restarts"] == 0

        os.kill(comm, signal.SIGSTOP)  # frozen for good
        wait_until(lambda: actor(running, "comm.1")["state"] == "UNRESPONSIVE", timeout=5,
                   what="comm.1 UNRESPONSIVE")
        status = running.cli("status", "--json")
        assert status.returncode != 0
        assert {a["name"]: a["state"] for a in json.loads(status.stdout)["actors"]}["comm.1"] == "UNRESPONSIVE"
        wait_until(lambda: (a := actor(running, "comm.1"))["state"] == "RUNNING" and a["pid"] != comm,
                   timeout=15, what="comm.1 killed and RUNNING again")
        assert actor(running, "comm.1")["restarts"] == 1
        running.remember_pids()
        assert not pid_alive(comm)
        assert running.cli("status").returncode == 0
    finally:
        for pid in (mre, comm):  # a stopped process would wait for its KILL: let teardown end it
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        events.terminate()
        out, _ = events.communicate(timeout=10)
    seen = [(e["name"], e["state"], e.get("reason", "")) for e in map(json.loads, out.decode().splitlines())]
    mre_states = [(state, reason) for name, state, reason in seen if name == "mre.1"]
    assert mre_states[-2:] == [("UNRESPONSIVE", "no answer to 3 pings"), ("RUNNING", "answering again")]
    comm_states = [state for name, state, _ in seen if name == "comm.1"]
    assert comm_states[-5:] == ["UNRESPONSIVE", "EXITED", "BACKOFF", "STARTING", "RUNNING"]
    failure = next(e for e in map(json.loads, out.decode().splitlines()) if e["name"] == "comm.1"
                   and e["state"] == "EXITED")
    assert failure["exit_status"] == -signal.SIGKILL and "unresponsive" in failure["failure"]
