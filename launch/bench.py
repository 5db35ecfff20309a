"""`mroute bench`: figures, never pass/fail.

`routing`: the MRE's cost of one routing decision (NewTask in -> TaskAgentSelected out) as
the number of logged-in agents grows, measured on the engine itself (no sockets), with a
three-step precision queue so that several step indexes are consulted. Next to it, in the
same run, the raw cost of moving one orjson message through a ZeroMQ PUSH/PULL pair in
this process: the floor any routed message pays."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections import deque
from typing import Any

import orjson
import zmq

from actors.mre.engine import Engine

# Steps with no timeout: every task has reached all three at once, so each decision looks
# at three step indexes (the most a decision on this queue can cost).
QUEUE = {"mrd": "chat", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15, "ttl": 300, "ageing": 60,
         "steps": [{"expr": "billing >= 8", "timeout": 0}, {"expr": "billing >= 4", "timeout": 0},
                   {"expr": "true", "timeout": 0}]}


def routing_cost(agents: int, decisions: int = 20_000) -> dict[str, Any]:
    mrds = {"chat": {"max_tasks": 3, "interruptible": True, "default_queue": "q"}}
    directory = {f"a{i}": {"attributes": {"billing": i % 10}} for i in range(agents)}
    selected: list[str] = []
    gc.collect()
    tracemalloc.start()
    engine = Engine(mrds, lambda t, b: selected.append(b["AgentId"]) if t == "TaskAgentSelected" else None,
                    queues={"q": QUEUE}, directory=directory)
    for agent in directory:
        engine.on_agent_state({"AgentId": agent, "State": "READY", "MRD": "chat"})
    memory, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held: deque[tuple[str, str]] = deque()
    steady = max(1, agents // 2)  # tasks held at once: agents busy and freed in turn, capacity to spare
    times = []
    for n in range(decisions):
        task = f"t{n}"
        before = len(selected)
        started = time.perf_counter_ns()
        engine.on_new_task({"MRD": "chat", "TaskId": task, "params": {}})
        times.append(time.perf_counter_ns() - started)
        if len(selected) != before + 1:
            raise RuntimeError(f"task {task} was not routed at once: the benchmark would measure queueing")
        agent = selected[-1]
        engine.on_task_state({"TaskId": task, "MRD": "chat", "State": "ACTIVE", "AgentId": agent})
        held.append((task, agent))
        if len(held) > steady:
            old, who = held.popleft()
            engine.on_task_state({"TaskId": old, "MRD": "chat", "State": "CLOSED", "AgentId": who})
    times.sort()
    return {"agents": agents, "decisions": decisions, "route_p50_us": times[len(times) // 2] / 1000,
            "route_p99_us": times[int(len(times) * 0.99)] / 1000, "mean_us": statistics.fmean(times) / 1000,
            "mre_bytes_per_agent": round(memory / agents)}


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
