"""Comm and the MRE wired together in one process, messages passed through the real codec
(so every message they exchange is checked against the catalogue), no sockets. Requests
go through Comm's real dispatcher (`CommCore.request`): answers and refusals are what a
Chat Server would receive."""

from __future__ import annotations

from collections import deque
from typing import Any

from actors.comm.core import CommCore
from actors.comm.state import CommState
from actors.mre.decisions import DecisionStream
from actors.mre.engine import Engine
import orjson

from wire import codec
from wire.codec import WireError
from wire.catalogue import COMMUNICATION_SERVER, ROUTING_ENGINE

from .fakeclock import FakeClock

# the fields that name the agent a desk acts for
AGENT_KEYS = ("AgentId", "OwnerAgentId", "ConferenceOwner")
MRDS = {"chat": {"max_tasks": 2, "interruptible": True, "default_queue": "chat-default"},
        "voice": {"max_tasks": 1, "interruptible": False, "default_queue": "voice-default"}}
QUEUES = {"chat-default": {"mrd": "chat", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15.0, "ttl": 300.0,
                           "steps": [{"expr": "true", "timeout": 0.0}], "ageing": 60.0},
          "voice-default": {"mrd": "voice", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15.0, "ttl": 300.0,
                            "steps": [{"expr": "true", "timeout": 0.0}], "ageing": 60.0}}


class Harness(FakeClock):
    """Time is virtual (a FakeClock): `advance(seconds)` runs the timers that fall due, in
    order, each followed by the messages it caused."""

    def __init__(self, agents: int = 4, mrds: dict[str, Any] | None = None, queues: dict[str, Any] | None = None,
                 attributes: dict[str, dict[str, Any]] | None = None):
        super().__init__()
        self.mrds = mrds or MRDS
        self.queues = queues or QUEUES
        self.directory = {f"a{i}": {"id": f"a{i}", "password": "pw", "extension": "",
                                    "attributes": (attributes or {}).get(f"a{i}", {})} for i in range(agents)}
        self.to_mre: deque[list[bytes]] = deque()
        self.to_comm: deque[list[bytes]] = deque()
        self.published: list[tuple[str, str, dict[str, Any]]] = []
        self.journal_fault = ""  # why the journal cannot write, as Comm's storage says it: "" when it can
        self.comm = self.new_comm()
        # the MRE's decisions are numbered and kept until confirmed, as the MRE process does
        self.decisions = DecisionStream(lambda t, b: self.to_comm.append(codec.encode(t, b)), self.call_later,
                                     clock=self.clock)
        self.mre = Engine(self.mrds, self.decisions.emit, queues=self.queues,
                          directory=self.directory, clock=self.clock, call_later=self.call_later)
        self.mre_handlers = {"AgentState": self.mre.on_agent_state, "NewTask": self.mre.on_new_task,
                             "TaskState": self.mre.on_task_state, "Transfer": self.mre.on_transfer,
                             "Conference": self.mre.on_conference, "Snapshot": self.on_snapshot,
                             "Confirm": lambda body: self.decisions.confirm(body["Decisions"], body["Through"])}
        self.sync()

    def sync(self) -> None:
        """Comm sends the MRE a snapshot, as a Comm process does when it starts: the MRE
        rebuilds its view and numbers its decisions on the stream the snapshot names."""
        self.comm.out.to_mre("Snapshot", self.comm.snapshot())
        self.pump()

    def on_snapshot(self, body: dict[str, Any]) -> None:
        self.decisions.reset(body.get("Decisions"))
        self.mre.on_snapshot(body)

    def new_comm(self, saved: CommState | None = None, gc_send: Any = None, stream: str = "s1") -> CommCore:
        """A Comm (e.g. one restarted from its journal's `saved` state); `gc_send` takes
        the commands it pushes to a Generic Connector, when there is one."""
        return CommCore(self.directory, self.mrds, send_event=self.on_event,
                        send_mre=self.to_mre.append, stream=stream, queues=self.queues,
                        call_later=self.call_later, clock=self.clock, saved=saved, gc_send=gc_send,
                        gc_destination="comm.1", unavailable=lambda: self.journal_fault)

    def on_event(self, frames: list[bytes]) -> None:
        topic, type, raw = frames
        self.published.append((topic.rstrip(b"\0").decode(), type.decode(), orjson.loads(raw)))

    def after_timer(self) -> None:
        self.pump()   # what a timer sent is delivered before the next one runs

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
                self.comm.reports[type](body)
            for confirm in self.comm.gate.confirmations():  # as the server's timer sends them
                self.to_mre.append(codec.encode("Confirm", confirm))
        raise AssertionError("Comm and the MRE keep sending each other messages: a livelock")

    @staticmethod
    def from_desk(body: dict[str, Any]) -> dict[str, Any]:
        """A request as the acting agent's own desk (`desk-<agent>`) sends it, unless it says
        who sends it: a ReplyTo of its own, or `ReplyTo: None` for none at all."""
        if "ReplyTo" in body:
            return {k: v for k, v in body.items() if not (k == "ReplyTo" and v is None)}
        agent = next((body[k] for k in AGENT_KEYS if isinstance(body.get(k), str)), None)
        return {**body, "ReplyTo": f"desk-{agent}"} if agent else body

    def send(self, type: str, body: dict[str, Any]) -> None:
        """A Chat Server's request, through the dispatcher: a refusal is published as Error."""
        body = self.from_desk(body)
        try:
            self.comm.request(type, body)
        except WireError as err:
            err.type = err.type or type
            self.comm.refuse(err, body)
        self.pump()

    def apply(self, type: str, body: dict[str, Any]) -> None:
        """Apply a request directly: a refusal raises WireError."""
        self.comm.requests[type].apply(self.from_desk(body))  # type: ignore[misc]
        self.pump()

    def login(self, agent: str, ready: bool = True, mrd: str = "chat") -> None:
        self.send("Connect", {"AgentId": agent, "Password": "pw", "Destination": f"desk-{agent}"})
        self.send("Login", {"AgentId": agent, "Password": "pw", "Mrd": mrd})
        if ready:
            self.send("AgentState", {"AgentId": agent, "State": "READY", "Mrd": mrd})

    def task(self, mrd: str = "chat", client: str = "c", **params: Any) -> str:
        self.send("Task", {"Mrd": mrd, "ClientUniqueId": client, "ReplyTo": "web",
                              "params": [[k, v] for k, v in params.items()]})
        return next(b["TaskId"] for _, t, b in reversed(self.published) if t == "TaskState" and b["State"] == "QUEUED")

    def published_of(self, type: str, **fields: Any) -> list[dict[str, Any]]:
        return [b for _, t, b in self.published if t == type and all(b.get(k) == v for k, v in fields.items())]

    def state(self, agent: str, mrd: str = "chat") -> str:
        return self.comm.agents.sessions[agent].mrds[mrd].state

    def offer_of(self, agent: str, mrd: str = "chat") -> str | None:
        return self.comm.agents.sessions[agent].mrds[mrd].offer
