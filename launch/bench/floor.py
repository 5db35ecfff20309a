"""The floor under a lifecycle (issue 28): the messages of one task's life moved through the
same three kinds of process over the same queues with the same codec, and nothing else: no
state, no journal, no routing, no timers. What it costs is what no change to our handling
can take away; what the system costs above it is ours to cut.

A lifecycle here is 16 messages, as the system's 15.5: a Chat Server sends Task, TaskState
ACTIVE and TaskState CLOSED (3); Comm answers and tells (9: the Task's QUEUED, the offer to
desk and creator and the desk's AgentState, the ACTIVE to both, the CLOSED to both and the
desk's AgentState) and tells the MRE (3: NewTask and both TaskStates); the MRE decides once
(1). Every message is decoded and validated as its receiver does (codec.decode against the
catalogue; a Chat Server takes what is published with decode_stream) and encoded with
orjson. The Chat Server keeps `window` lifecycles going: each ends as the next begins.

The floor under a route (`route_floor`): the same relay with customers paced at a rate, as
`mroute bench` measures routing latency (Task sent -> TaskAgentSelected heard by its
creator): four hops and three processes' decoding and encoding, and nothing of ours between.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import queue
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import zmq

from wire import codec
from wire.catalogue import COMMUNICATION_SERVER, GENERAL, ROUTING_ENGINE

ORIGIN, DESK = "chat.1", "chat.1.desk"


def _sockets(ctx: zmq.Context, kind: int, endpoints: list[str], bind: bool) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.sndhwm = sock.rcvhwm = 100_000
    sock.linger = 0
    for endpoint in endpoints:
        (sock.bind if bind else sock.connect)(endpoint)
    return sock


def _comm(general: str, reports: str, events: str, routing: str, parent: int) -> None:
    from wire.kernel.loop import die_with_parent
    die_with_parent(parent)
    ctx = zmq.Context()
    pull, back = _sockets(ctx, zmq.PULL, [general], True), _sockets(ctx, zmq.PULL, [reports], True)
    pub, mre = _sockets(ctx, zmq.XPUB, [events], True), _sockets(ctx, zmq.PUSH, [routing], False)
    seqs = {ORIGIN: 0, DESK: 0}
    number = 0

    def publish(destination: str, type: str, body: dict[str, Any]) -> None:
        seqs[destination] += 1
        pub.send_multipart(codec.encode_pub(destination, type, {**body, "Seq": seqs[destination], "Stream": "floor"}))

    poller = zmq.Poller()
    for sock in (pull, back, pub):
        poller.register(sock, zmq.POLLIN)
    waiting_for = {codec.topic(ORIGIN), codec.topic(DESK)}
    while True:
        for sock, _ in poller.poll():
            if sock is pub:   # a subscription: once both of the Chat Server's are in, it may begin
                subscription = pub.recv()
                waiting_for.discard(subscription[1:])
                if subscription[:1] == b"\x01" and not waiting_for:
                    publish(ORIGIN, "Heartbeat", {})
                continue
            if sock is back:
                _, body = codec.decode(back.recv_multipart(), COMMUNICATION_SERVER)
                task, agent = body["TaskId"], body["AgentId"]
                selected = {"TaskId": task, "AgentId": agent, "Status": "RESERVED", "MRD": "chat"}
                publish(DESK, "TaskAgentSelected", selected)
                publish(ORIGIN, "TaskAgentSelected", selected)
                publish(DESK, "AgentState", {"AgentId": agent, "State": "RESERVED", "MRD": "chat"})
                continue
            type, body = codec.decode(pull.recv_multipart(), GENERAL)
            if type == "Task":
                number += 1
                task = f"floor-{number}"
                publish(ORIGIN, "TaskState", {"TaskId": task, "State": "QUEUED", "MRD": "chat", "MsgId": body["MsgId"]})
                mre.send_multipart(codec.encode("NewTask", {"MRD": "chat", "TaskId": task, "params": {"queue": "q"},
                                                            "ClientUniqueId": body["ClientUniqueId"]}))
                continue
            state = {"TaskId": body["TaskId"], "AgentId": body["AgentId"], "State": body["State"], "MRD": "chat"}
            publish(DESK, "TaskState", {**state, "MsgId": body["MsgId"]})
            publish(ORIGIN, "TaskState", state)
            if body["State"] == "CLOSED":
                publish(DESK, "AgentState", {"AgentId": body["AgentId"], "State": "READY", "MRD": "chat"})
            mre.send_multipart(codec.encode("TaskState", state))


def _mre(routing: str, reports: str, parent: int) -> None:
    from wire.kernel.loop import die_with_parent
    die_with_parent(parent)
    ctx = zmq.Context()
    pull, push = _sockets(ctx, zmq.PULL, [routing], True), _sockets(ctx, zmq.PUSH, [reports], False)
    agents = 0
    while True:
        type, body = codec.decode(pull.recv_multipart(), ROUTING_ENGINE)
        if type == "NewTask":
            agents += 1
            push.send_multipart(codec.encode("TaskAgentSelected", {
                "TaskId": body["TaskId"], "AgentId": f"a{agents % 500}", "Status": "RESERVED", "MRD": "chat"}))


class _ChatServer:
    """The floor's Chat Server: sends Tasks, and plays the desk (accept at once, close at once)."""

    def __init__(self, general: str, events: str):
        self.ctx = zmq.Context()
        self.push, self.sub = _sockets(self.ctx, zmq.PUSH, [general], False), _sockets(self.ctx, zmq.SUB, [events], False)
        for destination in (ORIGIN, DESK):
            self.sub.setsockopt(zmq.SUBSCRIBE, codec.topic(destination))
        self.sent = 0
        self.sub.recv_multipart()   # Comm has both our subscriptions (it says so): no answer of its is lost

    def send(self, type: str, body: dict[str, Any]) -> str:
        self.sent += 1
        msg_id = f"m{self.sent}"
        self.push.send_multipart(codec.encode(type, {**body, "MsgId": msg_id}))
        return msg_id

    def new_task(self) -> str:
        return self.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{self.sent}", "ReplyTo": ORIGIN})

    def take(self) -> tuple[bytes, bytes, dict[str, Any], bool]:
        """The next message published to us; whether it closed a lifecycle (the desk's
        answers are sent on the way)."""
        topic, type, raw = frames = self.sub.recv_multipart()
        _, body = codec.decode_stream(frames)
        closed = False
        if topic == codec.topic(DESK):
            if type == b"TaskAgentSelected":
                self.send("TaskState", {"TaskId": body["TaskId"], "State": "ACTIVE", "AgentId": body["AgentId"],
                                        "ReplyTo": DESK})
            elif type == b"TaskState" and body["State"] == "ACTIVE":
                self.send("TaskState", {"TaskId": body["TaskId"], "State": "CLOSED", "Code": "DONE",
                                        "AgentId": body["AgentId"], "ReplyTo": DESK})
            elif type == b"TaskState" and body["State"] == "CLOSED":
                closed = True
        return topic, type, body, closed


