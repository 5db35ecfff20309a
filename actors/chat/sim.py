"""A simulated Chat Server: customers' chats on one side, agents' desktops on the other.

It speaks only protocol.md: pushes to `General`, listens on its own topic of `ChatEvents`.
Its agents connect, log into the MRD and go READY; customers arrive at `rate` per second
(Poisson); its agents accept offers after a think time and close tasks after a handling
time. It measures routing latency (Task sent -> TaskAgentSelected received) and counts.

Settings (the actor's entry in the topology): `agents` (how many directory agents this
instance desks, taken in directory order by instance number), `rate` (tasks/s), `handle`
(mean handling time, s), `think` ([min, max] seconds before accepting), `mrd`.
"""

from __future__ import annotations

import random
import time
from typing import Any

import zmq

from actors.runtime import Actor, log
from wire import codec, states as S
from wire.codec import WireError
from wire.catalogue import CHAT_EVENTS, GENERAL, HEARTBEAT, HEARTBEAT_TOPIC
from wire.stats import Histogram

PROBE_INTERVAL = 0.05


class ChatServer(Actor):
    role = "chat"

    def start(self) -> None:
        settings = self.config.settings
        per_server = int(settings.get("agents", 0))
        directory = self.config.topology["agents"]
        first = (self.config.index - 1) * per_server
        self.agents = {a["id"]: a for a in directory[first:first + per_server]}
        if len(self.agents) < per_server:
            log.warning("%s wants %d agents but the directory has only %d from #%d", self.name, per_server,
                        len(self.agents), first + 1)
        self.mrd = settings.get("mrd", "chat")
        self.rate = float(settings.get("rate", 0))
        self.handle_mean = float(settings.get("handle", 5))
        self.think = tuple(settings.get("think", (0.05, 0.3)))
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
        self.sent_at: dict[str, float] = {}      # MsgId -> when our Task was sent
        self.waiting: dict[str, float] = {}      # TaskId -> when its Task was sent, until selected
        self.agent_states: dict[str, str] = {}
        self.latency = Histogram()
        self.counts = {"created": 0, "queued": 0, "routed": 0, "accepted": 0, "closed": 0, "errors": 0,
                       "agents_ready": 0, "comm_restarts": 0}
        self.handlers = {"TaskState": self.on_task_state, "TaskAgentSelected": self.on_selected,
                         "AgentState": self.on_agent_state, "Error": self.on_error,
                         "TaskAgentTransferred": self.ignore, "TaskConferenced": self.ignore,
                         HEARTBEAT: self.on_heartbeat}
        self.probe()

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
        self.log_agents_in()
        self.set_rate(self.rate)

    def set_rate(self, rate: float) -> None:
        """Customers arrive at `rate` per second (Poisson); 0 stops them."""
        self.rate = rate
        if self.arrivals is not None:
            self.arrivals.cancel()
            self.arrivals = None
        if rate > 0 and self.live:
            self.arrivals = self.loop.call_later(self.rng.expovariate(rate), self.new_task)

    def control_verbs(self) -> dict[str, Any]:
        def rate(body: dict[str, Any]) -> dict[str, Any]:
            value = body.get("rate")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise WireError("BAD_FIELD", f"rate must be a number >= 0, not {value!r}", field="rate")
            self.set_rate(float(value))
            return {"rate": self.rate}
        return {"rate": rate}

    def log_agents_in(self) -> None:
        for agent_id, agent in self.agents.items():
            self.send("Connect", {"AgentId": agent_id, "Password": agent["password"],
                                  "Extension": agent.get("extension", ""), "Destination": self.name})
            self.send("Login", {"AgentId": agent_id, "Password": agent["password"], "Mrd": self.mrd})

    # sending ---------------------------------------------------------------------------
    def send(self, type: str, body: dict[str, Any]) -> None:  # type: ignore[override]
        body.setdefault("ReplyTo", self.name)
        super().send(self.general, codec.encode(type, body))

    def new_task(self) -> None:
        self.numbers += 1
        msg_id = f"{self.name}-t{self.numbers}"
        self.sent_at[msg_id] = time.monotonic()
        self.counts["created"] += 1
        self.send("Task", {"Mrd": self.mrd, "ClientUniqueId": f"{self.name}-c{self.numbers}",
                           "name": f"Customer {self.numbers}", "params": [["channel", "web"]], "MsgId": msg_id})
        self.arrivals = self.loop.call_later(self.rng.expovariate(self.rate), self.new_task)

    def accept(self, agent_id: str, task_id: str) -> None:
        self.send("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.ACTIVE})

    def finish(self, agent_id: str, task_id: str) -> None:
        self.send("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.CLOSED, "Code": S.DONE})

    # events ----------------------------------------------------------------------------
    def drain_events(self) -> None:
        for _ in range(512):
            try:
                frames = self.events.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.counters["received"] += 1
            try:
                _dest, type, body = codec.decode_event(frames)
            except (ValueError, UnicodeDecodeError) as exc:
                log.warning("%s: undecodable event: %s", self.name, exc)
                continue
            if not self.live:
                self.went_live()
            self.handlers.get(type, self.ignore)(body)

    def ignore(self, body: dict[str, Any]) -> None:
        pass

    def on_heartbeat(self, body: dict[str, Any]) -> None:
        epoch = body.get("Epoch")
        if self.comm_epoch is None:
            # Our agents logged in before we knew which Comm we spoke to: that Comm may have
            # died since. Logging in again is harmless (Comm answers with the state they are in).
            self.log_agents_in()
        elif epoch != self.comm_epoch:
            # A new Comm knows none of our agents or tasks: start again.
            log.warning("%s: Comm restarted (epoch %s -> %s): logging our agents in again", self.name,
                        self.comm_epoch, epoch)
            self.counts["comm_restarts"] += 1
            self.sent_at.clear()
            self.waiting.clear()
            self.agent_states.clear()
            self.log_agents_in()
        self.comm_epoch = epoch

    def on_error(self, body: dict[str, Any]) -> None:
        self.counts["errors"] += 1
        log.warning("%s got Error %s on %s: %s", self.name, body.get("Code"), body.get("Type"), body.get("Reason"))

    def on_agent_state(self, body: dict[str, Any]) -> None:
        agent_id, state = body["AgentId"], body["State"]
        if agent_id not in self.agents or body.get("MsgId"):
            return
        previous = self.agent_states.get(agent_id)
        self.agent_states[agent_id] = state
        if state == S.NOT_READY and previous != S.NOT_READY:
            # Our agents want work: NOT_READY after login (or after a missed offer) -> READY.
            self.send("AgentState", {"AgentId": agent_id, "State": S.READY, "Mrd": body["Mrd"]})
        if state == S.READY and previous in (None, S.LOGIN, S.NOT_READY):
            self.counts["agents_ready"] += 1

    def on_task_state(self, body: dict[str, Any]) -> None:
        state = body.get("State")
        if state == S.QUEUED:
            sent = self.sent_at.pop(body.get("MsgId") or "", None)
            if sent is not None:
                self.counts["queued"] += 1
                self.waiting[body["TaskId"]] = sent
        elif state == S.ACTIVE and body.get("AgentId") in self.agents and not body.get("Code"):
            self.counts["accepted"] += 1
            self.loop.call_later(self.rng.uniform(0.5, 1.5) * self.handle_mean, self.finish,
                                 body["AgentId"], body["TaskId"])
        elif state == S.CLOSED and body.get("AgentId") in self.agents and body.get("Code") == S.DONE:
            self.counts["closed"] += 1

    def on_selected(self, body: dict[str, Any]) -> None:
        sent = self.waiting.pop(body["TaskId"], None)
        if sent is not None:
            self.latency.record(time.monotonic() - sent)
            self.counts["routed"] += 1
        agent_id = body["AgentId"]
        if agent_id in self.agents:
            self.loop.call_later(self.rng.uniform(*self.think), self.accept, agent_id, body["TaskId"])

    def stop(self) -> None:
        # Sign our agents out so that Comm requeues what they held rather than keep it, and
        # wait (bounded) for Comm to confirm: linger is not delivery (zeromq-rules 9).
        signed_in = [a for a in self.agents if self.agent_states.get(a, S.LOGOUT) != S.LOGOUT]
        for agent_id in signed_in:
            self.send("AgentState", {"AgentId": agent_id, "State": S.LOGOUT, "Mrd": self.mrd})
        if signed_in and self.live:
            self.loop.run(until=lambda: all(self.agent_states.get(a) == S.LOGOUT for a in signed_in),
                          timeout=1.0, after_stop=True)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.counts, "agents": len(self.agents), "latency": self.latency.to_json()}
