"""The console's voice client: a Generic Connector client (protocol.md 2) for the agents
logged in at the console's desk who have an extension, so that the Voice page can show
their calls and answer and hang them up.

It says `Hello` until the GC's `System` comes back on its topic (the subscription is live),
beats well within the GC's client timeout, and connects each such agent with the password
given at the desk's login (`Connect#agent` with `destination,password`); the GC then sends
it the agent's `State` and `Dialog` events. Ready and Not ready in voice go through Comm
(AgentState on the voice MRD), as any desk's; the call itself is the GC's."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import orjson
import zmq
import zmq.asyncio

from wire import gc as gc_wire, voice as V
from wire.catalogue import GC, GC_EVENTS

from ..topology import Topology
from .hub import VERSIONS

log = logging.getLogger("mroute.web")
HELLO_EVERY = 0.2     # seconds between Hellos until the GC answers
BEAT_EVERY = 2.0      # the GC forgets a client silent for its clientTimeout (10 s by default)


class Phone:
    def __init__(self, topology: Topology, ctx: zmq.asyncio.Context, destination: str,
                 publish: Callable[[str, dict[str, Any]], None], here: Callable[[str], bool]):
        """`here(agent_id)`: whether the agent is logged in at the console's desk now (the
        page shows the calls of those only)."""
        self.publish = publish
        self.here = here
        self.destination = destination
        self.extensions = {a["id"]: str(a.get("extension") or "") for a in topology.agents}
        self.enabled = any(s["role"] == "gc" for s in topology.actors.values()) and GC in topology.endpoints
        self.passwords: dict[str, str] = {}          # agent -> password, in memory only
        self.agents: dict[str, dict[str, Any]] = {}  # agent -> {state, reason, calls: {dialog id: call}}
        self.error = ""
        self.epoch: str | None = None
        self.live = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []
        if self.enabled:   # (a plain socket sends at once or not at all, as the one client's)
            self.sync_ctx = zmq.Context()
            self.push = topology.data_socket(self.sync_ctx, zmq.PUSH, GC)
            self.push.setsockopt(zmq.IMMEDIATE, 1)
            self.sub = topology.data_socket(ctx, zmq.SUB, GC_EVENTS)
            self.sub.setsockopt(zmq.SUBSCRIBE, destination.encode() + b"\x00")

    def start(self) -> None:
        if self.enabled:
            self.tasks = [asyncio.create_task(self.receive()), asyncio.create_task(self.hello())]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.enabled:
            self.push.close(linger=0)
            self.sub.close(linger=0)
            self.sync_ctx.term()

    def send(self, name: str, who: str, *params: str) -> None:
        try:
            self.push.send_multipart(gc_wire.frames(name, who, *params), zmq.NOBLOCK)
        except zmq.Again:   # no GC to take it now: the page hears nothing back, and says so
            log.info("web phone: the GC is not reachable: %s not sent", name)

    async def hello(self) -> None:
        while True:
            if not self.live.is_set():
                self.send("Hello", self.destination)
                await asyncio.sleep(HELLO_EVERY)
            else:
                self.send("Beat", self.destination)
                await asyncio.sleep(BEAT_EVERY)

    # what the pages ask ----------------------------------------------------------------------
    def connect(self, agent_id: str, password: str) -> None:
        """An agent with an extension logged in at the desk: hear its voice events."""
        if not (self.enabled and self.extensions.get(agent_id)):
            return
        self.passwords[agent_id] = password
        self.agents.setdefault(agent_id, {"state": "", "reason": "", "calls": {}})
        if self.live.is_set():
            self.send("Connect", agent_id, self.destination, password)
            self.send("refresh", agent_id)   # its State, and a Dialog for each live call

    def call_action(self, agent_id: str, dialog_id: str, action: str) -> dict[str, Any]:
        command = {"answer": "AnswerCall", "hangup": "ReleaseCall"}.get(action)
        if command is None or agent_id not in self.agents:
            raise ValueError(f"no call action {action!r} for {agent_id!r} here (answer, hangup)")
        self.error = ""
        self.send(command, agent_id, dialog_id)   # the GC answers with a Dialog event (or an Error)
        return self.view()

    def view(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "live": self.live.is_set(), "error": self.error, "v": next(VERSIONS),
                "agents": {agent: {"extension": self.extensions.get(agent, ""), "state": a["state"],
                                   "reason": a["reason"], "calls": list(a["calls"].values())}
                           for agent, a in sorted(self.agents.items()) if self.here(agent)}}

    # what the GC says --------------------------------------------------------------------------
    async def receive(self) -> None:
        while True:
            frames = await self.sub.recv_multipart()
            try:
                self.take(orjson.loads(frames[-1]))
            except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as err:
                log.warning("web phone: an event it cannot read: %s", err)

    def take(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "System":   # (the answer to every Beat: news only when the GC is new)
            first = not self.live.is_set()
            self.live.set()
            if first or event.get("epoch") != self.epoch:   # a GC that restarted knows no client of ours
                for agent_id, password in self.passwords.items():
                    self.send("Connect", agent_id, self.destination, password)
                    self.send("refresh", agent_id)
            self.epoch = event.get("epoch")
            return
        if kind == "State" and event.get("agentId") in self.agents:
            agent = self.agents[event["agentId"]]
            agent["state"], agent["reason"] = event.get("state") or "", event.get("reasonCode") or ""
        elif kind == "Dialog":
            self.on_dialog(event["dialog"])
        elif kind == "Error":
            self.error = f"{event.get('command')}: {event.get('code')} {event.get('message')}"
        else:
            return
        self.publish("voice", self.view())

    def on_dialog(self, dialog: dict[str, Any]) -> None:
        for agent_id, agent in self.agents.items():
            mine = next((p for p in dialog.get("participants") or []
                         if p.get("mediaAddress") == self.extensions.get(agent_id)), None)
            if mine is None:
                continue
            if str(dialog.get("state")) in V.ENDED or str(mine.get("state")) in V.ENDED:  # (a list is no state)
                agent["calls"].pop(dialog["id"], None)
            else:
                agent["calls"][dialog["id"]] = {"id": dialog["id"], "from": dialog.get("fromAddress"),
                                                "to": dialog.get("toAddress"), "type": dialog.get("callType"),
                                                "state": mine.get("state"), "actions": mine.get("actions") or []}
