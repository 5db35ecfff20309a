"""Comm and the MRE wired together in one process, messages passed through the real codec
(so every message they exchange is checked against the catalogue), no sockets."""

from __future__ import annotations

from collections import deque
from typing import Any

from actors.comm.logic import CommLogic
from actors.mre.engine import Engine
from wire import codec
from wire.catalogue import COMMUNICATION_SERVER, ROUTING_ENGINE

MRDS = {"chat": {"max_tasks": 2, "interruptible": True}, "voice": {"max_tasks": 1, "interruptible": False}}


class Harness:
    def __init__(self, agents: int = 4, mrds: dict[str, Any] | None = None):
        self.now = 0.0
        self.mrds = mrds or MRDS
        self.directory = {f"a{i}": {"id": f"a{i}", "password": "pw", "extension": ""} for i in range(agents)}
        self.to_mre: deque[list[bytes]] = deque()
        self.to_comm: deque[list[bytes]] = deque()
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.comm = CommLogic(self.directory, self.mrds, self.publish,
                              lambda t, b: self.to_mre.append(codec.encode(t, b)))
        self.mre = Engine(self.mrds, lambda t, b: self.to_comm.append(codec.encode(t, b)), clock=self.clock)
        self.comm_handlers = {"TaskAgentSelected": self.comm.on_agent_selected,
                              "TaskAgentTransferred": self.comm.on_agent_transferred,
                              "TaskConferenced": self.comm.on_conferenced}
        self.mre_handlers = {"AgentState": self.mre.on_agent_state, "NewTask": self.mre.on_new_task,
                             "TaskState": self.mre.on_task_state, "Transfer": self.mre.on_transfer,
                             "Conference": self.mre.on_conference}

    def clock(self) -> float:
        self.now += 0.001
        return self.now

    def publish(self, dest: str, type: str, body: dict[str, Any]) -> None:
        self.published.append((dest, type, body))

    def pump(self) -> None:
        """Deliver messages both ways until both queues are empty (a livelock fails)."""
        for _ in range(10_000):
            if not (self.to_mre or self.to_comm):
                return
            while self.to_mre:
                type, body = codec.decode(self.to_mre.popleft(), ROUTING_ENGINE)
                self.mre_handlers[type](body)
            while self.to_comm:
                type, body = codec.decode(self.to_comm.popleft(), COMMUNICATION_SERVER)
                self.comm_handlers[type](body)
        raise AssertionError("Comm and the MRE keep sending each other messages: a livelock")

    def send(self, method: str, body: dict[str, Any]) -> None:
        getattr(self.comm, method)(body)
        self.pump()

    def login(self, agent: str, ready: bool = True, mrd: str = "chat") -> None:
        self.send("on_connect", {"AgentId": agent, "Password": "pw", "Destination": f"desk-{agent}"})
        self.send("on_login", {"AgentId": agent, "Password": "pw", "Mrd": mrd})
        if ready:
            self.send("on_agent_state", {"AgentId": agent, "State": "READY", "Mrd": mrd})

    def task(self, mrd: str = "chat", client: str = "c") -> str:
        self.send("on_task", {"Mrd": mrd, "ClientUniqueId": client, "ReplyTo": "web"})
        return self.published_of("TaskState", State="QUEUED")[-1]["TaskId"]

    def published_of(self, type: str, **fields: Any) -> list[dict[str, Any]]:
        return [b for _, t, b in self.published if t == type and all(b.get(k) == v for k, v in fields.items())]

    def state(self, agent: str, mrd: str = "chat") -> str:
        return self.comm.state.sessions[agent].mrds[mrd].state

    def offer_of(self, agent: str, mrd: str = "chat") -> str | None:
        return self.comm.state.sessions[agent].mrds[mrd].offer
