"""The MRE process: the Engine behind the `RoutingEngine` queue."""

from __future__ import annotations

from typing import Any, Callable

import zmq

from actors.runtime import Actor
from wire import codec
from wire.catalogue import COMMUNICATION_SERVER, ROUTING_ENGINE

from .engine import Engine

# message type on RoutingEngine -> the Engine method that handles it
HANDLERS = {"AgentState": "on_agent_state", "NewTask": "on_new_task", "TaskState": "on_task_state",
            "Transfer": "on_transfer", "Conference": "on_conference", "Snapshot": "on_snapshot"}
RESYNC_INTERVAL = 0.5


class Mre(Actor):
    role = "mre"

    def start(self) -> None:
        endpoints = self.config.endpoints
        self.comm = self.socket(zmq.PUSH, connect=endpoints[COMMUNICATION_SERVER])
        intake = self.socket(zmq.PULL, bind=endpoints[ROUTING_ENGINE])
        topology = self.config.topology
        self.engine = Engine(topology["mrds"], self.emit, queues=topology.get("queues", {}),
                             directory={a["id"]: a for a in topology["agents"]}, call_later=self.loop.call_later)
        self.synced = False
        self.serve(ROUTING_ENGINE, intake, {type: self.gate(type, getattr(self.engine, name))
                                            for type, name in HANDLERS.items()})
        self.ask_for_snapshot()

    def gate(self, type: str, handler: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """Until the first snapshot arrives our view is empty, and routing on it could offer
        what Comm has already given away: drop updates until then."""
        def gated(body: dict[str, Any]) -> None:
            if type == "Snapshot" and not self.synced:
                self.synced = True
                self.announce_ready()
            elif not self.synced:
                self.counters["dropped_before_snapshot"] = self.counters.get("dropped_before_snapshot", 0) + 1
                return
            handler(body)
        return gated

    def ask_for_snapshot(self) -> None:
        if not self.synced:
            self.emit("Resync", {"Reason": "MRE started"})
            self.loop.call_later(RESYNC_INTERVAL, self.ask_for_snapshot)

    def ready(self) -> bool:
        return False  # READY once Comm's snapshot has been loaded

    def emit(self, type: str, body: dict[str, Any]) -> None:
        self.comm.send_multipart(codec.encode(type, body))
        self.counters["sent"] += 1

    def control_verbs(self) -> dict[str, Any]:
        return {"explain": lambda body: self.engine.explain(str(body.get("task", "")))}

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.engine.stats()}
