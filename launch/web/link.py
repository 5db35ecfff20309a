"""The web console's link to Comm, as any Chat Server's: one destination on General and
ChatEvents, the subscription confirmed before the first request (zeromq-rules 7), every
request sent again until answered (the same MsgId: Comm applies it once), a Heartbeat a
second, and Comm's numbered stream followed: a gap or a new Comm process says news may be
lost, and the desk asks for a Snapshot (`lost_track`).

Requests go out at once or not at all (IMMEDIATE, NOBLOCK): with Comm unreachable a page
hears so now, rather than a request queued in a socket being applied minutes later."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Callable

import zmq
import zmq.asyncio

from wire import codec
from wire.catalogue import CHAT_EVENTS, GENERAL, HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC
from wire.stream import StreamFollower

from ..topology import Topology

log = logging.getLogger("mroute.web")

RESEND_AFTER = 1.0     # seconds before a request is sent again
ANSWER_WITHIN = 10.0   # seconds a page waits for Comm's answer


class DeskError(Exception):
    """Comm refused a request (its Error's Code and Reason), or could not be asked."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code, self.reason = code, reason


class Link:
    def __init__(self, topology: Topology, ctx: zmq.asyncio.Context, destination: str,
                 on_message: Callable[[str, dict[str, Any]], None], lost_track: Callable[[], None]):
        self.topology = topology
        self.destination = destination
        self.on_message = on_message
        self.lost_track = lost_track
        self.numbers = itertools.count(1)
        self.waiting: dict[str, tuple[str, dict[str, Any], asyncio.Future[dict[str, Any]], float]] = {}
        self.follower = StreamFollower()
        self.live = asyncio.Event()   # our subscription is confirmed: nothing published to us is missed
        self.sync_ctx = zmq.Context()
        self.general = topology.data_socket(self.sync_ctx, zmq.PUSH, GENERAL)
        self.general.setsockopt(zmq.IMMEDIATE, 1)
        self.events = topology.data_socket(ctx, zmq.SUB, CHAT_EVENTS)
        for topic in (destination, HEARTBEAT_TOPIC):   # Comm's beat: a new Comm process is heard at once
            self.events.setsockopt(zmq.SUBSCRIBE, codec.topic(topic))
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(coroutine) for coroutine in (self.receive(), self.beat(), self.resend(),
                                                                       self.handshake())]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.general.close(linger=500)
        self.events.close(linger=0)
        self.sync_ctx.term()

    def send(self, type: str, body: dict[str, Any]) -> bool:
        body.setdefault("ReplyTo", self.destination)
        try:
            self.general.send_multipart(codec.encode(type, body), zmq.NOBLOCK)
            return True
        except zmq.Again:   # no connection to Comm now: nothing queued
            return False

    async def request(self, type: str, body: dict[str, Any]) -> dict[str, Any]:
        """Comm's answer (it carries our MsgId); DeskError for an Error, or when Comm cannot
        be asked now or did not answer in time."""
        try:
            await asyncio.wait_for(self.live.wait(), ANSWER_WITHIN)
        except asyncio.TimeoutError:
            raise DeskError("UNAVAILABLE", "Comm has not answered the console yet: is it running?")
        msg_id = f"{self.destination}-{next(self.numbers)}"
        body["MsgId"] = msg_id
        if not self.send(type, body):
            raise DeskError("UNAVAILABLE", "Comm is not reachable now: nothing was sent")
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[msg_id] = (type, body, answer, time.monotonic())
        try:
            return await asyncio.wait_for(answer, ANSWER_WITHIN)
        except asyncio.TimeoutError:
            raise DeskError("NO_ANSWER", f"Comm did not answer {type} within {ANSWER_WITHIN:g} s; it may still "
                                         "act on it, and the page will show what it does")
        finally:
            self.waiting.pop(msg_id, None)

    async def handshake(self) -> None:
        """Ask until the answer comes on our topic (an Error for an agent nobody has is one)."""
        while not self.live.is_set():
            self.send("GetAgentState", {"AgentId": "mroute-web-probe", "Mrd": next(iter(self.topology.mrds)),
                                        "MsgId": f"{self.destination}-probe"})
            try:
                await asyncio.wait_for(self.live.wait(), 0.2)
            except asyncio.TimeoutError:
                pass

    async def resend(self) -> None:
        while True:
            await asyncio.sleep(RESEND_AFTER / 2)
            now = time.monotonic()
            for msg_id, (type, body, answer, sent) in list(self.waiting.items()):
                if now - sent >= RESEND_AFTER and not answer.done():
                    self.waiting[msg_id] = (type, body, answer, now)
                    self.send(type, body)

    async def beat(self) -> None:
        await self.live.wait()
        while True:
            self.send("Heartbeat", {"Destination": self.destination})
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def receive(self) -> None:
        while True:
            frames = await self.events.recv_multipart()
            for message in codec.unbatch(frames):
                try:
                    type, body = codec.decode_stream(message)
                    line = HEARTBEAT_TOPIC if message[0] == codec.topic(HEARTBEAT_TOPIC) else self.destination
                    self.take(type, body, line)
                except codec.WireError as err:
                    log.warning("web desk: a message it cannot read: %s", err)
                except Exception:   # one message must not end the desk
                    log.exception("web desk: handling a message")

    def take(self, type: str, body: dict[str, Any], line: str) -> None:
        seen = self.follower.observe(body, line)
        if line == HEARTBEAT_TOPIC:
            if seen.lost_track and self.live.is_set():
                self.lost_track()
            return
        self.live.set()
        msg_id = body.get("MsgId")
        pending = self.waiting.get(msg_id) if isinstance(msg_id, str) else None
        if pending is not None and not pending[2].done():
            if type == "Error":
                pending[2].set_exception(DeskError(str(body.get("Code")), str(body.get("Reason"))))
            else:
                pending[2].set_result(body)
        self.on_message(type, body)
        if seen.lost_track:
            self.lost_track()
