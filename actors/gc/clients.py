"""The GC's clients and what it tells them of itself (protocol.md 2, System in 2.3): a
client is a destination that said Hello, Beat or Connect lately, and one silent for longer
than `client_timeout` is forgotten; whether the voice side is in service; and the GC's
`epoch`, which changes when it restarts (clients then log their agents in again)."""

from __future__ import annotations

import time
from typing import Any, Callable

from wire import gc as G, voice as V

from .agents import Agents, VoiceAgent


class Clients:
    def __init__(self, agents: Agents, emit: Callable[[str, dict[str, Any]], None], clock: Callable[[], float],
                 client_timeout: float):
        self.agents = agents
        self.emit = emit
        self.clock = clock
        self.client_timeout = client_timeout
        self.last_heard: dict[str, float] = {}   # destination -> last Hello, Beat or Connect
        self.forgotten = 0
        self.in_service = True
        self.epoch = format(time.time_ns() // 1_000_000, "x")

    def system(self) -> dict[str, Any]:
        # Ours: `epoch` changes when the GC restarts (clients log their agents in again), and
        # `clientTimeout` says how long a client may stay silent (clients Beat well within it).
        return {"type": "System", "status": V.IN_SERVICE if self.in_service else V.OUT_OF_SERVICE,
                "epoch": self.epoch, "clientTimeout": self.client_timeout}

    def hello(self, destination: str) -> None:
        """Hello and Beat: the client is alive, and hears the System."""
        self.heard_from(destination)
        self.emit(destination, self.system())

    def connect(self, agent: VoiceAgent, args: dict[str, str]) -> None:
        """Connect: the client hears the agent's events from now on."""
        if not args.get("password"):
            raise G.CommandError(G.MISSING_PASSWORD, "Connect takes <client_destination>,<password>", "Connect")
        if not agent.password_matches(args["password"]):
            raise G.CommandError(G.AUTHORIZATION_FAILURE, "wrong password", "Connect")
        self.forget_silent()
        self.agents.add_client(agent, args["client_destination"])
        self.heard_from(args["client_destination"])

    def heard_from(self, destination: str) -> None:
        self.last_heard[destination] = self.clock()

    def forget_silent(self) -> None:
        """A client that has not said Hello, Beat or Connect for a while is gone."""
        now = self.clock()
        gone = {d for d, seen in self.last_heard.items() if now - seen > self.client_timeout}
        for dest in gone:
            del self.last_heard[dest]
        self.forgotten += len(gone)
        self.agents.forget_clients(gone)

    def set_in_service(self, up: bool) -> bool:
        """Whether that changed anything: if so, every client has heard the new System."""
        if up == self.in_service:
            return False
        self.in_service = up
        for dest in self.last_heard:
            self.emit(dest, self.system())
        return True