def _chat(general: str, events: str, window: int, warmup: float, seconds: float, report: Any, parent: int) -> None:
    from wire.kernel.loop import die_with_parent
    die_with_parent(parent)
    chat = _ChatServer(general, events)
    for _ in range(window):
        chat.new_task()
    done, start, started, end = 0, time.monotonic() + warmup, None, None
    while end is None:
        *_, closed = chat.take()
        if not closed:
            continue
        done += 1
        now = time.monotonic()
        if started is None and now >= start:
            started = (now, done)
            report.put(("measuring", None))
        elif started is not None and now >= started[0] + seconds:
            end = (now, done)
        chat.new_task()
    report.put(("done", (end[1] - started[1]) / (end[0] - started[0])))  # type: ignore[index]


def _paced_chat(general: str, events: str, rate: float, warmup: float, seconds: float, report: Any,
                parent: int) -> None:
    """Customers at `rate` a second; each route timed from its Task's sending to its
    creator hearing TaskAgentSelected (the QUEUED answer names the TaskId of our MsgId)."""
    from wire.kernel.loop import die_with_parent
    die_with_parent(parent)
    chat = _ChatServer(general, events)
    sent_at: dict[str, float] = {}     # MsgId -> when
    task_sent_at: dict[str, float] = {}
    routes: list[float] = []
    begin = time.monotonic()
    measure_from, end = begin + warmup, begin + warmup + seconds
    next_at = begin
    while (now := time.monotonic()) < end:
        if now >= next_at:
            sent_at[chat.new_task()] = time.monotonic()
            next_at += 1 / rate
            continue
        if not chat.sub.poll(math.ceil((next_at - now) * 1000)):
            continue
        topic, type, body, _ = chat.take()
        if topic != codec.topic(ORIGIN):
            continue
        if type == b"TaskState" and body["State"] == "QUEUED":
            task_sent_at[body["TaskId"]] = sent_at.pop(body["MsgId"])
        elif type == b"TaskAgentSelected":
            at = task_sent_at.pop(body["TaskId"])
            if at >= measure_from:
                routes.append(time.monotonic() - at)
    report.put(("done", sorted(routes)))


