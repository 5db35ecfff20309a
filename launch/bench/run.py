"""`mroute bench`: figures, never pass/fail.

`routing`: the MRE's cost of one routing decision (NewTask in -> TaskAgentSelected out) as
the number of logged-in agents grows, measured on the engine itself (no sockets, in a
process of its own: actors/bench.py), with a three-step precision queue so that several
step indexes are consulted. Next to it, in the same run, the raw cost of moving one orjson
message through a ZeroMQ PUSH/PULL pair in this process: the floor any routed message pays."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import zmq

def in_actors(*args: str) -> dict[str, Any]:
    """Run one of the actors' micro-benchmarks (actors/bench.py) in a process of its own."""
    done = subprocess.run([sys.executable, "-m", "actors", "bench", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"python -m actors bench {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return orjson.loads(done.stdout.splitlines()[-1])


def routing_cost(agents: int, decisions: int = 20_000) -> dict[str, Any]:
    return in_actors("routing", str(agents), str(decisions))


def comm_bytes_per_agent(agents: int) -> int:
    return int(in_actors("comm-memory", str(agents))["comm_bytes_per_agent"])


def bytes_per_live_task(tasks: int = 20_000) -> dict[str, Any]:
    return in_actors("task-memory", str(tasks))


def batch_check_cost(turns: int = 20_000) -> dict[str, Any]:
    """Comm's cost of asking each receiver whether it took batches (actors/bench.py)."""
    return in_actors("batch-check", str(turns))


def raw_push_pull_us(messages: int = 50_000) -> float:
    """Microseconds per message: orjson encode, PUSH, PULL, decode, over ipc in one process."""
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    endpoint = f"ipc:///tmp/mroute-bench-{time.time_ns()}.ipc"
    pull.bind(endpoint)
    push.connect(endpoint)
    body = {"TaskId": "t1", "AgentId": "a1", "Status": "RESERVED"}
    try:
        started = time.perf_counter()
        for _ in range(messages // 100):
            for _ in range(100):
                push.send_multipart([b"TaskAgentSelected", orjson.dumps(body)])
            for _ in range(100):
                orjson.loads(pull.recv_multipart()[1])
        return (time.perf_counter() - started) / messages * 1e6
    finally:
        push.close(0)
        pull.close(0)
        ctx.term()


# The raw ZeroMQ ceiling on this machine (design.md 7): what any figure of ours compares to.

def _sender(endpoint: str, count: int, encode: bool, parent: int) -> None:
    from wire.kernel.loop import die_with_parent
    die_with_parent(parent)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.sndhwm = 100_000
    push.connect(endpoint)
    body = {"TaskId": "1a1fc-123", "AgentId": "agent17", "Status": "RESERVED", "MRD": "chat"}
    frames = [b"TaskAgentSelected", orjson.dumps(body)]
    for _ in range(count):
        if encode:
            frames = [b"TaskAgentSelected", orjson.dumps(body)]
        push.send_multipart(frames)
    push.close(linger=-1)  # this is the measurement: deliver everything
    ctx.term()


def _relay(pull_endpoints: list[str], push_endpoints: list[str], parent: int) -> None:
    """Forward each queue to its pair, decoding and re-encoding every body as an actor would."""
    from wire.kernel.loop import die_with_parent
    die_with_parent(parent)
    ctx = zmq.Context()
    pulls = [ctx.socket(zmq.PULL) for _ in pull_endpoints]
    pushes = [ctx.socket(zmq.PUSH) for _ in push_endpoints]
    for sock, endpoint in zip(pulls, pull_endpoints):
        sock.bind(endpoint)
    for sock, endpoint in zip(pushes, push_endpoints):
        sock.connect(endpoint)
    poller = zmq.Poller()
    for sock in pulls:
        poller.register(sock, zmq.POLLIN)
    route = dict(zip(pulls, pushes))
    while True:
        for sock, _ in poller.poll():
            type, body = sock.recv_multipart()
            if type == b"stop":
                return
            route[sock].send_multipart([type, orjson.dumps(orjson.loads(body))])


def raw_ceiling(messages: int = 200_000, round_trips: int = 3_000) -> dict[str, Any]:
    """PUSH/PULL messages per second between two processes over ipc, an orjson body moved as
    it is (`raw_msgs_per_s`) and encoded and decoded for every message
    (`raw_codec_msgs_per_s`); and the round trip of one message chat -> comm -> mre -> comm
    -> chat through three processes, each decoding and re-encoding it."""
    import multiprocessing
    import os
    import tempfile
    spawn = multiprocessing.get_context("spawn")
    directory = tempfile.mkdtemp(prefix="mroute-raw-", dir="/tmp")  # ipc paths must stay short
    ctx = zmq.Context()
    procs = []
    try:
        figures: dict[str, Any] = {}
        for encode, key in ((False, "raw_msgs_per_s"), (True, "raw_codec_msgs_per_s")):
            endpoint = f"ipc://{directory}/flood-{key}.ipc"
            pull = ctx.socket(zmq.PULL)
            pull.rcvhwm = 100_000
            pull.bind(endpoint)
            sender = spawn.Process(target=_sender, args=(endpoint, messages, encode, os.getpid()), daemon=True)
            procs.append(sender)
            sender.start()
            pull.recv_multipart()  # the clock starts at the first message: process start is not counted
            started = time.perf_counter()
            for _ in range(messages - 1):
                body = pull.recv_multipart()[1]
                if encode:
                    orjson.loads(body)
            figures[key] = round((messages - 1) / (time.perf_counter() - started))
            pull.close(0)

        g, r, c, back = (f"ipc://{directory}/{name}.ipc" for name in ("g", "r", "c", "back"))
        comm = spawn.Process(target=_relay, args=([g, c], [r, back], os.getpid()), daemon=True)
        mre = spawn.Process(target=_relay, args=([r], [c], os.getpid()), daemon=True)
        procs += [comm, mre]
        back_pull = ctx.socket(zmq.PULL)
        back_pull.bind(back)
        out = ctx.socket(zmq.PUSH)
        out.connect(g)
        comm.start()
        mre.start()
        body = orjson.dumps({"Mrd": "chat", "ClientUniqueId": "c1", "ReplyTo": "chat.1"})
        out.send_multipart([b"Task", body])  # the first trip waits for every process to be up
        back_pull.recv_multipart()
        rtts = []
        for _ in range(round_trips):
            sent = time.perf_counter()
            out.send_multipart([b"Task", body])
            back_pull.recv_multipart()
            rtts.append((time.perf_counter() - sent) * 1e6)
        rtts.sort()
        return {**figures, "raw_rtt_p50_us": round(rtts[len(rtts) // 2], 1),
                "raw_rtt_p99_us": round(rtts[int(len(rtts) * 0.99)], 1)}
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        ctx.destroy(linger=0)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


# The system: full task lifecycles through a real topology --------------------------------------

def cpu_per_lifecycle(cpu_percent: dict[str, float], completed_per_s: float) -> dict[str, int]:
    """Microseconds of CPU each process spent per lifecycle completed, and their total."""
    if completed_per_s <= 0:
        return {}
    each = {name: round(pct * 1e4 / completed_per_s) for name, pct in cpu_percent.items() if pct >= 0}
    return {**each, "total": sum(each.values())}


def system_figures(base_file: Path, servers: int = 2, agents_per_server: int = 250, step_s: float = 3.0,
                   latency_rate: float = 1000.0, hold_s: float = 0.0) -> dict[str, Any]:
    """The topology file's Comm, MRE and GC with `servers` simulated Chat Servers whose
    agents accept at once and close after 10 ms. First routing latency at `latency_rate`
    tasks/s; then offer twice as many tasks/s a step until fewer than 90 % complete and the
    offer is at least twice the best: the most lifecycles/s completed (Task -> routed ->
    accepted -> closed) is the throughput, and the last step says whether overload collapses
    it. `hold_s`: then twice the best is offered that long, every second of it measured
    (`overload_hold`): a 3 s step can end before a collapse begins."""
    from wire.dist import parse

    from ..load.fleet import SpawnedFleet
    from ..load.plan import LoadPlan, Reading
    from ..procstat import cpu_seconds

    plan = LoadPlan(rate=0, duration=0, handle=parse("fixed:0.01"), think=parse("fixed:0"), patience=None)
    started = time.perf_counter()
    fleet = SpawnedFleet(base_file, servers, agents_per_server, plan)  # it cleans up if it fails
    chats = fleet.chats

    pids = fleet.pids()
    busy: dict[str, float] = {}  # CPU % of each process during the last step offered

    def offer(total_rate: float, seconds: float) -> tuple[float, Reading, Reading]:
        fleet.tell({"rate": total_rate / len(chats)})
        if not fleet.wait(0.5):  # let the rate settle
            raise KeyboardInterrupt
        before = Reading.of(fleet.stats(), chats)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        if not fleet.wait(seconds):
            raise KeyboardInterrupt  # interrupted: no figure from a cut-short step
        after = Reading.of(fleet.stats(), chats)
        elapsed = after.at - before.at
        for name, pid in pids.items():
            used, was = cpu_seconds(pid), cpu_before[name]
            busy[name] = round(100 * (used - was) / elapsed, 1) if used is not None and was is not None else -1
        return (after.counts["closed"] - before.counts["closed"]) / elapsed, before, after

    def drain(timeout: float = 30.0) -> None:
        """No customers until every task offered so far has ended: a step's backlog must
        not be measured as the next step's latency."""
        fleet.tell({"rate": 0})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reading = Reading.of(fleet.stats(), chats)
            if not (reading.open or reading.unacknowledged) or not fleet.wait(0.1):
                return

    def hold(rate: float, seconds: float, peak: float) -> dict[str, Any]:
        """Offer `rate` for `seconds`: lifecycles completed each second, against the peak,
        and the most tasks Comm held waiting and live meanwhile (what overload is bounded by)."""
        fleet.tell({"rate": rate / len(chats)})
        if not fleet.wait(0.5):
            raise KeyboardInterrupt
        start = last = Reading.of(fleet.stats(), chats)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        per_second, waiting, live = [], last.waiting, last.comm_live
        for _ in range(max(1, round(seconds))):
            if not fleet.wait(1.0):
                raise KeyboardInterrupt
            now = Reading.of(fleet.stats(), chats)
            per_second.append((now.counts["closed"] - last.counts["closed"]) / (now.at - last.at))
            waiting, live, last = max(waiting, now.waiting), max(live, now.comm_live), now
        elapsed = last.at - start.at
        completed = (last.counts["closed"] - start.counts["closed"]) / elapsed
        cpu = {name: round(100 * (cpu_seconds(pid) - cpu_before[name]) / elapsed, 1)  # type: ignore[operator]
               for name, pid in pids.items() if cpu_before[name] is not None}
        def added(count: str) -> int:
            return sum(int(s.get(count, 0)) for s in last.servers.values()) - \
                sum(int(s.get(count, 0)) for s in start.servers.values())
        refused, throttled = added("refused"), added("throttled")
        return {"offered_per_s": round(rate), "seconds": round(elapsed, 1), "completed_per_s": round(completed),
                "vs_peak": round(completed / peak, 3) if peak else None,
                "worst_second_per_s": round(min(per_second)), "worst_second_vs_peak": round(min(per_second) / peak, 3)
                if peak else None, "per_second": [round(x) for x in per_second], "waiting_max": waiting,
                "live_max": live, "refused_per_s": round(refused / elapsed),
                "throttled_per_s": round(throttled / elapsed), "cpu_percent": cpu,
                "cpu_us_per_lifecycle": cpu_per_lifecycle(cpu, completed)}

    try:
        _, before, after = offer(latency_rate, step_s)
        latency = after.latency.minus(before.latency)
        drain()
        steps = []
        best = 0.0
        rate = 500.0
        while rate <= 64_000:
            achieved, _, _ = offer(rate, step_s)
            steps.append({"offered_per_s": rate, "completed_per_s": round(achieved), "cpu_percent": dict(busy),
                          "cpu_us_per_lifecycle": cpu_per_lifecycle(busy, achieved)})
            best = max(best, achieved)
            if achieved < 0.9 * rate and rate >= 2 * best:  # saturated, and offered twice the peak: no collapse?
                break
            rate *= 2
        drain()
        peak = max(steps, key=lambda step: step["completed_per_s"])
        figures = {"tasks_per_s": round(best), "route_p50_us": round(latency.percentile(50), 1),
                   "route_p99_us": round(latency.percentile(99), 1), "latency_rate_per_s": latency_rate,
                   "agents": servers * agents_per_server, "chat_servers": servers, "steps": steps,
                   "cpu_us_per_lifecycle": peak["cpu_us_per_lifecycle"]}
        if hold_s > 0:
            figures["overload_hold"] = hold(2 * best, hold_s, best)
            drain()
        figures["system_duration_s"] = round(time.perf_counter() - started, 1)
        return figures
    finally:
        fleet.close()
