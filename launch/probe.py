"""A developer's probes into a running topology: the lifecycle event stream, and one
message put on its documented queue with what comes back to the sender."""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

import click
import orjson
import zmq

from wire import catalogue, codec

from .topology import Topology


def stream_events(topology: Topology, count: int | None, as_json: bool, timeout: float | None) -> None:
    """Print lifecycle events; raise NotRunning once the supervisor is gone (its lock free)
    and every event it published before has been printed."""
    from .client import NotRunning
    from .supervisor import is_locked
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.connect(topology.control_endpoint("events"))
    sub.setsockopt(zmq.SUBSCRIBE, b"lifecycle")
    seen = 0
    deadline = time.monotonic() + timeout if timeout is not None else None
    try:
        confirm_events_subscription(topology, sub)
        click.echo("# listening", err=True)
        while count is None or seen < count:
            wait_ms = 250 if deadline is None else min(250, max(0, (deadline - time.monotonic()) * 1000))
            if deadline is not None and wait_ms == 0:
                return
            if not sub.poll(wait_ms):
                if not is_locked(topology.run_dir):
                    raise NotRunning(f"topology {topology.name!r} is not running any more (its supervisor ended)")
                continue
            _topic, raw = sub.recv_multipart()
            event = orjson.loads(raw)
            seen += 1
            if as_json:
                click.echo(raw.decode())
            else:
                stamp = datetime.fromtimestamp(event["time"]).strftime("%H:%M:%S.%f")[:-3]
                extra = f" exit {event['exit_status']}" if event.get("exit_status") is not None else ""
                extra += f" ({event['failure']})" if event.get("failure") else ""
                click.echo(f"{stamp} {event['name']:<10} {event['state']:<9} pid {event['pid'] or '-'} "
                           f"restarts {event['restarts']}{extra}")
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
        ctx.term()


def confirm_events_subscription(topology: Topology, sub: zmq.Socket, timeout: float = 5.0) -> None:
    """A fresh SUB misses what is published before its subscription arrives: ask the
    supervisor to publish a token until it comes back, then nothing later is missed."""
    from .client import ask
    token = os.urandom(6).hex()
    sub.setsockopt(zmq.SUBSCRIBE, b"probe")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ask(topology, "probe", {"token": token}, timeout=2)
            while sub.poll(50):
                topic, raw = sub.recv_multipart()
                if topic == b"probe" and orjson.loads(raw).get("token") == token:
                    return
        raise click.ClickException("the supervisor's event stream did not reach us")
    finally:
        sub.setsockopt(zmq.UNSUBSCRIBE, b"probe")


def queue_of(type: str, queue: str | None) -> str:
    if queue is not None:
        if type not in catalogue.BY_QUEUE.get(queue, {}):
            raise click.BadParameter(f"{type} does not travel on {queue}")
        return queue
    for name in (catalogue.GENERAL, catalogue.ROUTING_ENGINE, catalogue.COMMUNICATION_SERVER):
        if type in catalogue.BY_QUEUE[name]:
            return name
    known = sorted({spec.type for spec in catalogue.SPECS})
    raise click.BadParameter(f"unknown message type {type!r} (known: {', '.join(known)})")


def send_and_listen(topology: Topology, type: str, body: dict[str, Any], queue: str | None, timeout: float,
                    linger: float = 0.0) -> dict[str, Any] | None:
    """Send `[type, body]` once, as it is, to its queue with ReplyTo set to a destination of our
    own, through the one client (wire/client.py: our subscription confirmed first), then print
    what arrives for us and the errors Comm could not address.

    A request on General is answered by exactly one message carrying its MsgId: return that
    answer (`{"type", "body"}`) as soon as it arrives, or after `linger` more seconds of
    printing what else comes back; None if none came within `timeout` seconds. What goes
    to another queue (RoutingEngine, CommunicationServer) is not answered to us: print what
    comes back for `linger` seconds and return None."""
    from wire.client import Client, NoAnswer
    queue = queue_of(type, queue)
    me = f"mroute.send.{os.getpid()}"
    body.setdefault("ReplyTo", me)
    body.setdefault("MsgId", f"{me}.1")
    me, msg_id = body["ReplyTo"], body["MsgId"]
    answered = queue == catalogue.GENERAL
    frames = [type.encode(), orjson.dumps(body)]
    probe = (topology.agents[0]["id"], next(iter(topology.mrds)))
    answer = None
    try:
        client = Client(topology.data_socket, me, probe=probe, also=[codec.UNROUTED_ERRORS]).connect(3.0)
    except NoAnswer:
        raise click.ClickException("Comm did not answer on our topic: is it running?")
    try:
        if answered:
            client.send_raw(*frames)
        else:
            push_once(topology, queue, frames)
        click.echo(f"-> {queue} {type} {orjson.dumps(body).decode()}")
        deadline = time.monotonic() + (timeout if answered else linger)
        while (left := deadline - time.monotonic()) > 0 and (got := client.receive(left)) is not None:
            click.echo(f"<- {me} {got.type} {orjson.dumps(got.body).decode()}")
            if answered and answer is None and got.MsgId == msg_id:
                answer = {"type": got.type, "body": got.body}
                deadline = time.monotonic() + linger
    finally:
        client.close()
    return answer


def push_once(topology: Topology, queue: str, frames: list[bytes]) -> None:
    ctx = zmq.Context()
    try:
        push = topology.data_socket(ctx, zmq.PUSH, queue)
        push.send_multipart(frames)
        push.close()   # (linger: delivered before we go)
    finally:
        ctx.term()
