"""A simulated Chat Server: customers' chats on one side, agents' desktops on the other.

It speaks only protocol.md: pushes to `General`, listens on its own topic of `ChatEvents`.
Its agents connect, log into the MRD and go READY; customers arrive at `rate` per second
(Poisson) and give up (cancel) when no agent was chosen within their patience; its agents
accept offers after a think time and close tasks after a handling time. It measures routing
latency (Task sent -> TaskAgentSelected received) and accounts for every task it created.

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
from typing import Any

import orjson
import zmq

from actors.runtime import Actor, log, recv_frames
from wire import codec, dist, states as S
from wire.codec import WireError
from wire.catalogue import CHAT_EVENTS, GENERAL, HEARTBEAT, HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC
from wire.stats import Histogram

PROBE_INTERVAL = 0.05
RESEND_AFTER = 1.0     # seconds without an acknowledgement before a request is sent again
GIVE_UP_AFTER = 60.0   # seconds after which an unacknowledged request is abandoned (and counted)
# How our customers' tasks end, by the Code of their CLOSED state.
OUTCOMES = {S.DONE: "closed", S.CANCELLED: "abandoned", S.NO_AGENT_AVAILABLE: "expired"}


def read_credentials() -> dict[str, str]:
    """{agent: password} from stdin, when the supervisor hands them over (else nothing)."""
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    try:
        data = sys.stdin.buffer.read()
    except (OSError, ValueError):
        return {}
    return orjson.loads(data) if data.strip() else {}


class ChatServer(Actor):
    role = "chat"

    def start(self) -> None:
        settings = self.config.settings
        per_server = int(settings.get("agents", 0))
        directory = self.config.topology["agents"]
        first = (self.config.index - 1) * per_server
        self.agents = {a["id"]: a for a in directory[first:first + per_server]}
        # The passwords come on our stdin from the supervisor: the directory we read holds hashes.
        self.passwords = read_credentials()
        if len(self.agents) < per_server:
            log.warning("%s wants %d agents but the directory has only %d from #%d", self.name, per_server,
                        len(self.agents), first + 1)
        self.mrd = settings.get("mrd", "chat")
        self.rate = float(settings.get("rate", 0))
        self.handle = dist.parse(settings.get("handle", "uniform:2,6"))
        self.think = dist.parse(settings.get("think", "uniform:0.05,0.3"))
        self.patience = dist.parse_optional(settings.get("patience"))
        self.rng = random.Random(f"{self.name}-{time.time()}")
        self.probe_agent = next(iter(self.agents), directory[0]["id"] if directory else "")

        self.general = self.socket(zmq.PUSH, connect=self.config.endpoints[GENERAL])
        self.events = self.socket(zmq.SUB, connect=self.config.endpoints[CHAT_EVENTS])
        self.events.setsockopt(zmq.SUBSCRIBE, codec.topic(self.name))
        self.events.setsockopt(zmq.SUBSCRIBE, codec.topic(HEARTBEAT_TOPIC))
        self.comm_epoch: str | None = None
        self.loop.add_reader(self.events, self.drain_events)

        self.live = False
        self.arrivals: Any = None
        self.probes = 0
        self.numbers = 0
        self.boot = format(time.time_ns() // 1_000_000, "x")  # MsgIds of a restarted us must not repeat
        self.run: Any = None
        self.unacked: dict[str, list[Any]] = {}   # MsgId -> [type, body, first sent, last sent]
        self.answered: list[Any] | None = None    # the request the message being handled answers
        self.closing: set[str] = set()            # held tasks our agents have closed, not yet confirmed
        self.comm_beat = 0                        # the Seq of Comm's last heartbeat
        # The customer side: every task we created, until Comm says how it ended.
        self.sent_at: dict[str, float] = {}      # MsgId -> when our Task was sent, until Comm acknowledges
        self.waiting: dict[str, float] = {}      # TaskId -> when its Task was sent, until an agent is chosen
        self.patience_timers: dict[str, Any] = {}
        self.open: set[str] = set()              # our TaskIds not closed yet
        # The agent side: offers and tasks our agents hold, so they act only on live ones.
        self.held: dict[str, str] = {}           # TaskId -> the agent of ours it is offered to or held by
        self.agent_states: dict[str, str] = {}
        self.counts_afresh()
        self.handlers = {"TaskState": self.on_task_state, "TaskAgentSelected": self.on_selected,
                         "AgentState": self.on_agent_state, "Error": self.on_error,
                         "TaskAgentTransferred": self.ignore, "TaskConferenced": self.ignore,
                         HEARTBEAT: self.on_heartbeat}
        self.probe()

    def counts_afresh(self) -> None:
        """Counts and latency from now on; tasks created before are no longer ours to count."""
        self.latency = Histogram()
        self.counts = {"created": 0, "queued": 0, "routed": 0, "abandoned": 0, "closed": 0, "expired": 0,
                       "closed_other": 0, "lost": 0, "refused": 0, "resent": 0, "gave_up": 0, "offered": 0,
                       "accepted": 0, "handled": 0, "errors": 0,
                       "agents_ready": getattr(self, "counts", {}).get("agents_ready", 0),
                       "comm_restarts": getattr(self, "counts", {}).get("comm_restarts", 0)}
        self.forget_our_tasks()

    def forget_our_tasks(self) -> int:
        """Stop following the tasks we created; returns how many had not ended."""
        unended = len(self.open) + len(self.sent_at)
        for timer in self.patience_timers.values():
            timer.cancel()
        for tasks in (self.sent_at, self.waiting, self.patience_timers, self.open):
            tasks.clear()
        return unended

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
        self.log_agents_in(reset=True)
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

    def log_agents_in(self, reset: bool = False) -> None:
        """Connect and Login every agent; `reset` (once, when this process starts) tells Comm
        that whatever they held on an earlier process of ours is on no screen any more."""
        for agent_id, agent in self.agents.items():
            password = self.passwords.get(agent_id)
            if password is None:
                log.warning("%s: no password for %s (the topology gives only its hash): not logged in", self.name,
                            agent_id)
                continue
            self.request("Connect", {"AgentId": agent_id, "Password": password, "Reset": reset,
                                     "Extension": agent.get("extension", ""), "Destination": self.name})
            self.request("Login", {"AgentId": agent_id, "Password": password, "Mrd": self.mrd})

    # sending ---------------------------------------------------------------------------
    def send(self, type: str, body: dict[str, Any]) -> None:  # type: ignore[override]
        body.setdefault("ReplyTo", self.name)
        super().send(self.general, codec.encode(type, body))

    def request(self, type: str, body: dict[str, Any]) -> str:
        """Send until acknowledged (at least once): Comm answers every request carrying a
        MsgId with one message carrying it back, and applies a repeated MsgId only once."""
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
                log.warning("%s: no acknowledgement of %s %s in %.0f s: given up", self.name, type, msg_id,
                            GIVE_UP_AFTER)
            elif now - last >= RESEND_AFTER:
                entry[3] = now
                self.counts["resent"] += 1
                self.send(type, body)

    def new_task(self) -> None:
        self.numbers += 1
        msg_id = f"{self.name}-{self.boot}-t{self.numbers}"
        self.sent_at[msg_id] = time.monotonic()
        self.counts["created"] += 1
        self.request("Task", {"Mrd": self.mrd, "ClientUniqueId": f"{self.name}-c{self.numbers}",
                           "name": f"Customer {self.numbers}", "params": [["channel", "web"]], "MsgId": msg_id})
        # Each arrival is due a Poisson interval after the one before, not after the moment
        # its timer ran (timers fire up to a millisecond late): the offered rate stays exact.
        self.arrivals_due += self.rng.expovariate(self.rate)
        self.arrivals = self.loop.call_at(self.arrivals_due, self.new_task)

    def accept(self, agent_id: str, task_id: str) -> None:
        if self.held.get(task_id) == agent_id:  # not taken back meanwhile (the customer left, RONA)
            self.request("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.ACTIVE})

    def finish(self, agent_id: str, task_id: str) -> None:
        if self.held.get(task_id) == agent_id:
            self.closing.add(task_id)  # our agent is done with it, whatever the news says
            self.request("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.CLOSED, "Code": S.DONE})

    def give_up(self, task_id: str) -> None:
        """The customer's patience ran out before an agent was chosen: cancel the task."""
        self.patience_timers.pop(task_id, None)
        if self.waiting.pop(task_id, None) is not None:  # counted when Comm confirms: it may have ended otherwise
            self.request("TaskState", {"TaskId": task_id, "State": S.CLOSED, "Code": S.CANCELLED})

    # events ----------------------------------------------------------------------------
    def drain_events(self) -> None:
        for _ in range(512):
            frames = recv_frames(self.events)
            if frames is None:
                return
            self.counters["received"] += 1
            try:
                _dest, type, body = codec.decode_event(frames)
            except (ValueError, UnicodeDecodeError) as exc:
                log.warning("%s: undecodable event: %s", self.name, exc)
                continue
            if not self.live:
                self.went_live()
            if "TaskId" in body:
                self.trace.append((time.time(), CHAT_EVENTS, type, body["TaskId"], body.get("AgentId")))
            msg_id = body.get("MsgId")
            # acknowledged (an answer, an Error or an Ack): the handler may look at what was asked
            self.answered = self.unacked.pop(msg_id, None) if msg_id is not None else None
            self.handlers.get(type, self.ignore)(body)

    def ignore(self, body: dict[str, Any]) -> None:
        pass

    def on_heartbeat(self, body: dict[str, Any]) -> None:
        epoch = body.get("Epoch")
        beat = body.get("Seq") or 0
        numbered_afresh, self.comm_beat = beat <= self.comm_beat, beat
        if epoch == self.comm_epoch and numbered_afresh:
            # The same Comm (it keeps a journal) in a new process: what it published while our
            # subscription came back is lost to us. Ask it where each task we hold now is.
            log.info("%s: Comm restarted with its journal: checking the %d tasks we hold", self.name, len(self.held))
            for task_id in list(self.held):
                self.request("GetTaskState", {"TaskId": task_id, "MsgId": f"{self.name}-{self.boot}-sync-{task_id}"})
        if self.comm_epoch is None:
            # Our agents logged in before we knew which Comm we spoke to: that Comm may have
            # died since. Logging in again is harmless (Comm answers with the state they are in).
            self.log_agents_in()
        elif epoch != self.comm_epoch:
            # A new Comm knows none of our agents or tasks: start again.
            log.warning("%s: Comm restarted (epoch %s -> %s): logging our agents in again", self.name,
                        self.comm_epoch, epoch)
            self.counts["comm_restarts"] += 1
            lost = self.forget_our_tasks()  # the new Comm has none of them: nothing will end them
            if lost:
                log.warning("%s: %d of our tasks died with the old Comm", self.name, lost)
            self.counts["lost"] += lost
            self.held.clear()
            self.closing.clear()
            self.agent_states.clear()
            self.log_agents_in()
        self.comm_epoch = epoch

    def on_error(self, body: dict[str, Any]) -> None:
        asked = self.answered[1] if self.answered is not None else {}
        if body.get("Type") == "GetTaskState" and asked.get("TaskId") in self.held:
            del self.held[asked["TaskId"]]  # Comm does not know it: nobody holds it
            self.closing.discard(asked["TaskId"])
        elif body.get("Type") == "TaskState" and self.held.get(asked.get("TaskId", "")) == asked.get("AgentId"):
            # Comm says our agent does not have it (it went back while we missed the news)
            del self.held[asked["TaskId"]]
            self.closing.discard(asked["TaskId"])
        if body.get("Type") == "Task" and self.sent_at.pop(body.get("MsgId") or "", None) is not None:
            self.counts["refused"] += 1  # our customer is told to come back later (OVERLOADED)
        self.counts["errors"] += 1
        log.warning("%s got Error %s on %s: %s", self.name, body.get("Code"), body.get("Type"), body.get("Reason"))

    def on_agent_state(self, body: dict[str, Any]) -> None:
        agent_id, state = body["AgentId"], body["State"]
        if agent_id not in self.agents:
            return
        previous = self.agent_states.get(agent_id)
        self.agent_states[agent_id] = state
        if state == S.NOT_READY and previous != S.NOT_READY:
            # Our agents want work: NOT_READY after login (or after a missed offer) -> READY.
            self.request("AgentState", {"AgentId": agent_id, "State": S.READY, "Mrd": body["Mrd"]})
        if state == S.READY and previous in (None, S.LOGIN, S.NOT_READY):
            self.counts["agents_ready"] += 1

    def on_task_state(self, body: dict[str, Any]) -> None:
        state, task_id = body.get("State"), body.get("TaskId")
        if self.answered is not None and self.answered[0] == "GetTaskState":
            # where a task we hold is now, after news may have been lost: keep it only if it
            # is still on offer to, or held by, the same agent of ours
            if self.held.get(task_id) != body.get("AgentId") or state not in (S.RESERVED, S.ACTIVE, S.WRAP_UP):
                self.held.pop(task_id, None)
                self.closing.discard(task_id)
            return
        if state == S.QUEUED:
            sent = self.sent_at.pop(body.get("MsgId") or "", None)
            if sent is not None:  # Comm acknowledged our Task and named it
                self.counts["queued"] += 1
                self.open.add(task_id)
                self.waiting[task_id] = sent
                if self.patience is not None:
                    delay = sent + self.patience.sample(self.rng) - time.monotonic()
                    self.patience_timers[task_id] = self.loop.call_later(max(0.0, delay), self.give_up, task_id)
            elif body.get("Code") and task_id in self.held:  # RONA, AGENT_LOGOUT: taken from our agent
                del self.held[task_id]
                self.closing.discard(task_id)
        elif state == S.ACTIVE:
            if body.get("AgentId") in self.agents and self.held.get(task_id) == body["AgentId"] \
                    and not body.get("Code"):
                self.counts["accepted"] += 1
                self.loop.call_later(self.handle.sample(self.rng), self.finish, body["AgentId"], task_id)
        elif state == S.CLOSED and body.get("Scope") != "PARTICIPANT":
            self.closing.discard(task_id)
            if task_id in self.held:
                del self.held[task_id]
                if body.get("Code") == S.DONE and body.get("AgentId") in self.agents:
                    self.counts["handled"] += 1
            if task_id in self.open:
                self.open.discard(task_id)
                self.forget_waiting(task_id)
                self.counts[OUTCOMES.get(body.get("Code"), "closed_other")] += 1

    def forget_waiting(self, task_id: str) -> float | None:
        timer = self.patience_timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()
        return self.waiting.pop(task_id, None)

    def on_selected(self, body: dict[str, Any]) -> None:
        task_id, agent_id = body["TaskId"], body["AgentId"]
        sent = self.forget_waiting(task_id)
        if sent is not None:
            self.latency.record(time.monotonic() - sent)
            self.counts["routed"] += 1
        if agent_id in self.agents:
            self.counts["offered"] += 1
            self.held[task_id] = agent_id
            self.loop.call_later(self.think.sample(self.rng), self.accept, agent_id, task_id)

    def stop(self) -> None:
        # Sign our agents out so that Comm requeues what they held rather than keep it, and
        # wait (bounded) for Comm to confirm: linger is not delivery (zeromq-rules 9).
        signed_in = [a for a in self.agents if self.agent_states.get(a, S.LOGOUT) != S.LOGOUT]
        for agent_id in signed_in:
            self.request("AgentState", {"AgentId": agent_id, "State": S.LOGOUT, "Mrd": self.mrd})
        if signed_in and self.live:
            self.loop.run(until=lambda: all(self.agent_states.get(a) == S.LOGOUT for a in signed_in),
                          timeout=1.0, after_stop=True)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.counts, "agents": len(self.agents), "rate": self.rate,
                "comm_epoch": self.comm_epoch, "unacked": len(self.unacked),
                # what our agents hold or are offered, for an outside check of capacity and
                # double assignment (mroute chaos); only while it is small
                "held": {t: a for t, a in self.held.items() if t not in self.closing} if len(self.held) <= 10_000
                else None,
                "waiting": len(self.waiting), "open": len(self.open), "unacknowledged": len(self.sent_at),
                "latency": self.latency.to_json()}
