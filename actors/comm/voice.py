"""The voice bridge: Comm's link to the Generic Connector and its agents' voice states.

Comm is a GC client like any other (protocol.md 2): it says `Hello` until the GC's `System`
answer arrives on its topic (until then what the GC publishes to it could be lost,
zeromq-rules 7), keeps voice commands in a backlog meanwhile, beats every second, and logs
its contact-centre agents (those with an extension) into voice when they connect, and again
when the GC restarts or the voice side comes back. A voice state from the GC becomes the
agent's `voice` MRD state; a call holds its interruptible MRDs INTERRUPTED (2.5).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from wire import gc as gc_wire, states as S, voice as V
from wire.codec import WireError

from .agents import Agents
from .state import Presence, Session

log = logging.getLogger("mroute.comm")

VOICE_MRD = "voice"
# The voice side's agent states (protocol.md 2.4) as states of the voice MRD (1.3).
VOICE_STATES = {V.LOGOUT: S.LOGOUT, V.NOT_READY: S.NOT_READY, V.READY: S.READY, V.RESERVED: S.RESERVED,
                V.RESERVED_OUTBOUND: S.RESERVED, V.RESERVED_OUTBOUND_PREVIEW: S.RESERVED, V.TALKING: S.BUSY,
                V.HOLD: S.BUSY, V.WORK: S.WORK_READY, V.WORK_READY: S.WORK_READY, V.UNKNOWN: S.UNKNOWN}
BACKLOG = 10_000       # voice commands kept while the GC has not answered Hello yet
HELLO_EVERY = 0.05


class VoiceBridge:
    def __init__(self, agents: Agents, send: Callable[[list[bytes]], None] | None, destination: str,
                 call_later: Callable[..., Any] | None, unavailable: Callable[[], str] = lambda: ""):
        self.agents = agents
        self.unavailable = unavailable    # why nothing may change now (the journal cannot write), or ""
        self.missed = False               # events were left meanwhile: `caught_up` asks for them again
        self.deferred = 0                 # events left so
        self.send = send                  # pushes a command to the GC; None: no GC runs
        self.destination = destination    # our topic on the GC's event stream
        self.call_later = call_later
        self.live = False                 # the GC answered our Hello: our subscription is confirmed
        self.epoch: str | None = None
        self.status: str | None = None
        self.backlog: list[list[bytes]] = []
        self.passwords: dict[str, str] = {}  # what agents gave at Connect, for the GC's login; never journaled

    @property
    def available(self) -> bool:
        return self.send is not None and VOICE_MRD in self.agents.mrds

    def start(self) -> None:
        if self.send is not None:
            self.hello()

    def hello(self) -> None:
        if not self.live and self.send is not None:
            self.send(gc_wire.frames("Hello", self.destination))
            if self.call_later is not None:
                self.call_later(HELLO_EVERY, self.hello)

    def beat(self) -> None:
        if self.live and self.send is not None:
            self.send(gc_wire.frames("Beat", self.destination))

    def command(self, name: str, agent_id: str, *params: str) -> None:
        if self.send is None:
            return
        frames = gc_wire.frames(name, agent_id, *params)
        if self.live:
            self.send(frames)
        elif len(self.backlog) < BACKLOG:
            self.backlog.append(frames)

    def went_live(self) -> None:
        self.live = True
        for frames in self.backlog:
            self.send(frames)  # type: ignore[misc]
        self.backlog.clear()

    # events from the GC (its `GCEvents` stream, our topic) ----------------------------------
    def event(self, type: str, event: dict[str, Any]) -> None:
        """An event of the GC's on our topic. We act on State, System and Error (the others,
        AgentInfo, Dialog, ..., are for an agent's own desk, not for routing). While nothing
        may change it is counted and left: `caught_up` asks the GC again for every voice
        agent's state."""
        if type not in gc_wire.EVENT_TYPES:
            raise WireError(S.BAD_MESSAGE, f"comm does not handle {type} on GCEvents", type=type)
        if self.unavailable():
            self.deferred += 1
            self.missed = True
            return
        if not self.live:  # anything on our topic confirms the subscription
            self.went_live()
        if type == "State":
            self.on_state(event)
        elif type == "System":
            self.on_system(event)
        elif type == "Error":
            self.on_error(event)

    def caught_up(self) -> None:
        """The journal writes again: ask the GC again for the voice states of the events left
        meanwhile (a Login of a logged-in agent answers its State)."""
        if self.missed:
            self.missed = False
            self.login_all()

    def on_system(self, event: dict[str, Any]) -> None:
        """A GC that restarted knows none of our agents: log the voice agents in again."""
        epoch, status = event.get("epoch"), event.get("status")
        if self.epoch is not None and epoch != self.epoch:
            log.warning("the GC restarted (epoch %s -> %s): logging voice agents in again", self.epoch, epoch)
            self.login_all()
        elif self.status == V.OUT_OF_SERVICE and status == V.IN_SERVICE:
            log.info("the voice side is back: logging voice agents in again")
            self.login_all()
        self.epoch, self.status = epoch, status

    def on_error(self, event: dict[str, Any]) -> None:
        log.warning("GC refused %s: %s %s", event.get("command"), event.get("code"), event.get("message"))

    def on_state(self, event: dict[str, Any]) -> None:
        agent_id, voice_state = event.get("agentId"), event.get("state")
        session = self.agents.sessions.get(agent_id) if isinstance(agent_id, str) else None
        state = VOICE_STATES.get(voice_state) if isinstance(voice_state, str) else None
        if session is None or state is None or VOICE_MRD not in self.agents.mrds:
            return
        presence = self.agents.join(session.agent_id, VOICE_MRD, external=True)
        on_call = voice_state in V.ON_CALL
        changed = on_call != presence.on_call
        if changed or not presence.external:
            self.agents.set_voice(presence, on_call)
        reason = str(event.get("reasonCode") or "")
        if state != presence.state or reason != presence.reason:
            self.agents.move(presence, state, reason)
            changed = True
        if changed:
            self.agents.refresh_others(session.agent_id, VOICE_MRD)

    # agents' voice logins and requests -----------------------------------------------------
    def remember(self, agent_id: str, password: str) -> None:
        self.passwords[agent_id] = password

    def login(self, session: Session) -> None:
        """A contact-centre agent (one with an extension) is logged into voice through the GC."""
        if not (session.extension and self.available):
            return
        password = self.passwords.get(session.agent_id)
        if password is None:  # a Comm restarted from its journal has not heard it since
            log.warning("cannot log %s into voice: its password has not been given since Comm started",
                        session.agent_id)
            voice = session.mrds.get(VOICE_MRD)
            if voice is not None and voice.state != S.LOGOUT:  # not on the phone any more, as far as we know
                self.agents.set_voice(voice, False)
                self.agents.move(voice, S.LOGOUT, "")
                self.agents.refresh_others(session.agent_id, VOICE_MRD)
            return
        self.command("Connect", session.agent_id, self.destination, password)
        self.command("Login", session.agent_id, password, session.extension)

    def login_all(self) -> None:
        for session in self.agents.sessions.values():
            self.login(session)

    def request(self, presence: Presence, target: str, reason: str) -> None:
        """An agent's request on the voice MRD goes to the voice side, which answers with State."""
        if self.send is None:
            raise WireError(S.INVALID_STATE, "no Generic Connector runs: voice is not available", field="Mrd")
        agent_id = presence.agent_id
        if target == S.READY:
            self.command("MakeReady", agent_id)
        elif target == S.NOT_READY:
            self.command(*(("MakeNotReadyWithReason", agent_id, reason) if reason else ("MakeNotReady", agent_id)))
        else:  # LOGOUT is allowed from any state (1.3): the voice side's abrupt logout is that
            self.command("AbruptDisconnect", agent_id)

