"""A simulated Chat Server: customers' chats on one side, agents' desktops on the other.

It speaks only protocol.md: pushes to `General`, listens on its own topic of `ChatEvents`.
Its agents connect, log into the MRD and go READY; customers arrive at `rate` per second
(Poisson) and give up (cancel) when no agent was chosen within their patience; its agents
accept offers after a think time and close tasks after a handling time. It measures routing
latency (Task sent -> TaskAgentSelected received) and accounts for every task it created.
The customer side is customers.py, the agents' side desk.py; this is the server around them:
its sockets, its requests (sent until answered), and following Comm's numbered stream
(stream.py), asking Comm for a Snapshot of what it should hold whenever news was lost.

Settings (the actor's entry in the topology): `agents` (how many directory agents this
instance desks, taken in directory order by instance number), `rate` (tasks/s), `handle`,
`think` and `patience` (durations, wire/dist.py), `mrd`. The control verb `load` changes
rate and durations while it runs (`mroute load` drives a fleet with it); given a new `run`
number it starts counting afresh, so that a load run on a busy topology counts only the
tasks it created.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq

from actors.lograte import LogBudget
from actors.runtime import Actor, log
from wire import codec, dist, states as S
from wire.codec import WireError
from wire.desking import desk_range
from wire.curve import Curve
from wire.catalogue import CHAT_EVENTS, GENERAL, HEARTBEAT, HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC

from .customers import Customers
from .desk import Desk
from wire.stream import StreamFollower

PROBE_INTERVAL = 0.05
RESEND_AFTER = 1.0     # seconds without an answer before a request is sent again
GIVE_UP_AFTER = 60.0   # seconds after which an unanswered request is abandoned (and counted)
COUNTS = ("created", "queued", "routed", "routed_unmeasured", "abandoned", "closed", "expired", "closed_other",
          "lost", "refused", "resent", "gave_up", "offered", "accepted", "acceptances", "handled", "errors", "resyncs",
          "stale_answers", "unavailable")


def read_credentials() -> dict[str, str]:
    """{agent: password} from stdin, when the supervisor hands them over (else nothing)."""
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    try:
        data = sys.stdin.buffer.read()
    except (OSError, ValueError):
        return {}
    return orjson.loads(data) if data.strip() else {}


def items(body: dict[str, Any], key: str) -> list[Any]:
    """A list in a message (a Snapshot's rows), or none when it is not one."""
    value = body.get(key)
    return value if value.__class__ is list else []


class ChatServer(Actor):
    role = "chat"

    def start(self) -> None:
        settings = self.config.settings
        per_server = int(settings.get("agents", 0))
        directory = self.config.topology["agents"]
        actor = self.name.rpartition(".")[0]
        actors = self.config.topology.get("actors") or {actor: {**settings, "role": "chat"}}
        span = desk_range(actors, actor, self.config.index)
        agents = {a["id"]: a for a in directory[span.start:span.stop]}
        if len(agents) < per_server:
            log.warning("%s wants %d agents but the directory has only %d from #%d", self.name, per_server,
                        len(agents), span.start + 1)
        self.mrd = settings.get("mrd", "chat")
        self.rate = float(settings.get("rate", 0))
        self.handle = dist.parse(settings.get("handle", "uniform:2,6"))
        self.think = dist.parse(settings.get("think", "uniform:0.05,0.3"))
        self.patience = dist.parse_optional(settings.get("patience"))
        self.rng = random.Random(f"{self.name}-{time.time()}")
        self.probe_agent = next(iter(agents), directory[0]["id"] if directory else "")

        self.live = False
        self.arrivals: Any = None
        self.probes = 0
        self.numbers = 0
        self.boot = format(time.time_ns() // 1_000_000, "x")  # MsgIds of a restarted us must not repeat
        self.run: Any = None
        self.unacked: dict[str, list[Any]] = {}   # MsgId -> [type, body, first sent, last sent]
        self.answered: list[Any] | None = None    # the request the message being handled answers
        self.comm_epoch: str | None = None
        self.follower = StreamFollower()
        self.own_ids = f"{self.name}-"  # every MsgId we send starts so
        self.resync_asked: str | None = None      # MsgId of our Resync until Comm answers it
        self.resync_again = False                 # news was lost again while it was on its way
        # The passwords come on our stdin from the supervisor: the directory we read holds hashes.
        self.desk = Desk(self, agents, read_credentials())
        self.customers = Customers(self)
        self.counts: dict[str, int] = {}
        self.error_lines = LogBudget()  # a line per Error, up to a budget: all are counted
        self.counts_afresh()

        self.general = self.socket(zmq.PUSH, connect=self.config.endpoints[GENERAL])
        self.events = self.socket(zmq.SUB, connect=self.config.endpoints[CHAT_EVENTS])
        self.events.setsockopt(zmq.SUBSCRIBE, codec.batch_topic(self.name))   # what a turn has for us, at once
        self.events.setsockopt(zmq.SUBSCRIBE, codec.topic(HEARTBEAT_TOPIC))
        self.serve(CHAT_EVENTS, self.events, self.handlers(), decode=codec.decode_stream)
        self.probe()

    def curve_key(self, curve: Curve) -> Path:
        """Our actor's client key: it lets us use our own destinations only (chat.1 under
        the key `chat`), never our actors' key (wire/curve.py)."""
        return curve.client_key(self.name.rpartition(".")[0])

    @property
    def agents(self) -> dict[str, dict[str, Any]]:
        return self.desk.agents

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        """Every type Comm may publish to us, each behind `received` (the bookkeeping that
        every message gets). Comm's heartbeat is numbered on a line of its own."""
        ignore: Callable[[dict[str, Any]], None] = lambda body: None  # noqa: E731
        table = {"TaskState": self.on_task_state, "TaskAgentSelected": self.on_selected,
                 "AgentState": self.desk.on_agent_state, "Error": self.on_error, "Snapshot": self.on_snapshot,
                 "Ack": ignore, "TaskAgentTransferred": ignore, "TaskConferenced": ignore,
                 HEARTBEAT: self.on_heartbeat}
        return {type: self.received(HEARTBEAT_TOPIC if type == HEARTBEAT else self.name, handler)
                for type, handler in table.items()}

    def counts_afresh(self) -> None:
        """Counts and latency from now on; tasks created before are no longer ours to count."""
        kept = {key: self.counts.get(key, 0) for key in ("agents_ready", "comm_restarts")}
        self.counts = {**dict.fromkeys(COUNTS, 0), **kept}
        self.error_codes: dict[str, int] = {}   # "Type Code" -> Errors received: a load's failures by code
        self.customers.afresh()
        self.follower.count_afresh()

    # the subscription handshake (zeromq-rules 7) --------------------------------------
    def ready(self) -> bool:
        return False  # READY once Comm has answered on our topic

    def probe(self) -> None:
        """Ask Comm for an agent's state until the answer arrives on our topic: then our
        subscription is live and nothing published to us from now on is missed."""
        if self.live:
            return
        self.probes += 1
        self.send("GetAgentState", {"AgentId": self.probe_agent, "Mrd": self.mrd,
                                    "MsgId": f"{self.name}-probe{self.probes}"})
        self.loop.call_later(PROBE_INTERVAL, self.probe)

    def went_live(self) -> None:
        self.live = True
        self.announce_ready()
        self.loop.call_every(HEARTBEAT_INTERVAL, lambda: self.send("Heartbeat", {"Destination": self.name}))
        self.loop.call_every(RESEND_AFTER / 2, self.resend)
        self.desk.log_all_in(reset=True)
        self.resync(reset=True)   # and our earlier process's customers are gone with it
        self.set_rate(self.rate)

    def set_rate(self, rate: float) -> None:
        """Customers arrive at `rate` per second (Poisson); 0 stops them."""
        self.rate = rate
        if self.arrivals is not None:
            self.arrivals.cancel()
            self.arrivals = None
        if rate > 0 and self.live:
            self.arrivals = self.loop.call_later(self.rng.expovariate(rate), self.new_task)
            self.arrivals_due = self.arrivals.when

    def new_task(self) -> None:
        self.numbers += 1
        self.customers.new_task(self.numbers)
        # Each arrival is due a Poisson interval after the one before, not after the moment
        # its timer ran (timers fire up to a millisecond late): the offered rate stays exact.
        self.arrivals_due += self.rng.expovariate(self.rate)
        self.arrivals = self.loop.call_at(self.arrivals_due, self.new_task)

    def control_verbs(self) -> dict[str, Any]:
        return {"load": self.set_load}

    def set_load(self, body: dict[str, Any]) -> dict[str, Any]:
        """Change any of rate, handle, think and patience (an empty body changes nothing);
        answer with all four. A `run` other than the current one starts counting afresh."""
        try:
            handle = dist.parse(body.get("handle", self.handle))
            think = dist.parse(body.get("think", self.think))
            patience = dist.parse_optional(body["patience"]) if "patience" in body else self.patience
        except ValueError as exc:
            raise WireError("BAD_FIELD", str(exc)) from None
        rate = body.get("rate", self.rate)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
            raise WireError("BAD_FIELD", f"rate must be a number >= 0, not {rate!r}", field="rate")
        self.handle, self.think, self.patience = handle, think, patience
        if "run" in body and body["run"] != self.run:
            self.run = body["run"]
            self.counts_afresh()
        self.set_rate(float(rate))
        return {"run": self.run, "rate": self.rate, "handle": str(self.handle), "think": str(self.think),
                "patience": str(self.patience) if self.patience else None}

    # sending ---------------------------------------------------------------------------
    def send(self, type: str, body: dict[str, Any]) -> None:  # type: ignore[override]
        body.setdefault("ReplyTo", self.name)
        super().send(self.general, codec.encode(type, body))

    def request(self, type: str, body: dict[str, Any]) -> str:
        """Send until answered (at least once): Comm answers every request carrying a MsgId
        with one message carrying it back, and applies a repeated MsgId only once."""
        self.numbers += 1
        msg_id = body.setdefault("MsgId", f"{self.name}-{self.boot}-m{self.numbers}")
        now = time.monotonic()
        self.unacked[msg_id] = [type, body, now, now]
        self.send(type, body)
        return msg_id

    def resend(self) -> None:
        now = time.monotonic()
        for msg_id, entry in list(self.unacked.items()):
            type, body, first, last = entry
            if now - first > GIVE_UP_AFTER:
                del self.unacked[msg_id]
                self.counts["gave_up"] += 1
                log.warning("%s: no answer to %s %s in %.0f s: given up", self.name, type, msg_id, GIVE_UP_AFTER)
            elif now - last >= RESEND_AFTER:
                entry[3] = now
                self.counts["resent"] += 1
                self.send(type, body)
        self.customers.prune()

    # receiving -------------------------------------------------------------------------
    def received(self, line: str, handler: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """What every message gets before its handler: the first one makes us live; its
        place in Comm's numbered stream is checked (news lost -> Resync); an answer takes its
        request off the list of those to resend, and is handled knowing what it answers."""
        def handle(body: dict[str, Any]) -> None:
            if not self.live:
                self.went_live()
            if self.follower.observe(body, line).lost_track:
                self.resync()
            msg_id = body.get("MsgId")
            if msg_id.__class__ is not str:
                self.answered = None
            elif body.get("Code") == S.UNAVAILABLE and msg_id in self.unacked:
                # Comm could not journal it and changed nothing: the request stays unanswered
                # and is sent again after RESEND_AFTER, as one whose answer was lost
                self.counts["unavailable"] += 1
                return
            else:
                self.answered = self.unacked.pop(msg_id, None)
                if self.answered is None and msg_id.startswith(self.own_ids):
                    # the answer to a probe, or a second answer (our retry crossed the first):
                    # the first told us all it says, and what changed since came in between
                    if not msg_id.startswith(f"{self.name}-probe"):
                        self.counts["stale_answers"] += 1
                    return
                # (an answer to someone else's request about our agent, sent without ReplyTo,
                # comes to us instead of the notification: it is news like any other)
            handler(body)
        return handle

    def on_heartbeat(self, body: dict[str, Any]) -> None:
        epoch = body.get("Epoch")
        if epoch.__class__ is not str:  # a beat that names no Comm says nothing we can act on
            return
        if self.comm_epoch is None:
            # Our agents logged in before we knew which Comm we spoke to: that Comm may have
            # died since. Logging in again is harmless (Comm answers with the state they are in).
            self.desk.log_all_in()
        elif epoch != self.comm_epoch:
            # A new Comm (no journal) knows none of our agents or tasks: start again. (One with
            # its journal shows only as a new Stream: `received` asks it for a Snapshot.)
            log.warning("%s: Comm restarted (epoch %s -> %s): logging our agents in again", self.name,
                        self.comm_epoch, epoch)
            self.counts["comm_restarts"] += 1
            lost = self.customers.forget()  # the new Comm has none of them: nothing will end them
            if lost:
                log.warning("%s: %d of our tasks died with the old Comm", self.name, lost)
            self.counts["lost"] += lost
            self.desk.forget()
            self.desk.log_all_in()
        self.comm_epoch = epoch

    def on_task_state(self, body: dict[str, Any]) -> None:
        if body.get("TaskId").__class__ is not str:
            return
        if self.answered is not None and self.answered[0] == "Task":
            self.customers.on_answer(body["MsgId"], body)
            return
        self.desk.on_task_state(body)
        self.customers.on_task_state(body)

    def on_selected(self, body: dict[str, Any]) -> None:
        task_id, agent_id = body.get("TaskId"), body.get("AgentId")
        if task_id.__class__ is str and agent_id.__class__ is str:
            self.customers.on_selected(task_id)
            self.desk.on_offer(task_id, agent_id)

    def on_error(self, body: dict[str, Any]) -> None:
        if self.answered is not None:
            type, request = self.answered[0], self.answered[1]
            if type == "Task":
                self.customers.on_refused(body["MsgId"])
            elif type == "TaskState":
                self.desk.on_refused(request)
            elif type == "Resync":
                self.resync_asked, self.resync_again = None, False  # refused: asking again would be too
        self.counts["errors"] += 1
        key = f"{body.get('Type')} {body.get('Code')}"
        self.error_codes[key] = self.error_codes.get(key, 0) + 1
        write, unlogged = self.error_lines.take()
        if write:
            log.warning("%s got Error %s on %s: %s%s", self.name, body.get("Code"), body.get("Type"),
                        body.get("Reason"),
                        f" ({unlogged} errors before this one not logged)" if unlogged else "")

    # after lost news: Resync -> Snapshot ------------------------------------------------
    def resync(self, reset: bool = False) -> None:
        """Ask Comm what we should hold: our agents and every task we hold, wait for or have
        open. One at a time: news lost while one is on its way is asked about after its answer
        (a task we learnt of meanwhile is not named in it). `reset`: once, when this process
        starts: the tasks we created and do not name (an earlier process's) are to be closed."""
        if self.resync_asked is not None and self.resync_asked in self.unacked:
            self.resync_again = True
            return
        self.resync_again = False
        task_ids = sorted(set(self.desk.held) | self.customers.tracked())
        if reset:
            self.resync_asked = self.request("Resync", {"Destination": self.name, "TaskIds": task_ids, "Reset": True})
            return
        self.counts["resyncs"] += 1
        log.info("%s: news from Comm lost: resynchronising %d tasks", self.name, len(task_ids))
        self.resync_asked = self.request("Resync", {"Destination": self.name, "TaskIds": task_ids})

    def on_snapshot(self, body: dict[str, Any]) -> None:
        """The snapshot supersedes what we held: it stands where it is in our stream, after
        everything Comm sent us before it."""
        tasks = {row["TaskId"]: row for row in items(body, "Tasks")
                 if row.__class__ is dict and row.get("TaskId").__class__ is str}
        unknown = {task_id for task_id in items(body, "Unknown") if task_id.__class__ is str}
        agents = [row for row in items(body, "Agents") if row.__class__ is dict and row.get("AgentId").__class__ is str]
        self.desk.apply_snapshot(agents, tasks, unknown)
        self.customers.apply_snapshot(tasks, unknown)
        if self.answered is not None and self.answered[0] == "Resync":
            self.resync_asked = None
            if self.resync_again:
                self.resync()

    def stop(self) -> None:
        # Sign our agents out so that Comm requeues what they held rather than keep it, and
        # wait (bounded) for Comm to confirm: linger is not delivery (zeromq-rules 9).
        signed_in = [a for a in self.agents if self.desk.logged_in(a)]
        for agent_id in signed_in:
            self.request("AgentState", {"AgentId": agent_id, "State": S.LOGOUT, "Mrd": self.mrd})
        if signed_in and self.live:
            self.loop.run(until=lambda: all(not self.desk.logged_in(a) for a in signed_in), timeout=1.0,
                          after_stop=True)

    def stats(self) -> dict[str, Any]:
        customers = self.customers
        return {**super().stats(), **self.counts, **self.follower.counts(), "error_codes": dict(self.error_codes),
                "agents": len(self.agents),
                "rate": self.rate, "comm_epoch": self.comm_epoch, "unacked": len(self.unacked),
                "held": self.desk.held_view(), "waiting": len(customers.waiting), "open": len(customers.open),
                "unacknowledged": len(customers.sent_at), "latency": customers.latency.to_json()}
