"""The MRE process: the Engine behind the `RoutingEngine` queue."""

from __future__ import annotations

from typing import Any, Callable

import zmq

from actors.runtime import Actor, log
from wire import codec
from wire.catalogue import COMMUNICATION_SERVER, ROUTING_ENGINE
from wire.curve import MRE, Curve

from .decisions import DecisionStream
from .engine import Engine
from .sync import SnapshotSync

# message type on RoutingEngine -> the Engine method that handles it (Confirm: the decision stream's)
HANDLERS = {"AgentState": "on_agent_state", "NewTask": "on_new_task", "TaskState": "on_task_state",
            "Transfer": "on_transfer", "Conference": "on_conference", "Snapshot": "on_snapshot"}
RESYNC_INTERVAL = 0.5
MAX_SNAPSHOT = 256 * 1024 ** 2  # bytes: the largest frame RoutingEngine takes


def routing_directory(topology: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Only the attributes: routing needs nothing else of an agent, and at 100,000 agents the
    full entries would cost about 1 KB an agent; the topology's copy is let go."""
    directory = {agent["id"]: {"attributes": agent.get("attributes", {})} for agent in topology["agents"]}
    topology["agents"] = []
    return directory


class Mre(Actor):
    role = "mre"

    def start(self) -> None:
        endpoints = self.config.endpoints
        self.comm = self.socket(zmq.PUSH, connect=endpoints[COMMUNICATION_SERVER])
        self.sender.batching[self.comm] = False
        # Comm's snapshot is one frame: about 250 bytes an agent and a task
        intake = self.socket(zmq.PULL, bind=endpoints[ROUTING_ENGINE], max_frame=MAX_SNAPSHOT)
        topology = self.config.topology
        self.sync = SnapshotSync(self.name)
        # decisions are numbered and kept until Comm confirms them; Resync goes out as it is
        self.decisions = DecisionStream(self.emit, self.loop.call_later, on_full=self.snapshot_unless_asked)
        self.engine = Engine(topology["mrds"], self.decisions.emit, queues=topology.get("queues", {}),
                             directory=routing_directory(topology), call_later=self.loop.call_later,
                             resync=self.ask_for_snapshot)
        handlers = {type: getattr(self.engine, name) for type, name in HANDLERS.items()}
        handlers["Confirm"] = self.on_confirm
        self.serve(ROUTING_ENGINE, intake, {type: self.gate(type, handler) for type, handler in handlers.items()})
        self.ask_for_snapshot()

    def gate(self, type: str, handler: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        def gated(body: dict[str, Any]) -> None:
            if type == "Snapshot":
                first = not self.sync.synced
                if not self.sync.take_snapshot(body):
                    return
                # before the engine rebuilds: the offers it makes from the snapshot are the
                # first decisions of the decision stream's new stream, not forgotten with the old one
                self.decisions.reset(body.get("Decisions") if body.get("Decisions").__class__ is str else None)
                handler(body)
                if first:
                    self.announce_ready()
            else:
                take = self.sync.take_update(body)
                if take:
                    handler(body)
                elif take is None:
                    log.warning("%s: update %s of %s is not the next (%s of %s): asking for a snapshot", self.name,
                                body.get("Seq"), body.get("Stream"), self.sync.seq + 1, self.sync.stream)
                    self.ask_for_snapshot("an update is missing")
        return gated

    def ask_for_snapshot(self, reason: str = "MRE started") -> None:
        """Ask Comm for its whole view; ask again until the answer comes."""
        request = self.sync.request()
        self.decisions.hold()  # the snapshot is built when this arrives: nothing may follow it
        self.emit("Resync", {"Reason": reason, "Request": request})
        self.loop.call_later(RESYNC_INTERVAL, self.retry_snapshot, request, reason)

    def retry_snapshot(self, request: str, reason: str) -> None:
        if self.sync.awaiting == request:
            self.ask_for_snapshot(reason)

    def snapshot_unless_asked(self, reason: str) -> None:
        """The decision stream is full. A snapshot already asked for will do: asking again would make
        the answer on its way stale."""
        if self.sync.awaiting is None:
            self.ask_for_snapshot(reason)

    def on_confirm(self, body: dict[str, Any]) -> None:
        self.decisions.confirm(body["Decisions"], body["Through"])

    def ready(self) -> bool:
        return False  # READY once Comm's snapshot has been loaded

    def curve_key(self, curve: Curve) -> str:
        return MRE  # the one key Comm takes decisions from

    def emit(self, type: str, body: dict[str, Any]) -> None:
        """Onto the CommunicationServer queue as it is: decisions come here through the decision stream."""
        self.send(self.comm, codec.encode(type, body))

    def control_verbs(self) -> dict[str, Any]:
        return {"explain": lambda body: self.engine.explain(str(body.get("task", "")))}

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.engine.stats(),
                "sync": {"asked": self.sync.asked, "stale": self.sync.stale, "dropped": self.sync.dropped,
                         "gaps": self.sync.gaps, "seq": self.sync.seq},
                "decisions": self.decisions.stats()}
