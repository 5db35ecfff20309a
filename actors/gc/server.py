"""The Generic Connector process: the GC command queue (PULL) and the event stream (PUB,
topic = the client's destination) in front of the simulated voice contact centre."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import zmq

from actors.runtime import Actor
from wire import codec, gc as G
from wire.catalogue import GC, GC_EVENTS
from wire.codec import WireError
from wire.kernel.settings import GcSettings

from .callers import SettingError
from .centre import VoiceCentre


UNPARSED = "?"   # the type under which a command that did not parse reaches its handler


@dataclass(frozen=True)
class Unparsed:
    who: str | None            # the id after '#', when there was one
    error: G.CommandError

    def refuse(self) -> None:
        # a fresh one: raising the one this holds would make a cycle (its traceback holds
        # this frame, which holds it), garbage for the cycle collector at every bad command
        error = self.error
        raise G.CommandError(error.code, error.message, error.command)


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
        self.voice.callers.start()   # each voice queue's callers, at its rate
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
            # kept without its traceback: its frames lead back (f_back) to the one that will hold this
            return UNPARSED, Unparsed(G.addressee(frames), err.with_traceback(None))
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

    def set_load(self, body: dict[str, Any]) -> dict[str, Any]:
        """Change the voice queues' rates and callers' talk, and the phones' auto answer
        (callers.py); an empty body changes nothing. Answer with all of them, so that a load
        run can give them back."""
        try:
            return self.voice.callers.configure(body)
        except SettingError as exc:
            raise WireError("BAD_FIELD", str(exc), field=exc.key) from None

    def control_verbs(self) -> dict[str, Any]:
        def guarded(fn: Any) -> Any:
            def run(body: dict[str, Any]) -> dict[str, Any]:
                try:
                    return fn(body)
                except G.CommandError as err:
                    raise WireError(err.code, err.message)
            return run
        return {
            "call": guarded(lambda b: {"dialog": self.voice.callers.place(str(b.get("queue", "")),
                                                                          str(b.get("ani") or ""))}),
            "preview": guarded(lambda b: {"dialog": self.voice.preview.offer(str(b.get("agent")),
                                                                             str(b.get("number")))}),
            "service": guarded(lambda b: self.voice.set_in_service(bool(b.get("up"))) or
                               {"status": self.voice.clients.system()["status"]}),
            "load": self.set_load,
        }

    def stats(self) -> dict[str, Any]:
        voice = self.voice
        return {**super().stats(), "agents_logged_in": len(voice.agents.logged_in()),
                "dialogs": len(voice.dialogs.by_id), "in_service": voice.clients.in_service,
                "clients": len(voice.clients.last_heard), "clients_forgotten": voice.clients.forgotten,
                # the simulated callers (callers.py), by voice queue: what a load run's report counts
                "calls": voice.callers.stats()}
