"""The one client of the documented queues: a Chat Server's link to Comm (its agents'
desks and its customers alike), for plain blocking code (`Client`) and for asyncio
(`AsyncClient`). Both are the sans-I/O session (session.py) with sockets around it: the
subscription confirmed before the first request, every request sent until answered and
its answer handed back once, Comm's numbered stream followed (Resync after lost news),
a Heartbeat a second, batches asked for and taken apart, every message typed from the
catalogue (messages.py). The simulated Chat Server drives the same session from its
actor loop.

Every message Comm sends to the destination comes out of the client, in order, answers
included (`receive`, `expect`; `on_message` for AsyncClient); `request` also returns its
answer, or raises Refused with the Error's Code and Reason.

A desk in twenty lines (see the README):

    from wire.client import Client, connector
    with Client(connector(endpoints), "my-desk", probe=("agent1", "chat")) as desk:
        desk.request("Connect", {"AgentId": "agent1", "Password": pw, "Destination": "my-desk"})
        desk.request("Login", {"AgentId": "agent1", "Password": pw, "Mrd": "chat"})
        ...
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Callable, Iterable, Mapping

import zmq
import zmq.asyncio

from . import codec
from .catalogue import CHAT_EVENTS, GENERAL
from .messages import Message, typed
from .session import CONSUMED, COUNTS, Incoming, Request, Session
from .throttle import Throttle

__all__ = ["AsyncClient", "Client", "CONSUMED", "COUNTS", "Incoming", "NoAnswer", "Refused", "Request", "Session",
           "connector", "published"]

log = logging.getLogger("mroute.client")

Connect = Callable[[Any, int, str], zmq.Socket]   # (context, socket kind, queue) -> a connected socket
INBOX = 100_000   # messages kept for a reader that has not read them; older ones are dropped and counted
SEND_WITHIN = 5.0  # seconds a blocking client waits for room to push a message, before dropping it (counted)


class Refused(Exception):
    """Comm refused a request (its Error), or could not be asked: `code`, `reason` and the
    `field` at fault, if named."""

    def __init__(self, code: str, reason: str, field: str | None = None):
        super().__init__(f"{code}: {reason}" + (f" (field {field})" if field else ""))
        self.code, self.reason, self.field = code, reason, field


class NoAnswer(Refused):
    def __init__(self, reason: str):
        super().__init__("NO_ANSWER", reason)


def connector(endpoints: Mapping[str, str], curve: tuple[bytes, bytes, bytes] | None = None) -> Connect:
    """Sockets to the topology's endpoints (`topology.endpoints`); `curve`: (Comm's public
    key, our public key, our secret key) for a topology under CURVE. A topology's own
    `data_socket` is one too."""
    def connect(ctx: Any, kind: int, queue: str) -> zmq.Socket:
        sock = ctx.socket(kind)
        sock.linger = 500
        if curve is not None:
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = curve
        sock.connect(endpoints[queue])
        return sock
    return connect


def published(frames: list[bytes]) -> list[tuple[str, Message]]:
    """What one ZeroMQ message published on ChatEvents carries, as (destination, message):
    itself, or a batch's messages (for a reader of everything, as `mroute tap`)."""
    found = []
    for one in codec.unbatch(frames):
        destination, type, body = codec.decode_event(one)
        found.append((destination.rstrip("\x01"), typed(type, body)))
    return found


def refusal(message: Message) -> Refused:
    return Refused(str(message.get("Code")), str(message.get("Reason")), message.get("Field"))


class _Sockets:
    """PUSH to General and SUB to our topics. Blocking code waits (at most SEND_WITHIN) while
    Comm has not taken what was pushed before: its sender slows to Comm's pace. Asyncio code
    never waits: what cannot go now is dropped and counted (a request is sent again anyway)."""

    def __init__(self, connect: Connect, session: Session, ctx: Any, immediate: bool, block: bool = False):
        self.session = session
        self.own_ctx = zmq.Context()
        self.push = connect(self.own_ctx, zmq.PUSH, GENERAL)
        if immediate:   # refuse rather than queue while no connection to Comm is up
            self.push.setsockopt(zmq.IMMEDIATE, 1)
        self.flags = 0 if block else zmq.NOBLOCK
        self.push.sndtimeo = int(SEND_WITHIN * 1000)
        self.sub = connect(ctx or self.own_ctx, zmq.SUB, CHAT_EVENTS)
        for topic in session.subscriptions:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.unsent = 0

    def flush(self) -> bool:
        """Push what the session has to send; False when some could not go now (dropped)."""
        outgoing = self.session.outgoing[:]
        self.session.outgoing.clear()   # (the list itself stays: it is the session's sink)
        sent_all = True
        for frames in outgoing:
            try:
                self.push.send_multipart(frames, self.flags)
            except zmq.Again:
                self.unsent += 1
                sent_all = False
        return sent_all

    def send_raw(self, frames: list[bytes]) -> None:
        self.push.send_multipart(frames)

    def close(self) -> None:
        self.push.close(linger=500)
        self.sub.close(linger=0)
        self.own_ctx.term()


