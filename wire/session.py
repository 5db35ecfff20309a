"""A Chat Server's side of the documented queues, without sockets: what wire/client.py's
clients and the simulated Chat Server (actors/chat/sim.py) do on General and their topic of
ChatEvents, whoever does the reading and writing.

Fed every ZeroMQ message from ChatEvents (`receive`) and the time (`tick`), it puts what
is to be pushed on General in `outgoing`, and hands back each message once, typed
(wire/messages.py), with the request it answers:

- its subscription is confirmed before anything else: a harmless GetAgentState (about an
  agent the caller names) is sent until its answer arrives on our topic (zeromq-rules 7);
- every request carries a MsgId and our ReplyTo, and is sent again with the same MsgId
  until answered (Comm applies it once and answers every copy); its first answer is handed
  back with it, later copies are not; an UNAVAILABLE (Comm could not journal it, nothing
  changed) keeps it unanswered, to be sent again;
- Comm's numbered stream is followed (stream.py): after a gap, or a new Comm process,
  Resync asks what we hold (the tasks `held()` names), one at a time, and its Snapshot
  is handed back;
- the Comm we speak to is told to `on_epoch(old, new)` when first heard (old None) and
  when another one speaks (one without the old one's journal: our agents and tasks are
  gone with it);
- a Heartbeat a second once live, if `beat`;
- batches are asked for if `batches` and taken apart;
- new Tasks are refused here (WireError OVERLOADED, never sent) while Comm refuses them
  OVERLOADED, if a `throttle` (throttle.py) is given.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import codec, states as S
from .catalogue import HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC, PUBLISHED
from .codec import WireError
from .messages import BY_TYPE, Message, Other
from .stream import StreamFollower
from .throttle import Throttle

log = logging.getLogger("mroute.client")

PROBE_EVERY = 0.05     # seconds between two probes of our subscription
RESEND_AFTER = 1.0     # seconds without an answer before a request is sent again
GIVE_UP_AFTER = 60.0   # seconds after which an unanswered request is given up (and counted)
BEAT_TOPIC = codec.topic(HEARTBEAT_TOPIC)
CONSUMED = "-"         # `decode`'s type for a message the session took for itself (nothing to hand on)


@dataclass(slots=True, eq=False)
class Request:
    """A request sent and not yet answered; `context` is the caller's, handed back with it."""
    type: str
    body: dict[str, Any]
    msg_id: str
    first: float
    last: float
    context: Any = None


@dataclass(slots=True)
class Incoming:
    """A message for the caller, and the request it answers (None: news)."""
    message: Message
    answers: Request | None = None

    @property
    def body(self) -> dict[str, Any]:
        return self.message.body


COUNTS = ("probes", "resent", "gave_up", "stale_answers", "unavailable", "resyncs", "bad_messages", "comm_restarts",
          "throttled")


