"""The MRE process: the Engine behind the `RoutingEngine` queue."""

from __future__ import annotations

from typing import Any

import zmq

from actors.runtime import Actor
from wire import codec
from wire.catalogue import COMMUNICATION_SERVER, ROUTING_ENGINE

from .engine import Engine

# message type on RoutingEngine -> the Engine method that handles it
HANDLERS = {"AgentState": "on_agent_state", "NewTask": "on_new_task", "TaskState": "on_task_state",
            "Transfer": "on_transfer", "Conference": "on_conference"}


class Mre(Actor):
    role = "mre"

    def start(self) -> None:
        endpoints = self.config.endpoints
        self.comm = self.socket(zmq.PUSH, connect=endpoints[COMMUNICATION_SERVER])
        intake = self.socket(zmq.PULL, bind=endpoints[ROUTING_ENGINE])
        self.engine = Engine(self.config.topology["mrds"], self.emit)
        self.serve(ROUTING_ENGINE, intake, {type: getattr(self.engine, name) for type, name in HANDLERS.items()})

    def emit(self, type: str, body: dict[str, Any]) -> None:
        self.comm.send_multipart(codec.encode(type, body))
        self.counters["sent"] += 1

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.engine.stats()}
