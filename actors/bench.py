"""Micro-benchmarks of the actors' own state machines, no sockets: the MRE's cost of one
routing decision and its bytes per agent, Comm's bytes per agent. `mroute bench` runs
them here, in a process of their own (so tracemalloc sees only them):

    python -m actors bench routing AGENTS DECISIONS    -> one JSON object
    python -m actors bench comm-memory AGENTS          -> {"comm_bytes_per_agent": N}
    python -m actors bench task-memory TASKS           -> Comm's and the MRE's bytes per live task
    python -m actors bench identity MESSAGES           -> us a message to know its sender under CURVE
    python -m actors bench batch-check TURNS           -> ns a message to ask each receiver for its form
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
    core = CommCore(directory, mrds, send_event=noop, send_mre=noop, stream="bench", queues={"q": QUEUE})
    for agent in directory:
        core.request("Connect", {"AgentId": agent, "Password": "secret", "Destination": "chat.1"})
        core.request("Login", {"AgentId": agent, "Password": "secret", "Mrd": "chat", "ReplyTo": "chat.1"})
        core.request("AgentState", {"AgentId": agent, "State": "READY", "Mrd": "chat", "ReplyTo": "chat.1"})
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
    from actors.comm.admission import TaskLimits
    noop = lambda *args: None  # noqa: E731
    mrds = {"chat": {"max_tasks": 3, "interruptible": True, "default_queue": "q"}}
    core = CommCore({}, mrds, send_event=noop, send_mre=noop, stream="bench", queues={"q": QUEUE},
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


def identity_cost(messages: int = 50_000, rounds: int = 5) -> dict[str, Any]:
    """What knowing who sent each message costs under CURVE (issue 24): GetAgentState
    bodies through a CURVE PUSH/PULL pair over ipc with our ZAP handler, taken as Comm takes
    them when the sender's key matters (the first frame as a Frame, its User-Id, the check of
    the destinations it names) and as a receiver that does not ask; the two alternate, the
    medians of `rounds` each."""
    import os
    import tempfile

    import zmq
    from zmq.utils import z85

    from actors.comm.identity import stated_elsewhere
    from actors.frames import recv_frames, recv_frames_with_peer
    from actors.zap import Door
    ctx = zmq.Context()
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    door = Door(ctx, "bench", {z85.decode(client_public): "bench"})
    door.start()
    endpoint = f"ipc://{tempfile.gettempdir()}/mroute-identity-{os.getpid()}.ipc"
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.rcvhwm = push.sndhwm = 0  # every message of a round queued before it is taken
    pull.curve_server, pull.curve_publickey, pull.curve_secretkey = True, server_public, server_secret
    door.watch(pull)
    pull.bind(endpoint)
    push.curve_serverkey, push.curve_publickey, push.curve_secretkey = server_public, client_public, client_secret
    push.connect(endpoint)
    frames = [b"GetAgentState", orjson.dumps({"AgentId": "agent1", "Mrd": "chat", "MsgId": "bench.desk-123",
                                              "ReplyTo": "bench.desk"})]

    def take(with_peer: bool) -> float:
        for _ in range(messages):
            push.send_multipart(frames)
        started = time.perf_counter()
        taken = 0
        while taken < messages:
            pull.poll(1000)
            while True:
                if with_peer:
                    got, peer = recv_frames_with_peer(pull)
                    if got is None:
                        break
                    if stated_elsewhere(peer, orjson.loads(got[1])) is not None:
                        raise RuntimeError("the bench key was refused its own destination")
                else:
                    got = recv_frames(pull)
                    if got is None:
                        break
                    orjson.loads(got[1])
                taken += 1
        return (time.perf_counter() - started) / messages * 1e6

    try:
        take(False)  # warm up: the handshake, the pipes
        plain, keyed = [], []
        for _ in range(rounds):
            plain.append(take(False))
            keyed.append(take(True))
    finally:
        push.close(0)
        pull.close(0)
        door.stop()
        ctx.term()
    plain_us, keyed_us = statistics.median(plain), statistics.median(keyed)
    return {"messages": messages, "rounds": rounds, "plain_us": round(plain_us, 3), "with_sender_us": round(keyed_us, 3),
            "identity_us": round(keyed_us - plain_us, 3)}


def batch_check_cost(turns: int = 20_000, rounds: int = 5) -> dict[str, Any]:
    """What asking each receiver how it takes its messages costs Comm (issue 26: batches only
    for who asks). One turn of ChatEvents, 16 messages to 4 destinations, is cut into what
    leaves (Sender.batches) three ways, alternating, medians of `rounds`: as before the
    check (every receiver batched, no question asked), with the check and receivers that
    asked for batches (the same output: the difference is the check), and with the check
    and plain receivers (one ZeroMQ message each). Nanoseconds per message."""
    import zmq

    from actors.comm.subscribers import Subscribers
    from actors.lograte import LogBudget
    from actors.outflow import Outflow
    from actors.sending import Sender
    from wire import codec
    from wire.kernel.loop import Loop
    ctx = zmq.Context()
    xpub = ctx.socket(zmq.XPUB)
    destinations = ["chat.1", "chat.1.desk", "chat.2", "chat.2.desk"]
    body = orjson.dumps({"TaskId": "mroute-1a2b3c-000123-4f5e6d7c", "State": "CLOSED", "Code": "DONE",
                         "Seq": 1234, "Stream": "8c1d5e2f", "MsgId": "chat.1-000042"})
    outbox = [(xpub, [codec.topic(d), b"TaskState", body]) for _ in range(4) for d in destinations]

    def sender(topics: list[bytes] | None) -> Sender:
        made = Sender("bench", Loop(), {"sent": 0})
        made.batching[xpub] = True
        if topics is not None:
            outflow = Outflow(xpub, hwm=1000, per_receiver=1 << 20, total=1 << 24, dropped=lambda f, c: None)
            for topic in topics:
                outflow.subscribed(topic)
            made.batch_forms[xpub] = Subscribers("bench", xpub, outflow, {}, LogBudget()).forms
        return made

    ways = {"unchecked": sender(None),
            "checked_batches": sender([codec.batch_topic(d) for d in destinations]),
            "checked_plain": sender([codec.topic(d) for d in destinations])}
    if len(ways["checked_batches"].batches(outbox)) != len(destinations):
        raise RuntimeError("receivers that asked for batches were not sent one batch each")
    if len(ways["checked_plain"].batches(outbox)) != len(outbox):
        raise RuntimeError("plain receivers were not sent one message per ZeroMQ message")

    def take(way: Sender) -> float:
        started = time.perf_counter()
        for _ in range(turns):
            way.batches(outbox)
        return (time.perf_counter() - started) / (turns * len(outbox)) * 1e9

    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for _ in range(rounds):
            for name, way in ways.items():
                times[name].append(take(way))
    finally:
        xpub.close(0)
        ctx.term()
    ns = {name: statistics.median(t) for name, t in times.items()}
    return {"batch_messages_per_turn": len(outbox), "batch_destinations": len(destinations),
            **{f"batch_{name}_ns": round(value, 1) for name, value in ns.items()},
            "batch_check_ns": round(ns["checked_batches"] - ns["unchecked"], 1)}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "routing":
        figures = routing_cost(int(argv[1]), int(argv[2]))
    elif len(argv) == 2 and argv[0] == "comm-memory":
        figures = {"comm_bytes_per_agent": comm_bytes_per_agent(int(argv[1]))}
    elif len(argv) == 2 and argv[0] == "task-memory":
        figures = bytes_per_live_task(int(argv[1]))
    elif len(argv) == 2 and argv[0] == "identity":
        figures = identity_cost(int(argv[1]))
    elif len(argv) == 2 and argv[0] == "batch-check":
        figures = batch_check_cost(int(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(orjson.dumps(figures).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
