"""The Generic Connector process: the GC command queue (PULL) and the event stream (PUB,
topic = the client's destination) in front of the simulated voice contact centre."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import zmq

from actors.runtime import Actor
from wire import codec, gc as G
from wire.catalogue import GC, GC_EVENTS
from wire.codec import WireError
from wire.kernel.settings import GcSettings

from .centre import VoiceCentre


UNPARSED = "?"   # the type under which a command that did not parse reaches its handler


@dataclass(frozen=True)
class Unparsed:
    who: str | None            # the id after '#', when there was one
    error: G.CommandError

    def refuse(self) -> None:
        raise self.error


class GenericConnector(Actor):
    role = "gc"

    def start(self) -> None:
        settings: GcSettings = self.config.settings  # type: ignore[assignment]
        self.events = self.socket(zmq.PUB, bind=self.config.endpoints[GC_EVENTS])
        commands = self.socket(zmq.PULL, bind=self.config.endpoints[GC], max_frame=64 * 1024)  # a command and its parameters
        self.voice = VoiceCentre(self.config.topology["agents"], settings, self.emit,
                                 call_later=self.loop.call_later)
        # a client that stopped beating is forgotten within half its timeout, not only when
        # another one connects
        self.loop.call_every(self.voice.clients.client_timeout / 2, self.voice.clients.forget_silent)
        self.rng = random.Random()
        self.callers = 0
        for queue, spec in settings.queues.items():
            if float((spec or {}).get("rate", 0)) > 0:
                self.loop.call_later(self.rng.expovariate(float(spec["rate"])), self.arrival, queue,
                                     float(spec["rate"]))
        handlers: dict[str, Any] = {spec.name: self.voice.handle for spec in G.COMMANDS.values()}
        handlers[UNPARSED] = Unparsed.refuse
        self.serve(GC, commands, handlers, decode=self.decode, refuse=self.refuse_command,
                   refusals=(G.CommandError,))

    def emit(self, destination: str, event: dict[str, Any]) -> None:
        self.send(self.events, G.event_frames(codec.topic(destination), event))

    @staticmethod
    def decode(frames: list[bytes]) -> tuple[str, G.Command | Unparsed]:
        try:
            command = G.parse(frames)
        except G.CommandError as err:   # refused by its handler, so that we know whom to tell
            return UNPARSED, Unparsed(G.addressee(frames), err)
        return command.spec.name, command

    def as_refusal(self, exc: Exception) -> WireError:
        if isinstance(exc, G.CommandError):
            return WireError(exc.code, exc.message, type=exc.command)
        return super().as_refusal(exc)

    def refuse_command(self, err: WireError, command: Any) -> None:
        self.refuse(err, {})
        who = command.who if isinstance(command, (G.Command, Unparsed)) else None
        reply_to = (command.args["client_destination"]
                    if isinstance(command, G.Command) and command.spec.name.lower() == "connect" else None)
        self.tell_error(who, G.CommandError(err.code, err.reason, err.type), reply_to)

    def tell_error(self, who: str | None, err: G.CommandError, reply_to: str | None = None) -> None:
        """To the clients of the agent the command named (even one that did not parse), else
        the destination a Connect named, else a client destination (Hello, Beat), else the
        unrouted topic."""
        agent = self.voice.agents.by_id.get(who) if who else None
        if agent is not None and agent.destinations:
            self.voice.agents.tell(agent, err.event())
        elif reply_to:
            self.emit(reply_to, err.event())
        elif who is not None and who in self.voice.clients.last_heard:
            self.emit(who, err.event())
        else:
            self.emit(codec.UNROUTED_ERRORS, err.event())

    def arrival(self, queue: str, rate: float) -> None:
        self.place_call(queue, "")
        self.loop.call_later(self.rng.expovariate(rate), self.arrival, queue, rate)

    def place_call(self, queue: str, ani: str) -> str:
        self.callers += 1
        return self.voice.acd.inbound(queue, ani or f"555{self.callers:04d}")

    def control_verbs(self) -> dict[str, Any]:
        def guarded(fn: Any) -> Any:
            def run(body: dict[str, Any]) -> dict[str, Any]:
                try:
                    return fn(body)
                except G.CommandError as err:
                    raise WireError(err.code, err.message)
            return run
        return {
            "call": guarded(lambda b: {"dialog": self.place_call(str(b.get("queue", "")), str(b.get("ani") or ""))}),
            "preview": guarded(lambda b: {"dialog": self.voice.preview.offer(str(b.get("agent")),
                                                                             str(b.get("number")))}),
            "service": guarded(lambda b: self.voice.set_in_service(bool(b.get("up"))) or
                               {"status": self.voice.clients.system()["status"]}),
        }

    def stats(self) -> dict[str, Any]:
        voice = self.voice
        return {**super().stats(), "agents_logged_in": len(voice.agents.logged_in()),
                "dialogs": len(voice.dialogs.by_id), "in_service": voice.clients.in_service,
                "clients": len(voice.clients.last_heard), "clients_forgotten": voice.clients.forgotten}
