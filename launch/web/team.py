"""The team view: every logged-in agent with its state on each MRD, tasks in hand, time in
state and reason code, as a supervisor's team view shows them (Finesse, Twilio Flex), live
on the `team` channel while a page listens (the Routing page's list, the desk's Transfer
choices, the Voice page's agents).

Comm, which owns the sessions, says it: its control verb `agents` (asked through the
supervisor, once a second while a page listens) lists the logged-in agents in directory
order, at most LIMIT, each with the desk it is connected through, and on each MRD its
state, reason code, StateChangeTime, tasks in hand and offer. Where an agent is (`desk`):
this console, a simulated Chat Server (an instance of a chat actor), or another client."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Awaitable, Callable

from ..topology import Topology
from .desk import WebDesk
from .hub import Hub

log = logging.getLogger("mroute.web")
LOOK_EVERY = 1.0
LIMIT = 1_000   # agents listed at most

Ask = Callable[..., Awaitable[dict[str, Any]]]


class Team:
    def __init__(self, topology: Topology, desk: WebDesk, hub: Hub, ask: Ask):
        self.topology = topology
        self.desk = desk
        self.hub = hub
        self.ask = ask                 # the supervisor's control channel (server.py)
        self.names = {agent["id"]: agent for agent in topology.agents[:100_000]}
        self.chat_actors = {name for name, spec in topology.actors.items() if spec["role"] == "chat"}
        self.answer: dict[str, Any] = {}
        self.heard = 0.0               # when Comm last answered (monotonic)

    async def run(self) -> None:
        while True:
            try:
                if self.hub.listening("team"):
                    await self.look()
                    self.hub.publish("team", self.view())
            except Exception:   # a look that goes wrong must not end the watching
                log.exception("web: the team view")
            await asyncio.sleep(LOOK_EVERY)

    async def look(self) -> None:
        try:
            self.answer = await self.ask("ask", {"role": "comm", "verb": "agents", "body": {"limit": LIMIT}},
                                         timeout=5.0)
            self.heard = time.monotonic()
        except Exception as exc:   # Comm not running, the supervisor stalled: said on the page
            log.debug("web: no team view now: %s", exc)

    def now(self) -> dict[str, Any]:
        """What a page that opens is shown: what Comm last said, unless it is old (nobody
        looked for a while, or Comm did not answer): then nothing, until the next look."""
        if time.monotonic() - self.heard > 5 * LOOK_EVERY:
            self.answer = {}
        return self.view()

    def view(self) -> dict[str, Any]:
        now = time.time()
        rows = []
        for row in self.answer.get("agents", []):
            agent_id = row["AgentId"]
            entry = self.names.get(agent_id, {})
            mrds = {}
            for mrd, m in row.get("Mrds", {}).items():
                since = parse_time(m.get("StateChangeTime"))
                mrds[mrd] = {"state": m["State"], "reason": m.get("ReasonCode") or "",
                             "for_s": None if since is None else max(0.0, round(now - since, 1)),
                             "tasks": m.get("Tasks", 0), "offer": m.get("Offer")}
            destination = row.get("Destination") or ""
            here = destination == self.desk.destination
            rows.append({"id": agent_id, "name": entry.get("name") or "", "extension": entry.get("extension") or "",
                         "here": here, "desk": destination,
                         "simulated": destination if destination.rpartition(".")[0] in self.chat_actors else None,
                         "mrds": mrds})
        total = self.answer.get("total", 0)
        return {"at": now, "mrds": list(self.topology.mrds), "agents": rows, "heard": bool(self.answer),
                "note": f"the first {len(rows)} of {total} logged in" if self.answer.get("truncated") else ""}


def parse_time(text: Any) -> float | None:
    """StateChangeTime (UTC, ISO 8601) -> seconds since the epoch."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