class Session:
    def __init__(self, destination: str, probe: tuple[str, str], *, batches: bool = False, beat: bool = True,
                 held: Callable[[], Iterable[str]] = tuple, ids: str | None = None,
                 sink: Callable[[list[bytes]], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 resend_after: float = RESEND_AFTER, give_up_after: float = GIVE_UP_AFTER,
                 throttle: Throttle | None = None):
        """`probe`: (agent, MRD) the subscription probe asks about (one of ours: Comm answers
        it on our topic either way); `ids`: what our MsgIds start with, unique to this process
        (default: the destination and the time); `sink(frames)`: where what is to be pushed on
        General goes (default: `outgoing`, for the caller to take)."""
        self.destination = destination
        self.probe_about = {"AgentId": probe[0], "Mrd": probe[1]}
        self.batches = batches
        self.beat = beat
        self.held = held
        self.clock = clock
        self.resend_after = resend_after
        self.give_up_after = give_up_after
        self.throttle = throttle
        self.ids = ids or f"{destination}-{time.time_ns() // 1_000_000:x}-"
        self.numbers = 0
        self.outgoing: list[list[bytes]] = []        # [type, body] frames for General, in order
        self.sink = sink or self.outgoing.append
        self.pending: dict[str, Request] = {}        # MsgId -> a request not answered yet
        self.follower = StreamFollower()
        self.live = False                            # our subscription is confirmed
        self.epoch: str | None = None                # the Comm we speak to (its beat's Epoch)
        self.resync_asked: Request | None = None
        self.resync_again = False
        self.counts = dict.fromkeys(COUNTS, 0)
        self.next_probe = self.next_beat = 0.0
        # told what happened, for those that care (defaults: nothing)
        self.on_live: Callable[[], None] = lambda: None
        self.on_epoch: Callable[[str | None, str], None] = lambda old, new: None
        self.on_give_up: Callable[[Request], None] = lambda request: None

    @property
    def subscriptions(self) -> list[bytes]:
        mine = codec.batch_topic(self.destination) if self.batches else codec.topic(self.destination)
        return [mine, BEAT_TOPIC]

    def probe_again(self) -> None:
        """Confirm our subscription again before going on (say, after Comm was restarted)."""
        self.live = False
        self.next_probe = 0.0

    # sending -----------------------------------------------------------------------------
    def send(self, type: str, body: dict[str, Any]) -> None:
        """Once, as it is (a ReplyTo added if it has none)."""
        body.setdefault("ReplyTo", self.destination)
        self.sink(codec.encode(type, body))

    def request(self, type: str, body: dict[str, Any], context: Any = None) -> Request:
        """Sent until answered (a MsgId of ours added if it has none). A new Task the
        throttle refuses raises WireError OVERLOADED and is not sent."""
        now = self.clock()
        if type == "Task" and self.throttle is not None and not self.throttle.allow(now):
            self.counts["throttled"] += 1
            raise WireError(S.OVERLOADED, "refused by this client: Comm is refusing Tasks OVERLOADED "
                            f"(client-side throttling, k={self.throttle.k:g})", type=type)
        self.numbers += 1
        msg_id = body.setdefault("MsgId", f"{self.ids}{self.numbers}")
        request = self.pending[msg_id] = Request(type, body, msg_id, now, now, context)
        self.send(type, body)
        return request

    def tick(self) -> float:
        """Probe, beat, send again what is unanswered, give up what is too old; returns the
        time (on `clock`) by which to call again."""
        now = self.clock()
        if not self.live:
            if now >= self.next_probe:
                self.counts["probes"] += 1
                self.send("GetAgentState", {**self.probe_about, "MsgId": f"{self.ids}probe{self.counts['probes']}"})
                self.next_probe = now + PROBE_EVERY
            return self.next_probe
        if self.beat and now >= self.next_beat:
            self.send("Heartbeat", {"Destination": self.destination})
            self.next_beat = now + HEARTBEAT_INTERVAL
        due = self.next_beat if self.beat else now + self.resend_after
        for msg_id, request in list(self.pending.items()):
            if now - request.first > self.give_up_after:
                del self.pending[msg_id]
                self.counts["gave_up"] += 1
                log.warning("%s: no answer to %s %s in %.0f s: given up", self.destination, request.type, msg_id,
                            self.give_up_after)
                self.on_give_up(request)
            elif now - request.last >= self.resend_after:
                request.last = now
                self.counts["resent"] += 1
                self.send(request.type, request.body)
            due = min(due, request.last + self.resend_after)
        return due

    # receiving ---------------------------------------------------------------------------
    def receive(self, frames: list[bytes]) -> list[Incoming]:
        """What one ZeroMQ message from ChatEvents holds for the caller (a batch's messages,
        in order); what cannot be read is counted and logged, never raised."""
        taken = []
        for one in codec.unbatch(frames):
            try:
                type, incoming = self.decode(one)
            except WireError as err:
                self.counts["bad_messages"] += 1
                bad = self.counts["bad_messages"]
                if bad <= 10 or bad % 1000 == 0:   # a sender of garbage must not fill the log: all are counted
                    log.warning("%s: a message it cannot read (%d so far): %s", self.destination, bad, err)
                continue
            if incoming is not None:
                taken.append(incoming)
        return taken

    def decode(self, frames: list[bytes]) -> tuple[str, Incoming | None]:
        """One message `[topic, type, body]`: (its type, what the caller is given), or
        (CONSUMED, None) when it was the session's own business; WireError when it does not
        read as the catalogue says."""
        type, body = codec.decode_stream(frames)
        cls = BY_TYPE.get(type)
        if cls is None:
            message: Message = Other(type, body)
        else:
            if not cls.valid(body):         # codec.check says what is wrong, or mends a spelling
                codec.check(PUBLISHED[type], body)
            message = cls(body)
        if frames[0] == BEAT_TOPIC:
            if type == "Heartbeat":
                self.comm_beat(body)
            if self.follower.observe(body, HEARTBEAT_TOPIC).lost_track and self.live:
                self.resync()   # another Comm process, heard at once: what it sent us may be lost
            return CONSUMED, None
        if not self.live:
            self.live = True
            self.next_beat = 0.0
            self.on_live()
        if self.follower.observe(body, self.destination).lost_track:
            self.resync()
        msg_id = body.get("MsgId")
        answers = None
        if msg_id.__class__ is str:
            if type == "Error" and body.get("Code") == S.UNAVAILABLE and msg_id in self.pending:
                self.counts["unavailable"] += 1   # nothing changed: sent again, as if this were lost
                return CONSUMED, None
            answers = self.pending.pop(msg_id, None)
            if answers is not None and answers.type == "Task" and self.throttle is not None:
                self.throttle.answered(self.clock(), type == "Error" and body.get("Code") == S.OVERLOADED)
            if answers is None and msg_id.startswith(self.ids):
                # a probe's answer, or a second answer (our retry crossed the first): the
                # first said all it says, and what changed since came in between
                if not msg_id.startswith(f"{self.ids}probe"):
                    self.counts["stale_answers"] += 1
                return CONSUMED, None
            if answers is not None and answers is self.resync_asked:
                self.resync_asked = None
                if type == "Error":   # refused: asking again would be too
                    self.resync_again = False
                elif self.resync_again:
                    self.resync()
        return type, Incoming(message, answers)

    def comm_beat(self, body: dict[str, Any]) -> None:
        epoch = body["Epoch"]
        if epoch == self.epoch:
            return
        old, self.epoch = self.epoch, epoch
        if old is not None:
            log.warning("%s: Comm restarted without its journal (epoch %s -> %s)", self.destination, old, epoch)
            self.counts["comm_restarts"] += 1
        self.on_epoch(old, epoch)

    # after lost news: Resync -> Snapshot ---------------------------------------------------
    def resync(self, reset: bool = False) -> Request | None:
        """Ask Comm what we should hold: our agents and the tasks `held()` names. One at a
        time: news lost while one is on its way is asked about after its answer. `reset`
        (once, when a Chat Server starts): the tasks we created and do not name are an
        earlier process's, and Comm ends them."""
        if self.resync_asked is not None and self.resync_asked.msg_id in self.pending:
            self.resync_again = True
            return None
        self.resync_again = False
        body: dict[str, Any] = {"Destination": self.destination, "TaskIds": sorted(set(self.held()))}
        if reset:
            body["Reset"] = True
        else:
            self.counts["resyncs"] += 1
            log.info("%s: news from Comm lost: resynchronising %d tasks", self.destination, len(body["TaskIds"]))
        self.resync_asked = self.request("Resync", body)
        return self.resync_asked

    def stats(self) -> dict[str, Any]:
        return {**self.counts, **self.follower.counts(), "unanswered": len(self.pending), "comm_epoch": self.epoch}
