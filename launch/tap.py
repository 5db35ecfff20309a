"""`mroute tap`: the messages crossing the documented queues and topics, decoded, one line
each, like a broker's queue browser, without taking them from their consumers.

A queue (PUSH/PULL) has one consumer: the actor that takes it mirrors what it takes to a
tap socket of its own (XPUB, in the run directory), and only while a tap listens. Comm
mirrors what it publishes on ChatEvents the same way: its ChatEvents socket never drops a
message silently (a full subscriber is counted as a drop), so a slow tap subscribed there
would make Comm drop what its desks should get. GCEvents is subscribed to."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

import orjson
import zmq

from wire.catalogue import CHAT_EVENTS, COMMUNICATION_SERVER, GC, GC_EVENTS, GENERAL, ROUTING_ENGINE

from wire.client import published

from . import client
from .topology import Topology

# what an actor mirrors to its tap: what it takes from a queue, or (ChatEvents) publishes
QUEUE_OWNERS = {GENERAL: "comm", COMMUNICATION_SERVER: "comm", ROUTING_ENGINE: "mre", GC: "gc", CHAT_EVENTS: "comm"}
PUBLISHED = (CHAT_EVENTS, GC_EVENTS)  # frames [topic, type, body]
STREAMS = (GC_EVENTS,)                # subscribed to directly
QUEUES = (GENERAL, ROUTING_ENGINE, COMMUNICATION_SERVER, GC, *PUBLISHED)
AGENT_FIELDS = ("AgentId", "agentId", "OwnerAgentId", "RecipientAgentId", "ParticipantAgentId", "PreviousAgentId")


def decoded(queue: str, frames: list[bytes]) -> list[dict[str, Any]]:
    """What one ZeroMQ message carries, a line each: ChatEvents read as the one client reads
    it (wire/client.py: a batch is its messages), the rest by queue."""
    if queue == CHAT_EVENTS:
        try:
            return [message_line(queue, to, message.type, message.body) for to, message in published(frames)]
        except ValueError:  # (not JSON, not three frames): shown raw below
            pass
    return [decode(queue, frames)]


def message_line(queue: str, to: str | None, type: str, body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        if "Password" in body:
            body = {**body, "Password": "(hidden)"}
        agent = next((body[k] for k in AGENT_FIELDS if isinstance(body.get(k), str)), None)
    else:
        agent = None
    return {"queue": queue, "to": to, "type": type, "agent": agent, "body": body}


def decode(queue: str, frames: list[bytes]) -> dict[str, Any]:
    """One message as {queue, to, type, agent, body}; what cannot be decoded is shown raw."""
    to = None
    if queue in PUBLISHED and len(frames) == 3:
        to = frames[0].rstrip(b"\x00").decode(errors="replace")
        frames = frames[1:]
    kind = frames[0].decode(errors="replace") if frames else ""
    raw = frames[1] if len(frames) > 1 else b""
    agent = None
    if queue == GC:  # a command: name#who, comma-separated parameters (passwords among them)
        kind, _, agent = kind.partition("#")
        kind, agent = kind.strip(), agent.strip()
        body: Any = {"params": "(hidden)" if kind.lower() in ("connect", "login", "mobileagentlogin")
                     else raw.decode(errors="replace")}
    else:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:  # not shown: it may hold a password
            body = {"undecodable": f"{len(raw)} bytes"}
        return message_line(queue, to, kind, body)
    return {"queue": queue, "to": to, "type": kind, "agent": agent, "body": body}


def line(message: dict[str, Any]) -> str:
    at = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    to = f" -> {message['to']}" if message["to"] else ""
    return f"{at} {message['queue']:<19} {message['type']}{to} {orjson.dumps(message['body']).decode()}"


def tap(topology: Topology, queues: tuple[str, ...], type_filter: str | None, agent: str | None,
        count: int | None, echo: Callable[[str], None], timeout: float | None = None) -> int:
    """Print what crosses `queues` (all when none) until `count` lines or `timeout` seconds."""
    actors = [a for a in client.ask(topology, "status")["actors"] if a["state"] in ("RUNNING", "DEGRADED")]
    ctx = zmq.Context()
    socks: dict[zmq.Socket, str] = {}   # a socket -> its stream, or "" for an actor's mirrors
    mirrors: dict[str, zmq.Socket] = {}  # actor -> the socket on its tap
    try:
        for queue in queues or QUEUES:
            if queue in STREAMS:
                sock = topology.data_socket(ctx, zmq.SUB, queue)
                sock.setsockopt(zmq.SUBSCRIBE, b"")
                socks[sock] = queue
                continue
            owner = next((a["name"] for a in actors if a["role"] == QUEUE_OWNERS[queue]), None)
            if owner is None:
                continue  # nobody takes that queue in this topology
            if owner not in mirrors:
                mirrors[owner] = ctx.socket(zmq.SUB)
                mirrors[owner].linger = 0
                mirrors[owner].connect(topology.tap_endpoint(owner))
                socks[mirrors[owner]] = ""
            mirrors[owner].setsockopt(zmq.SUBSCRIBE, queue.encode())  # mirrors start with their queue's name
        tapped = set(mirrors)
        wait_until_tapped(topology, tapped)
        echo("# listening")
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        shown = 0
        deadline = time.monotonic() + timeout if timeout is not None else None
        while count is None or shown < count:
            wait = 1000 if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            if deadline is not None and wait == 0:
                break
            for sock, _ in poller.poll(wait):
                frames = sock.recv_multipart()
                queue = socks[sock]
                if not queue:  # a mirror: [queue, ...the frames as taken]
                    queue, frames = frames[0].decode(errors="replace"), frames[1:]
                for message in decoded(queue, frames):
                    if (type_filter and message["type"] != type_filter) or (agent and message["agent"] != agent):
                        continue
                    echo(line(message))
                    shown += 1
                    if count is not None and shown >= count:
                        break
                if count is not None and shown >= count:
                    break
        return shown
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()


def wait_until_tapped(topology: Topology, names: set[str], timeout: float = 5.0) -> None:
    """Each actor tapped says so (its stats) once our subscription reached it: from then on
    nothing it takes is missed (zeromq-rules 7)."""
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        stats = client.ask(topology, "stats")["actors"]
        if all(stats.get(name, {}).get("tapped") for name in names):
            return
        time.sleep(0.05)  # the stats answer is the condition; this paces the asking
    if names:
        raise client.NoAnswer(f"{', '.join(sorted(names))} did not confirm the tap within {timeout:.0f} s")