class Client:
    """For plain blocking code: nothing happens between calls (no thread), so a desk that
    beats (`beat=True`) calls `receive` at least once a second."""

    def __init__(self, connect: Connect, destination: str, *, probe: tuple[str, str], batches: bool = False,
                 beat: bool = False, held: Callable[[], Iterable[str]] = tuple, ids: str | None = None,
                 also: Iterable[str] = (), throttle: Throttle | None = None):
        """`also`: other destinations to hear (`mroute.errors`: errors whose sender Comm could
        not tell), their messages given as ours but not numbered; `throttle`: new Tasks
        refused here while Comm refuses them OVERLOADED (wire/throttle.py)."""
        self.destination = destination
        self.session = Session(destination, probe, batches=batches, beat=beat, held=held, ids=ids, throttle=throttle)
        self.sockets = _Sockets(connect, self.session, None, immediate=False, block=True)
        for other in also:
            self.sockets.sub.setsockopt(zmq.SUBSCRIBE, codec.topic(other))
        self.inbox: collections.deque[Incoming] = collections.deque()
        self.dropped = 0

    def __enter__(self) -> Client:
        return self.connect()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.sockets.close()

    def connect(self, timeout: float = 10.0) -> Client:
        """Returns once our subscription is confirmed: nothing published to us is missed."""
        self._pump_until(lambda: self.session.live, timeout, "Comm to answer on our topic (is it running?)")
        return self

    # sending ---------------------------------------------------------------------------
    def request(self, type: str, body: dict[str, Any], timeout: float = 5.0) -> Message:
        """Send `type` until answered; its answer (Refused for an Error)."""
        request = self.send(type, body)
        found = self._pump_until(lambda: self._answer_to(request), timeout, f"the answer to {type} {request.msg_id}")
        if found.type == "Error":
            raise refusal(found)
        return found

    def send(self, type: str, body: dict[str, Any]) -> Request:
        """Send `type` until answered, without waiting: its answer comes out of `receive`."""
        request = self.session.request(type, body)
        self.sockets.flush()
        return request

    def send_once(self, type: str, body: dict[str, Any]) -> None:
        """Once, as it is: no MsgId added, never sent again."""
        self.session.send(type, body)
        self.sockets.flush()

    def send_raw(self, *frames: bytes) -> None:
        """Frames as they are (a test of what Comm does with them)."""
        self.sockets.send_raw(list(frames))

    # receiving -------------------------------------------------------------------------
    def receive(self, timeout: float | None = None) -> Message | None:
        """The next message to us (None if none came within `timeout` seconds)."""
        if not self.inbox:
            self._pump_until(lambda: bool(self.inbox), timeout, "", quiet=True)
        return self.inbox.popleft().message if self.inbox else None

    def expect(self, type: str | None, timeout: float = 5.0, **fields: Any) -> Message:
        """The first message of `type` (any, if None) with `fields`, from what came or comes;
        the others stay to be received."""
        def found() -> Message | None:
            for i, incoming in enumerate(self.inbox):
                message = incoming.message
                if type in (None, message.type) and all(message.body.get(k) == v for k, v in fields.items()):
                    del self.inbox[i]
                    return message
            return None
        return self._pump_until(found, timeout, f"{type} with {fields}")

    def _answer_to(self, request: Request) -> Message | None:
        for incoming in self.inbox:
            if incoming.answers is request:
                return incoming.message
        return None

    def arrived(self) -> list[Message]:
        """What has arrived and is not received yet, without waiting or taking it."""
        if self.sockets.sub.poll(0):
            self._take()
        return [incoming.message for incoming in self.inbox]

    def _pump_until(self, condition: Callable[[], Any], timeout: float | None, what: str,
                    quiet: bool = False) -> Any:
        """Tick the session, push what it sends, take what arrives, until `condition()`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            due = self.session.tick()
            self.sockets.flush()
            now = time.monotonic()
            wait = max(0.0, min(due - self.session.clock(), (deadline if deadline is not None else now + 1.0) - now))
            if self.sockets.sub.poll(wait * 1000):
                self._take()
                continue
            if deadline is not None and time.monotonic() >= deadline:
                if quiet:
                    return None
                seen = "\n  ".join(repr(i.message) for i in list(self.inbox)[-10:])
                raise NoAnswer(f"{self.destination}: no {what} within {timeout:g} s" + (f"; got:\n  {seen}"
                                                                                        if seen else ""))

    def _take(self) -> None:
        while True:
            try:
                frames = self.sockets.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            for incoming in self.session.receive(frames):
                if len(self.inbox) >= INBOX:
                    self.inbox.popleft()
                    self.dropped += 1
                self.inbox.append(incoming)


class AsyncClient:
    """For asyncio: `start()` runs the receiving and the ticking as tasks; every message is
    given to `on_message(message, answers)` as it arrives (answers: the Request it answers,
    or None), and `request` awaits its answer. With `immediate`, a request is refused at once
    (UNAVAILABLE) when no connection to Comm is up, rather than queued for a Comm that may
    come back minutes later."""

    def __init__(self, connect: Connect, destination: str, *, probe: tuple[str, str],
                 on_message: Callable[[Message, Request | None], None], ctx: zmq.asyncio.Context,
                 batches: bool = False, beat: bool = True, held: Callable[[], Iterable[str]] = tuple,
                 immediate: bool = True, answer_within: float = 10.0, throttle: Throttle | None = None):
        self.destination = destination
        self.on_message = on_message
        self.answer_within = answer_within
        self.session = Session(destination, probe, batches=batches, beat=beat, held=held, throttle=throttle)
        self.sockets = _Sockets(connect, self.session, ctx, immediate)
        self.live = asyncio.Event()
        self.session.on_live = self.live.set
        self.waiting: dict[str, asyncio.Future[Message]] = {}
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._tick())]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.sockets.close()

    def send(self, type: str, body: dict[str, Any]) -> Request:
        """Send until answered, without waiting: the answer goes to `on_message`."""
        request = self.session.request(type, body)
        self.sockets.flush()
        return request

    def resync(self) -> None:
        """Ask Comm what we should hold now: its Snapshot comes to `on_message`."""
        self.session.resync()
        self.sockets.flush()

    async def request(self, type: str, body: dict[str, Any]) -> Message:
        """Comm's answer; Refused for an Error, or when Comm cannot be asked now (UNAVAILABLE)
        or did not answer in time (NoAnswer: it may still act on it)."""
        try:
            await asyncio.wait_for(self.live.wait(), self.answer_within)
        except asyncio.TimeoutError:
            raise Refused("UNAVAILABLE", "Comm has not answered us yet: is it running?") from None
        request = self.session.request(type, body)
        if not self.sockets.flush():
            self.session.pending.pop(request.msg_id, None)
            raise Refused("UNAVAILABLE", "Comm is not reachable now: nothing was sent")
        answer: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.waiting[request.msg_id] = answer
        try:
            found = await asyncio.wait_for(answer, self.answer_within)
        except asyncio.TimeoutError:
            raise NoAnswer(f"Comm did not answer {type} within {self.answer_within:g} s; it may still act on it, "
                           "and what it does will be heard") from None
        finally:
            self.waiting.pop(request.msg_id, None)
        if found.type == "Error":
            raise refusal(found)
        return found

    async def _tick(self) -> None:
        while True:
            due = self.session.tick()
            self.sockets.flush()
            await asyncio.sleep(max(0.005, due - self.session.clock()))

    async def _receive(self) -> None:
        while True:
            frames = await self.sockets.sub.recv_multipart()
            for incoming in self.session.receive(frames):
                answers = incoming.answers
                if answers is not None:
                    waiting = self.waiting.get(answers.msg_id)
                    if waiting is not None and not waiting.done():
                        waiting.set_result(incoming.message)
                try:
                    self.on_message(incoming.message, answers)
                except Exception:   # one message must not end the client
                    log.exception("%s: handling %r", self.destination, incoming.message)
                self.sockets.flush()   # what handling it asked to send
