"""Micro-benchmarks of the actors' own state machines, no sockets: the MRE's cost of one
routing decision and its bytes per agent, Comm's bytes per agent. `mroute bench` runs
them here, in a process of their own (so tracemalloc sees only them):

    python -m actors.bench routing AGENTS DECISIONS    -> one JSON object
    python -m actors.bench comm-memory AGENTS          -> {"comm_bytes_per_agent": N}
    python -m actors.bench task-memory TASKS           -> Comm's and the MRE's bytes per live task
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
from collections import deque
from typing import Any

import orjson

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


def comm_bytes_per_agent(agents: int) -> int:
    """Bytes Comm holds per logged-in READY agent: its directory entry (as Comm keeps it),
    session and presence, measured with tracemalloc on Comm's core itself."""
    from actors.comm.core import CommCore
    from actors.comm.server import agent_directory
    from wire.passwords import hash_password
    mrds = {"chat": {"max_tasks": 3, "interruptible": True, "default_queue": "q"}}
    noop = lambda *args: None  # noqa: E731
    gc.collect()
    tracemalloc.start()
    secret = hash_password("secret")  # as topology.json has it: the hash, one per distinct password
    directory = agent_directory({"agents": [{"id": f"agent{i}", "password_hash": secret} for i in range(agents)]})
    core = CommCore(directory, mrds, send_event=noop, to_mre=noop, stream="bench", queues={"q": QUEUE})
    for agent in directory:
        core.request("Connect", {"AgentId": agent, "Password": "secret", "Destination": "chat.1"})
        core.request("Login", {"AgentId": agent, "Password": "secret", "Mrd": "chat"})
        core.request("AgentState", {"AgentId": agent, "State": "READY", "Mrd": "chat"})
    core.take_changes()  # what the journal would have written by now
    memory, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert core.stats()["agents_logged_in"] == agents
    return round(memory / agents)


TYPICAL_PARAMS = [["queue", "q"], ["customer", "Jane Doe"], ["email", "jane.doe@example.com"], ["language", "en"],
                  ["topic", "billing"], ["order", "A-1234567"], ["channel", "web"], ["priority", 1]]


def bytes_per_live_task(tasks: int) -> dict[str, int]:
    """Bytes Comm and the MRE each hold per live (queued) task with eight typical params."""
    from actors.comm.core import CommCore
    from actors.comm.task_requests import TaskLimits
    noop = lambda *args: None  # noqa: E731
    mrds = {"chat": {"max_tasks": 3, "interruptible": True, "default_queue": "q"}}
    core = CommCore({}, mrds, send_event=noop, to_mre=noop, stream="bench", queues={"q": QUEUE},
                    limits=TaskLimits(max_waiting=tasks))  # every one of them waits
    gc.collect()
    tracemalloc.start()
    for n in range(tasks):
        core.request("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}", "ReplyTo": "chat.1", "MsgId": f"m{n}",
                              "params": TYPICAL_PARAMS})
    core.take_changes()
    comm, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    engine = Engine(mrds, lambda t, b: None, queues={"q": QUEUE})
    gc.collect()
    tracemalloc.start()
    for n in range(tasks):  # what Comm sends it: the params the MRE reads
        engine.on_new_task({"MRD": "chat", "TaskId": f"t{n}", "params": {"queue": "q", "priority": 1},
                            "ClientUniqueId": f"c{n}"})
    mre, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"live_tasks": tasks, "comm_bytes_per_task": round(comm / tasks), "mre_bytes_per_task": round(mre / tasks)}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "routing":
        figures = routing_cost(int(argv[1]), int(argv[2]))
    elif len(argv) == 2 and argv[0] == "comm-memory":
        figures = {"comm_bytes_per_agent": comm_bytes_per_agent(int(argv[1]))}
    elif len(argv) == 2 and argv[0] == "task-memory":
        figures = bytes_per_live_task(int(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(orjson.dumps(figures).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
