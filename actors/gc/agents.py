"""The voice agents and their states (protocol.md 2.4), the one owner of every VoiceAgent's
fields: an agent's state and who hears it (its clients, the supervisors watching its team),
what it asks for during a call (its pendingState), where a call takes it and where it goes
when the call ends, its wrap-up timer, and its recording.

It knows nothing of calls: dialogs.py says when one rings or is answered (`on_call`) and
what the agent's parts in its calls are when one of them changes (`after_call`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from wire import gc as G, passwords, voice as V

from .refusals import require


def stamp() -> str:
    """Now, as State and Dialog events say when something changed (protocol.md 2.3)."""
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class VoiceAgent:
    agent_id: str
    password: str                    # its hash (from topology.json), or in tests the password itself
    first: str
    last: str
    extension: str
    team: str
    supervisor: bool
    state: str = V.LOGOUT
    reason: str = ""
    pending: str = ""                 # the state asked for during a call, taken when it ends
    before_call: str = V.NOT_READY    # the state to return to when a call ends
    changed: str = ""
    available_since: float = 0.0
    recording: str = "RESUMED"
    destinations: dict[str, None] = field(default_factory=dict)  # its clients (they expire unheard)
    watching_teams: set[str] = field(default_factory=set)
    wrap_timer: Any = None

    def password_matches(self, given: str) -> bool:
        return passwords.verify(given, self.password) if passwords.is_hash(self.password) else given == self.password


class Agents:
    def __init__(self, directory: list[dict[str, Any]], emit: Callable[[str, dict[str, Any]], None], *,
                 clock: Callable[[], float], call_later: Callable[..., Any], wrap_up: float, licenses: int):
        self.emit = emit                  # (client destination, event)
        self.clock = clock
        self.call_later = call_later
        self.wrap_up = wrap_up            # s of WORK after a call; 0: none
        self.licenses = licenses          # agents logged in at once, at most
        self.by_id: dict[str, VoiceAgent] = {}
        self.by_extension: dict[str, VoiceAgent] = {}
        for entry in directory:
            if not entry.get("extension"):
                continue  # a chat-only agent: no voice
            first, _, last = str(entry.get("name") or entry["id"]).partition(" ")
            agent = VoiceAgent(entry["id"], entry.get("password_hash") or entry["password"], first, last,
                               str(entry["extension"]), entry.get("team") or "default", bool(entry.get("supervisor")))
            self.by_id[agent.agent_id] = agent
            self.by_extension[agent.extension] = agent
        # Set by the centre: an agent READY may take a call waiting in a queue (acd.py).
        self.became_ready: Callable[[], None] = lambda: None

    def logged_in(self) -> list[VoiceAgent]:
        return [a for a in self.by_id.values() if a.state != V.LOGOUT]

    # who hears an agent ------------------------------------------------------------------------
    def tell(self, agent: VoiceAgent, event: dict[str, Any]) -> None:
        for dest in agent.destinations:
            self.emit(dest, event)

    def add_client(self, agent: VoiceAgent, destination: str) -> None:
        agent.destinations[destination] = None

    def forget_clients(self, gone: set[str]) -> None:
        for agent in self.by_id.values():
            for dest in gone & set(agent.destinations):
                del agent.destinations[dest]

    def watch(self, supervisor: VoiceAgent, team: str) -> None:
        """The supervisor hears the State of every agent of the team from now on."""
        supervisor.watching_teams.add(team)

    def state_event(self, agent: VoiceAgent) -> dict[str, Any]:
        return {"type": "State", "agentId": agent.agent_id, "state": agent.state, "reasonCode": agent.reason,
                "stateChangeTimeString": "", "pendingState": agent.pending, "stateChangeTime": agent.changed}

    def info_event(self, agent: VoiceAgent) -> dict[str, Any]:
        teams = sorted({a.team for a in self.by_id.values()}) if agent.supervisor else []
        return {"type": "AgentInfo", "agentId": agent.agent_id, "firstName": agent.first, "lastName": agent.last,
                "supervisor": agent.supervisor, "wrapUpOnIncoming": "REQUIRED" if self.wrap_up else "",
                "team": {"id": agent.team, "name": agent.team}, "teams": [{"id": t, "name": t} for t in teams]}

    # moves -------------------------------------------------------------------------------------
    def set_state(self, agent: VoiceAgent, state: str, reason: str | None = None) -> None:
        if state == V.READY and agent.state != V.READY:
            agent.available_since = self.clock()
        agent.state = state
        if reason is not None:
            agent.reason = reason
        if state not in (V.NOT_READY, V.LOGOUT):
            agent.reason = ""
        agent.changed = stamp()
        event = self.state_event(agent)
        self.tell(agent, event)
        for watcher in self.by_id.values():  # supervisors watching the team
            if agent.team in watcher.watching_teams and watcher is not agent:
                self.tell(watcher, event)
        if state == V.READY:
            self.became_ready()

    def log_in(self, agent: VoiceAgent) -> None:
        """A logged-out agent comes in NOT_READY, licenses permitting; one logged in already
        hears its State again. Either hears its AgentInfo."""
        if agent.state == V.LOGOUT:
            if len(self.logged_in()) >= self.licenses:
                raise G.CommandError(G.LICENSES_EXCEEDED, f"all {self.licenses} licenses are in use", "Login")
            agent.pending = ""
            self.set_state(agent, V.NOT_READY, "")
        else:
            self.tell(agent, self.state_event(agent))
        self.tell(agent, self.info_event(agent))

    def log_out(self, agent: VoiceAgent, reason: str, end_calls: Callable[[VoiceAgent], None]) -> None:
        agent.state = V.LOGOUT  # first: ending its calls must not hand it a waiting one
        end_calls(agent)
        if agent.wrap_timer is not None:
            agent.wrap_timer.cancel()
        agent.pending = ""
        self.set_state(agent, V.LOGOUT, reason)

    def ask(self, agent: VoiceAgent, state: str, reason: str, command: str) -> None:
        """An agent's request: taken now, or kept as pendingState while a call holds it."""
        if agent.state in V.ON_CALL:
            agent.pending = state
            if reason:
                agent.reason = reason
            self.tell(agent, self.state_event(agent))
            return
        if state in V.WRAPPING_UP:
            require(agent.state in V.WRAPPING_UP, command, f"{state} is for wrap-up, not {agent.state}")
            self.set_state(agent, state)  # still wrapping up: the wrap-up timer stands
            return
        self.stop_wrap_up(agent)
        agent.pending = ""
        self.set_state(agent, state, reason if state == V.NOT_READY else "")

    def record(self, agent: VoiceAgent, status: str, command: str) -> None:
        require(agent.state in (V.TALKING, V.HOLD), command, f"{agent.agent_id} is not on a call")
        agent.recording = status
        self.tell(agent, {"type": "Recording", "agentId": agent.agent_id, "status": status})

    # calls -------------------------------------------------------------------------------------
    def on_call(self, agent: VoiceAgent, state: str) -> None:
        """A call rings for the agent, or it talks: what it was doing is kept for after."""
        if agent.state not in V.ON_CALL:
            agent.before_call = agent.state if agent.state in (V.READY, V.NOT_READY) else V.NOT_READY
            agent.pending = ""
        self.stop_wrap_up(agent)
        if agent.state != state:
            self.set_state(agent, state)

    def after_call(self, agent: VoiceAgent, parts: set[str]) -> None:
        """The state of an agent on a call from the states of its parts in its live calls:
        talking (or dialling) if one is active, ringing if one alerts, on hold if all are
        held; with none left, wrap-up, else what it asked for during the call, else where it
        was before."""
        if parts & {V.ACTIVE, V.INITIATED}:
            self.set_state(agent, V.TALKING)
            return
        if V.ALERTING in parts:
            self.set_state(agent, V.RESERVED)
            return
        if V.HELD in parts:
            self.set_state(agent, V.HOLD)
            return
        target = agent.pending or agent.before_call
        agent.pending = ""
        if self.wrap_up > 0 or target in V.WRAPPING_UP:
            wrap = target if target in V.WRAPPING_UP else (V.WORK_READY if target == V.READY else V.WORK)
            self.set_state(agent, wrap)
            if self.wrap_up > 0:
                agent.wrap_timer = self.call_later(self.wrap_up, self.wrap_up_ends, agent.agent_id)
            return
        self.set_state(agent, target)

    def wrap_up_ends(self, agent_id: str) -> None:
        agent = self.by_id[agent_id]
        agent.wrap_timer = None
        if agent.state in V.WRAPPING_UP:
            self.set_state(agent, V.READY if agent.state == V.WORK_READY else V.NOT_READY)

    def stop_wrap_up(self, agent: VoiceAgent) -> None:
        if agent.wrap_timer is not None:
            agent.wrap_timer.cancel()
            agent.wrap_timer = None