def lifecycle_floor(seconds: float = 3.0, window: int = 200, warmup: float = 1.0) -> dict[str, Any]:
    """Lifecycles/s through the floor, and each process's CPU microseconds per lifecycle."""
    from ..procstat import cpu_seconds
    from .run import cpu_per_lifecycle
    with _relay(_chat, (window, warmup, seconds)) as (procs, report):
        _heard(report, procs, 60)
        cpu_before = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
        started = time.monotonic()
        _, rate = _heard(report, procs, 60 + seconds)
        elapsed = time.monotonic() - started
        cpu_after = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
    cpu = {name: round(100 * (cpu_after[name] - cpu_before[name]) / elapsed, 1)  # type: ignore[operator]
           for name in procs}
    return {"floor_lifecycles_per_s": round(rate), "floor_messages_per_lifecycle": 16,
            "floor_cpu_percent": cpu, "floor_cpu_us_per_lifecycle": cpu_per_lifecycle(cpu, rate)}


def route_floor(rate: float = 1000.0, seconds: float = 3.0, warmup: float = 0.5) -> dict[str, Any]:
    """Routing latency through the floor at `rate` customers a second, in microseconds:
    what `mroute bench`'s route_p50_us would be if Comm and the MRE did nothing."""
    with _relay(_paced_chat, (rate, warmup, seconds)) as (procs, report):
        _, routes = _heard(report, procs, 60 + warmup + seconds)
    if not routes:
        raise RuntimeError("the floor routed nothing")
    return {"floor_route_p50_us": round(routes[len(routes) // 2] * 1e6, 1),
            "floor_route_p99_us": round(routes[min(len(routes) - 1, int(len(routes) * 0.99))] * 1e6, 1)}


def _heard(report: Any, procs: dict[str, Any], timeout: float) -> tuple[str, Any]:
    """The Chat Server's next report; RuntimeError at once if one of the three died (its
    traceback is on stderr), or after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return report.get(timeout=0.2)
        except queue.Empty:
            dead = {name: proc.exitcode for name, proc in procs.items() if not proc.is_alive()}
            if dead:
                raise RuntimeError(f"the floor's processes died: {dead}") from None
    raise RuntimeError(f"the floor's Chat Server said nothing in {timeout:g} s")


@contextlib.contextmanager
def _relay(chat: Callable[..., None], chat_args: tuple) -> Iterator[tuple[dict[str, Any], Any]]:
    """The floor's three processes, the Chat Server `chat(general, events, *chat_args,
    report, parent)`; none outlives the block, and neither do their sockets' files."""
    spawn = multiprocessing.get_context("spawn")
    directory = tempfile.mkdtemp(prefix="mroute-floor-", dir="/tmp")  # ipc paths must stay short
    general, reports, events, routing = (f"ipc://{directory}/{name}.ipc" for name in ("g", "c", "e", "r"))
    report = spawn.Queue()
    parent = os.getpid()
    procs = {"comm": spawn.Process(target=_comm, args=(general, reports, events, routing, parent), daemon=True),
             "mre": spawn.Process(target=_mre, args=(routing, reports, parent), daemon=True),
             "chat": spawn.Process(target=chat, args=(general, events, *chat_args, report, parent), daemon=True)}
    try:
        for proc in procs.values():
            proc.start()
        yield procs, report
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)
