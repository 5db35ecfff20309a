"""The CLI against real topologies: up, status, down, check, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import yaml

from launch import client as control_client

from ..helpers import MROUTE, base_topology, pid_alive, tagged_processes, wait_until


def run(directory, *args, timeout=60):
    return subprocess.run([*MROUTE, *args], cwd=directory, capture_output=True, text=True, timeout=timeout)


def write(directory, spec):
    (directory / "topology.yaml").write_text(yaml.safe_dump(spec))


def test_status_with_nothing_running_says_so_at_once(tmp_path):
    write(tmp_path, base_topology("idle"))
    result = run(tmp_path, "status", "--json", timeout=10)
    assert result.returncode != 0
    assert json.loads(result.stdout)["running"] is False
    assert "GC" not in json.loads(result.stdout)["endpoints"]
    assert "not running" in run(tmp_path, "status").stdout
    down = run(tmp_path, "down")  # idempotent
    assert down.returncode == 0 and "was not running" in down.stdout


def test_check_names_the_key_of_a_bad_topology(tmp_path):
    spec = base_topology()
    spec["actors"]["mre"]["count"] = 2
    write(tmp_path, spec)
    result = run(tmp_path, "check", "topology.yaml")
    assert result.returncode != 0 and "actors.mre.count" in result.stderr
    up = run(tmp_path, "up", "--for", "1")
    assert up.returncode != 0 and "actors.mre.count" in up.stderr


def test_detached_topology_status_and_down_leave_no_process(tmp_path):
    write(tmp_path, base_topology("det", chat={"count": 2, "agents": 3, "rate": 5, "handle": 0.5}))
    try:
        up = run(tmp_path, "up", "--detach")
        assert up.returncode == 0, up.stderr + up.stdout
        status = run(tmp_path, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        state = json.loads(status.stdout)
        assert [a["name"] for a in state["actors"]] == ["comm.1", "mre.1", "chat.1", "chat.2"]
        assert all(a["state"] == "RUNNING" and a["pid"] for a in state["actors"])
        assert state["endpoints"]["General"].startswith("ipc://")
        # no gc actor, no GC endpoints: only what some actor binds is listed
        assert set(state["endpoints"]) == {"General", "CommunicationServer", "ChatEvents", "RoutingEngine"}
        pids = [a["pid"] for a in state["actors"]] + [state["supervisor"]["pid"]]
        again = run(tmp_path, "up", "--detach")
        assert again.returncode != 0 and "running already" in again.stderr
        down = run(tmp_path, "down")
        assert down.returncode == 0, down.stderr
        wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="every process to end")
        assert run(tmp_path, "status").returncode != 0
    finally:
        run(tmp_path, "down")


def test_killing_the_supervisor_takes_every_actor_with_it(tmp_path):
    write(tmp_path, base_topology("orphans", chat={"count": 1, "agents": 2, "rate": 1, "handle": 1}))
    try:
        assert run(tmp_path, "up", "--detach").returncode == 0
        state = json.loads(run(tmp_path, "status", "--json").stdout)
        actors = [a["pid"] for a in state["actors"]]
        os.kill(state["supervisor"]["pid"], signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(p) for p in actors), timeout=10, what="actors to die with it")
    finally:
        run(tmp_path, "down")


def test_bounded_run_routes_tasks_and_prints_a_summary(tmp_path):
    # 8 agents handling 0.05 s each take 20 tasks/s with room to spare: a task waits only while
    # it is on its way (at 0.3 s, beside two busy loops, 8 agents fell behind 20/s and 19 of 71
    # tasks were still waiting for one when the run ended)
    write(tmp_path, base_topology("demo", chat={"count": 2, "agents": 4, "rate": 10, "handle": 0.05}))
    result = run(tmp_path, "up", "--for", "3", "--quiet", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["agents_logged_in"] == 8
    assert summary["tasks_created"] > 5
    assert summary["tasks_routed"] >= summary["tasks_created"] - 3  # the last ones may be in flight
    assert summary["tasks_closed"] > 0 and summary["errors"] == 0
    assert 0 < summary["route_p50_us"] <= summary["route_p99_us"]


def test_bench_routing_prints_a_row_per_size(tmp_path):
    result = run(tmp_path, "bench", "routing", "--agents", "10,100", "--decisions", "300", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert [row["agents"] for row in summary["rows"]] == [10, 100]
    assert all(row["decisions"] == 300 and row["route_p50_us"] > 0 for row in summary["rows"])
    assert summary["raw_push_pull_us"] > 0


def test_bench_raw_prints_the_ceiling_and_leaves_no_process(tmp_path):
    result = subprocess.run([*MROUTE, "bench", "raw", "--json"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "MROUTE_TEST_TAG": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["raw_msgs_per_s"] > 0 and figures["raw_codec_msgs_per_s"] > 0
    assert 0 < figures["raw_rtt_p50_us"] <= figures["raw_rtt_p99_us"]
    # the floor under a lifecycle: its three processes' CPU, each and in all
    assert figures["floor_lifecycles_per_s"] > 0 and figures["floor_messages_per_lifecycle"] == 16
    floor = figures["floor_cpu_us_per_lifecycle"]
    assert set(floor) == {"comm", "mre", "chat", "total"}
    assert floor["total"] == floor["comm"] + floor["mre"] + floor["chat"]
    # and its routing latency, paced as the system's is measured
    assert 0 < figures["floor_route_p50_us"] <= figures["floor_route_p99_us"]
    # its sender and relays are spawned processes: none may outlive the command
    assert tagged_processes(str(tmp_path)) == []


def test_bench_prints_raw_and_system_figures_as_one_json_line(tmp_path):
    write(tmp_path, base_topology("bench"))
    result = subprocess.run([*MROUTE, "bench", "--json", "--step", "1", "--memory-agents", "1000", "--hold", "2"],
                            cwd=tmp_path,
                            capture_output=True, text=True, timeout=170,
                            env={**os.environ, "MROUTE_TEST_TAG": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("raw_msgs_per_s", "raw_rtt_p50_us", "tasks_per_s", "route_p50_us", "route_p99_us", "agents",
                "duration_s", "comm_bytes_per_agent", "mre_bytes_per_agent", "comm_bytes_per_task",
                "mre_bytes_per_task", "batch_unchecked_ns", "batch_checked_batches_ns", "batch_checked_plain_ns"):
        assert figures[key] > 0, key
    # the cost of batches only for who asks: a difference, which noise may make negative
    assert isinstance(figures["batch_check_ns"], float)
    assert figures["steps"][0]["completed_per_s"] > 0
    assert {"comm.1", "mre.1", "chat.1", "chat.2"} <= set(figures["steps"][-1]["cpu_percent"])
    # CPU per lifecycle at the peak, each process's and their total (issue 28's measure), beside the floor's
    cpu = figures["cpu_us_per_lifecycle"]
    assert {"comm.1", "mre.1", "chat.1", "chat.2"} <= set(cpu) and cpu["comm.1"] > 0
    assert cpu["total"] == sum(us for name, us in cpu.items() if name != "total")
    assert figures["floor_cpu_us_per_lifecycle"]["total"] > 0
    # twice the peak held, every second of it measured
    held = figures["overload_hold"]
    assert abs(held["offered_per_s"] - 2 * figures["tasks_per_s"]) <= 1 and len(held["per_second"]) == 2
    assert 0 <= held["throttled_per_s"] <= held["refused_per_s"]   # the Chat Servers' own refusals among all
    assert held["completed_per_s"] > 0 and held["worst_second_per_s"] == min(held["per_second"])
    assert held["waiting_max"] >= 0 and held["live_max"] >= held["waiting_max"]
    assert tagged_processes(str(tmp_path)) == []  # the bench topology is gone with the command


def test_bench_curve_prints_the_honest_round_trip_at_rest_and_in_a_wrong_key_storm(tmp_path):
    write(tmp_path, base_topology("curvebench"))
    result = subprocess.run([*MROUTE, "bench", "curve", "--json", "--sockets", "50", "--seconds", "0.5"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=90,
                            env={**os.environ, "MROUTE_TEST_TAG": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for phase in ("rest_ms", "storm_ms"):
        assert figures[phase]["n"] > 0 and 0 < figures[phase]["p50"] <= figures[phase]["p99"], phase
    assert figures["auth_failures"] > 0  # the storm's knocks, as Comm counted them
    assert figures["identity"]["messages"] == 50_000 and figures["identity"]["with_sender_us"] > 0  # it was measured
    assert figures["comm_cpu_s"] >= 0 and set(figures["comm_cpu_by_thread_s"]) == {"main", "zmq", "other"}
    assert tagged_processes(str(tmp_path)) == []  # the topology and the storm are gone with the command


def test_top_once_shows_every_actor_agents_and_rates(start_topology):
    running = start_topology(base_topology("topped", chat={"count": 2, "agents": 3, "rate": 10, "handle": 0.2,
                                                          "think": [0, 0.05]}))
    wait_until(lambda: control_client.ask(running.topology, "stats")["actors"]["comm.1"]["agents_logged_in"] == 6,
               timeout=15, what="the agents to log in")
    result = running.cli("top", "--once", "--json", "--interval", "1")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert [p["name"] for p in view["processes"]] == ["comm.1", "mre.1", "chat.1", "chat.2"]
    assert all(p["state"] == "RUNNING" and p["rss_mb"] > 0 for p in view["processes"])
    assert sum(view["agents_by_state"]["chat"].values()) == 6
    assert view["processes"][0]["in_per_s"] > 0  # Comm hears the Chat Servers' traffic
    text = running.cli("top", "--once", "--interval", "0.5")
    assert text.returncode == 0 and all(name in text.stdout for name in ("comm.1", "mre.1", "chat.1", "chat.2"))
    assert "agents by state" in text.stdout
    # every MRD and state, every queue, zero included: columns do not come and go
    from wire.states import AGENT_STATES
    assert set(view["agents_by_state"]) == {"chat", "voice"}
    assert all(list(by) == list(AGENT_STATES) for by in view["agents_by_state"].values())
    assert view["agents_by_state"]["voice"]["LOGOUT"] == 0
    assert set(view["queues"]) == set(running.topology.queues)   # chat-default, voice-default
    assert all(q["waiting"] >= 0 and "oldest_wait_s" in q for q in view["queues"].values())


def test_top_shows_a_frozen_actor_unresponsive_and_q_quits(start_topology):
    from .terminal import Terminal
    spec = base_topology("frozen")
    spec["supervisor"] = {"ping_interval": 0.2, "ping_misses": 2, "unresponsive_grace": 60}
    running = start_topology(spec)
    mre = next(a["pid"] for a in running.status()["actors"] if a["name"] == "mre.1")
    with Terminal(running.directory, "top", "--interval", "0.3") as term:
        term.expect("q quit")
        term.expect("PENDING_NOT_READY")      # every state has its row, zero or not
        term.expect("chat-default")           # an empty queue is listed
        os.kill(mre, signal.SIGSTOP)
        try:
            term.expect("UNRESPONSIVE", timeout=10)
        finally:
            os.kill(mre, signal.SIGCONT)
        term.type("q")
        assert term.wait_exit() == 0


def test_tap_prints_decoded_messages_without_taking_them(start_topology):
    running = start_topology(base_topology("tapped", chat={"count": 2, "agents": 3, "rate": 20, "handle": 0.2,
                                                          "think": [0, 0.05]}))
    result = running.cli("tap", "--count", "5", timeout=30)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert len(lines) == 5
    assert all(line.split()[1] in ("General", "RoutingEngine", "CommunicationServer", "GC", "ChatEvents", "GCEvents")
               for line in lines)
    tasks = running.cli("tap", "General", "--type", "Task", "--count", "2", timeout=30)
    task_lines = [line for line in tasks.stdout.splitlines() if not line.startswith("#")]
    assert len(task_lines) == 2 and all(" General " in f" {line} " and " Task {" in line for line in task_lines)
    # the consumers still got everything: routing goes on
    before = control_client.ask(running.topology, "stats")["actors"]["chat.1"]["routed"]
    wait_until(lambda: control_client.ask(running.topology, "stats")["actors"]["chat.1"]["routed"] > before,
               timeout=10, what="routing to go on while tapped")


def test_the_supervisor_serves_prometheus_metrics_at_the_url_status_gives(start_topology):
    import urllib.request
    running = start_topology(base_topology("metered", chat={"count": 1, "agents": 3, "rate": 20, "handle": 0.2,
                                                           "think": [0, 0.05]}))
    status = json.loads(running.cli("status", "--json").stdout)
    assert status["metrics"].startswith("http://127.0.0.1:")

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(status["metrics"], timeout=5) as answer:
            text = answer.read().decode()
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line.startswith("mroute_")}
    wait_until(lambda: scrape().get('mroute_routing_latency_seconds_count{actor="chat.1"}', 0) > 5, timeout=15,
               what="routed tasks in the metrics")  # stats are polled once scrapes come
    series = scrape()
    assert series['mroute_actor_up{actor="comm.1",role="comm"}'] == 1.0
    assert series['mroute_messages_received_total{actor="comm.1",role="comm"}'] > 0
    assert series['mroute_tasks_total{event="created"}'] >= series['mroute_tasks_total{event="routed"}'] > 0
    assert sum(v for k, v in series.items() if k.startswith('mroute_agents{mrd="chat"')) == 3
    assert (series['mroute_routing_latency_seconds_bucket{actor="chat.1",le="+Inf"}']
            == series['mroute_routing_latency_seconds_count{actor="chat.1"}'])
    assert series['mroute_routing_latency_seconds_bucket{actor="chat.1",le="0.001024"}'] <= series[
        'mroute_routing_latency_seconds_bucket{actor="chat.1",le="0.002048"}']


def test_trace_shows_a_routed_tasks_hops_in_time_order(start_topology, monkeypatch):
    running = start_topology(base_topology("traced", chat={"count": 1, "agents": 3, "rate": 10, "handle": 0.2,
                                                          "think": [0, 0.05]}))
    tapped = running.cli("tap", "ChatEvents", "--type", "TaskAgentSelected", "--count", "1", timeout=30)
    line = tapped.stdout.strip().splitlines()[-1]
    task = json.loads(line[line.index("{"):])["TaskId"]
    wait_until(lambda: len(json.loads(running.cli("trace", task, "--json").stdout or "{}").get("hops", [])) >= 5,
               timeout=10, what="the task's hops to be taken")
    trace = json.loads(running.cli("trace", task, "--json").stdout)
    hops = [(h["actor"], h["queue"], h["type"]) for h in trace["hops"]]
    assert hops[0] == ("comm.1", "General", "Task")
    # a TaskState hop says which state it moved the task to, and why
    seen: list = []

    def closed_in_trace() -> bool:
        seen[:] = json.loads(running.cli("trace", task, "--json").stdout)["hops"]
        return any(h["type"] == "TaskState" and h["state"] == "CLOSED" and h["code"] == "DONE" for h in seen)
    try:
        wait_until(closed_in_trace, timeout=20, what="the task's close (handle 0.2 s) in its trace")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; hops: {[(h['actor'], h['type'], h['state'], h['code']) for h in seen]}")
    monkeypatch.setenv("COLUMNS", "200")  # a row per line: rich wraps cells to fit a narrower console
    table = running.cli("trace", task)
    assert any("TaskState" in row and "CLOSED" in row and "DONE" in row for row in table.stdout.splitlines())
    for hop in (("mre.1", "RoutingEngine", "NewTask"), ("comm.1", "CommunicationServer", "TaskAgentSelected"),
                ("chat.1", "ChatEvents", "TaskAgentSelected")):
        assert hop in hops
    times = [h["at"] for h in trace["hops"]]
    assert times == sorted(times) and all(h["after_ms"] >= 0 for h in trace["hops"])
    missing = running.cli("trace", "no-such-task")
    assert missing.returncode != 0 and "no actor remembers" in missing.stderr


def test_json_log_lines_carry_the_task_and_agent_they_are_about(start_topology, chat_client, monkeypatch):
    monkeypatch.setenv("MROUTE_LOG_FORMAT", "json")  # what `up --log-json` sets for the actors
    running = start_topology(base_topology("jsonlogs"))
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    desk.send("TaskState", {"TaskId": "t-nobody-knows", "AgentId": "alice", "State": "ACTIVE", "MsgId": "m1"})
    assert desk.expect("Error", MsgId="m1")["Code"] == "NOT_FOUND"
    log_file = running.topology.run_dir / "logs" / "comm.1.log"

    def refusal() -> dict | None:
        for line in log_file.read_text().splitlines():
            try:
                entry = json.loads(line)  # every line is one JSON object (the last may be half written)
            except json.JSONDecodeError:
                continue
            if entry.get("TaskId") == "t-nobody-knows":
                return entry
        return None
    wait_until(refusal, timeout=5, what="the refusal in Comm's log")
    entry = refusal()
    assert entry["AgentId"] == "alice" and entry["level"] == "WARNING" and entry["actor"] == "comm.1"
