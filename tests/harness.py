"""Comm and the MRE wired together in one process, messages passed through the real codec
(so every message they exchange is checked against the catalogue), no sockets."""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from actors.comm.logic import CommLogic
from actors.mre.engine import Engine
from wire import codec
from wire.catalogue import COMMUNICATION_SERVER, ROUTING_ENGINE

MRDS = {"chat": {"max_tasks": 2, "interruptible": True, "default_queue": "chat-default"},
        "voice": {"max_tasks": 1, "interruptible": False, "default_queue": "voice-default"}}
QUEUES = {"chat-default": {"mrd": "chat", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15.0, "ttl": 300.0,
                           "steps": [{"expr": "true", "timeout": 0.0}], "ageing": 60.0},
          "voice-default": {"mrd": "voice", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15.0, "ttl": 300.0,
                            "steps": [{"expr": "true", "timeout": 0.0}], "ageing": 60.0}}


class Timer:
    def __init__(self, when: float, fn: Any, args: tuple[Any, ...]):
        self.when, self.fn, self.args, self.cancelled = when, fn, args, False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "Timer") -> bool:
        return self.when < other.when


class Harness:
    """Time is virtual: `advance(seconds)` runs the timers that fall due, in order."""

    def __init__(self, agents: int = 4, mrds: dict[str, Any] | None = None, queues: dict[str, Any] | None = None,
                 attributes: dict[str, dict[str, Any]] | None = None):
        self.now = 0.0
        self.timers: list[Timer] = []
        self.mrds = mrds or MRDS
        self.queues = queues or QUEUES
        self.directory = {f"a{i}": {"id": f"a{i}", "password": "pw", "extension": "",
                                    "attributes": (attributes or {}).get(f"a{i}", {})} for i in range(agents)}
        self.to_mre: deque[list[bytes]] = deque()
        self.to_comm: deque[list[bytes]] = deque()
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.comm = CommLogic(self.directory, self.mrds, self.publish,
                              lambda t, b: self.to_mre.append(codec.encode(t, b)), queues=self.queues,
                              call_later=self.call_later, clock=self.clock)
        self.mre = Engine(self.mrds, lambda t, b: self.to_comm.append(codec.encode(t, b)), queues=self.queues,
                          directory=self.directory, clock=self.clock, call_later=self.call_later)
        self.comm_handlers = {"TaskAgentSelected": self.comm.on_agent_selected,
                              "TaskAgentTransferred": self.comm.on_agent_transferred,
                              "TaskConferenced": self.comm.on_conferenced}
        self.mre_handlers = {"AgentState": self.mre.on_agent_state, "NewTask": self.mre.on_new_task,
                             "TaskState": self.mre.on_task_state, "Transfer": self.mre.on_transfer,
                             "Conference": self.mre.on_conference, "Snapshot": self.mre.on_snapshot}

    def clock(self) -> float:
        return self.now

    def call_later(self, delay: float, fn: Any, *args: Any) -> Timer:
        timer = Timer(self.now + delay, fn, args)
        heapq.heappush(self.timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on, running due timers in time order (and what they cause)."""
        end = self.now + seconds
        while self.timers and self.timers[0].when <= end:
            timer = heapq.heappop(self.timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, timer.when)
            timer.fn(*timer.args)
            self.pump()
        self.now = end

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

    def task(self, mrd: str = "chat", client: str = "c", **params: Any) -> str:
        self.send("on_task", {"Mrd": mrd, "ClientUniqueId": client, "ReplyTo": "web",
                              "params": [[k, v] for k, v in params.items()]})
        return next(b["TaskId"] for _, t, b in reversed(self.published) if t == "TaskState" and b["State"] == "QUEUED")

    def published_of(self, type: str, **fields: Any) -> list[dict[str, Any]]:
        return [b for _, t, b in self.published if t == type and all(b.get(k) == v for k, v in fields.items())]

    def state(self, agent: str, mrd: str = "chat") -> str:
        return self.comm.state.sessions[agent].mrds[mrd].state

    def offer_of(self, agent: str, mrd: str = "chat") -> str | None:
        return self.comm.state.sessions[agent].mrds[mrd].offer
