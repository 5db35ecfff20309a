"""Agent sessions and their states per MRD: the only owner of `Session` and `Presence`.

An agent's state on an MRD is derived from what it asked for (`wants`) and what it holds
(an offer, accepted tasks, a call on a non-interruptible MRD, a silent desk), so it can
never disagree with its tasks (`derive`). Every change goes through a method here, which
marks the agent dirty: the journal writes exactly the agents marked.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from wire import passwords, states as S
from wire.codec import WireError

from .streams import Streams
from .state import Presence, Session

_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds. Every state change carries one, so the date part is
    formatted once a second (datetime.isoformat was 7 % of Comm's time under load)."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{int((now - second) * 1000):03d}Z"


STARTED = utc_now()  # when this Comm started: the earliest state change it can speak of


def password_matches(password: Any, entry: dict[str, Any]) -> bool:
    """Against the directory's hash (what a topology.json holds) or, in tests, a plain one."""
    if "password_hash" in entry:
        return passwords.verify(password, entry["password_hash"])
    return password == entry.get("password")


def state_body(presence: Presence) -> dict[str, Any]:
    """An agent's state on one MRD as the Chat Servers hear it (AgentState, #3 + time). An
    agent never logged in on it has been LOGOUT at least since this Comm started: that is
    its StateChangeTime (ISO 8601 as protocol.md says, never "")."""
    return {"AgentId": presence.agent_id, "State": presence.state, "Mrd": presence.mrd,
            "ReasonCode": presence.reason, "StateChangeTime": presence.changed or STARTED}


class Agents:
    def __init__(self, directory: dict[str, dict[str, Any]], mrds: dict[str, dict[str, Any]], out: Streams):
        self.directory = directory
        self.mrds = mrds
        self.out = out
        # set by whoever puts the owners together: what only the tasks and the desks know
        self.wrapping_up: Callable[[str], bool] = lambda task_id: False   # task id -> in WRAP_UP?
        self.desk_lost: Callable[[str], bool] = lambda destination: False  # destination -> gone silent?
        self.load({})

    def load(self, sessions: dict[str, Session]) -> None:
        """What the journal holds (at the start, and again after a write was undone)."""
        self.sessions = sessions
        self.dirty: set[str] = set()        # agents changed since the journal last wrote

    # lookups ----------------------------------------------------------------------------
    def session(self, agent_id: str, field: str = "AgentId") -> Session:
        session = self.sessions.get(agent_id)
        if session is None:
            raise WireError(S.INVALID_STATE, f"agent {agent_id} has no session: send Connect first", field=field)
        return session

    def presence(self, agent_id: str, mrd: str, field: str = "AgentId") -> Presence:
        presence = self.session(agent_id, field).mrds.get(mrd)
        if presence is None or presence.state == S.LOGOUT:
            raise WireError(S.INVALID_STATE, f"agent {agent_id} is not logged in on MRD {mrd}", field=field)
        return presence

    def find(self, agent_id: str | None, mrd: str) -> Presence | None:
        session = self.sessions.get(agent_id) if agent_id else None
        return session.mrds.get(mrd) if session else None

    def mrd(self, name: str, field: str) -> dict[str, Any]:
        mrd = self.mrds.get(name)
        if mrd is None:
            raise WireError(S.NOT_FOUND, f"no MRD named {name!r} (known: {', '.join(self.mrds)})", field=field)
        return mrd

    def destination(self, agent_id: str | None) -> str | None:
        session = self.sessions.get(agent_id) if agent_id else None
        return session.destination if session else None

    def at_desk(self, destination: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.destination == destination]

    def check_password(self, agent_id: str, password: str) -> dict[str, Any]:
        entry = self.directory.get(agent_id)
        if entry is None or not password_matches(password, entry):
            raise WireError(S.AUTHORIZATION_FAILURE, "unknown agent or wrong password", field="Password")
        return entry

    def can_take(self, presence: Presence) -> bool:
        limit = self.mrds[presence.mrd]["max_tasks"]
        return presence.state in S.ROUTABLE and len(presence.tasks) + (presence.offer is not None) < limit

    def cannot_take(self, presence: Presence | None, agent_id: str, mrd: str) -> tuple[str, str]:
        """Why an agent cannot be offered a task now, as (kind, words); ("", "") when it can."""
        if presence is None:
            return "not_logged_in", f"{agent_id} is not logged in on {mrd}"
        if presence.offer is not None:
            return "offer_pending", f"{agent_id} has {presence.offer} on offer"
        if presence.state not in S.ROUTABLE:
            return "not_routable", f"{agent_id} is {presence.state}"
        limit = self.mrds[mrd]["max_tasks"]
        if len(presence.tasks) >= limit:
            return "at_limit", f"{agent_id} holds {len(presence.tasks)} tasks, its limit"
        return "", ""

    # changes: each marks the agent for the journal ------------------------------------
    def connect(self, agent_id: str, destination: str, extension: str) -> Session:
        session = self.sessions.get(agent_id)
        if session is None:
            session = self.sessions[agent_id] = Session(agent_id, destination)
        session.destination, session.extension = destination, extension
        self.dirty.add(agent_id)
        return session

    def join(self, agent_id: str, mrd: str, *, external: bool = False) -> Presence:
        """The agent's presence on `mrd`, made (logged out) if it has none."""
        session = self.sessions[agent_id]
        presence = session.mrds.get(mrd)
        if presence is None:
            presence = session.mrds[mrd] = Presence(mrd, agent_id, external=external)
            self.dirty.add(agent_id)
        return presence

    def want(self, presence: Presence, wants: str, reason: str | None = None) -> None:
        presence.wants = wants
        if reason is not None:
            presence.reason = reason
        self.dirty.add(presence.agent_id)

    def offer(self, presence: Presence, task_id: str | None) -> None:
        presence.offer = task_id
        self.dirty.add(presence.agent_id)

    def hold(self, presence: Presence, task_id: str) -> None:
        if presence.offer == task_id:
            presence.offer = None
        presence.tasks.add(task_id)
        self.dirty.add(presence.agent_id)

    def release(self, agent_id: str, mrd: str, task_id: str) -> None:
        """The agent no longer holds nor is offered the task."""
        presence = self.find(agent_id, mrd)
        if presence is not None:
            presence.tasks.discard(task_id)
            if presence.offer == task_id:
                presence.offer = None
            self.dirty.add(agent_id)

    def begin_login(self, presence: Presence) -> None:
        """LOGIN is transient (1.3): `refresh` moves the agent on to NOT_READY (or INTERRUPTED)."""
        presence.wants, presence.state = S.NOT_READY, S.LOGIN
        self.dirty.add(presence.agent_id)

    def set_voice(self, presence: Presence, on_call: bool) -> None:
        presence.external, presence.on_call = True, on_call
        self.dirty.add(presence.agent_id)

    def move(self, presence: Presence, state: str, reason: str | None = None) -> None:
        """Set a state and tell the agent's Chat Server and the MRE. A move between two
        routable states (READY, RESERVED, ACTIVE, BUSY: the ones a task's offer, acceptance
        and end make) is not sent to the MRE: whether such an agent can take a task depends
        only on its offer and tasks, which the MRE follows from the tasks themselves. Three
        messages of a lifecycle's six to the MRE carried nothing it reads."""
        told_mre = not (presence.state in S.ROUTABLE and state in S.ROUTABLE)
        presence.state = state
        if reason is not None:
            presence.reason = reason
        presence.changed = utc_now()
        agent_id = presence.agent_id
        self.dirty.add(agent_id)
        dest = self.destination(agent_id)
        if dest:
            self.out.publish(dest, "AgentState", state_body(presence))
        if told_mre:
            self.out.to_mre("AgentState", {"AgentId": agent_id, "State": state, "MRD": presence.mrd,
                                           "ReasonCode": presence.reason, "StateChangeTime": presence.changed})

    # derived states -----------------------------------------------------------------------
    def derive(self, presence: Presence) -> str:
        """The state an agent is in, given what it asked for and what it holds."""
        if presence.state == S.LOGOUT or presence.external:
            return presence.state
        if self.desk_lost(self.sessions[presence.agent_id].destination):
            return S.UNKNOWN  # its desktop's Chat Server has gone silent
        if self.interrupted(presence):
            return S.INTERRUPTED
        if presence.offer is not None:
            return S.RESERVED
        if presence.tasks:
            if presence.wants == S.NOT_READY:
                return S.PENDING_NOT_READY
            if all(self.wrapping_up(task_id) for task_id in presence.tasks):
                return S.WORK_READY
            if len(presence.tasks) >= self.mrds[presence.mrd]["max_tasks"]:
                return S.BUSY
            return S.ACTIVE
        return S.NOT_READY if presence.wants == S.NOT_READY else S.READY

    def derive_without_offer(self, presence: Presence) -> str:
        offer, presence.offer = presence.offer, None
        try:
            return self.derive(presence)
        finally:
            presence.offer = offer

    def interrupted(self, presence: Presence) -> bool:
        """Held by a task of a non-interruptible MRD (a call) while on an interruptible one."""
        if not self.mrds[presence.mrd]["interruptible"]:
            return False
        session = self.sessions.get(presence.agent_id)
        if session is None or len(session.mrds) < 2:  # the usual case, asked on every state change
            return False
        return any(
            not self.mrds[other.mrd]["interruptible"] and (other.tasks or other.offer is not None or other.on_call)
            for other in session.mrds.values() if other is not presence and other.state != S.LOGOUT)

    def refresh(self, agent_id: str, mrd: str) -> bool:
        """Publish the agent's state on `mrd` if it changed; a non-interruptible MRD's change
        may interrupt (or release) the agent's other MRDs. Returns whether it changed."""
        session = self.sessions.get(agent_id)
        presence = session.mrds.get(mrd) if session else None
        if presence is None:
            return False
        state = self.derive(presence)
        if state == presence.state:
            return False
        self.move(presence, state)
        if not self.mrds[mrd]["interruptible"]:
            self.refresh_others(agent_id, mrd)
        return True

    def refresh_others(self, agent_id: str, mrd: str) -> None:
        for other in list(self.sessions[agent_id].mrds):
            if other != mrd:
                self.refresh(agent_id, other)

    def refresh_all(self, agent_id: str) -> None:
        for mrd in list(self.sessions[agent_id].mrds):
            self.refresh(agent_id, mrd)

    def refresh_desk(self, destination: str) -> None:
        for session in self.at_desk(destination):
            self.refresh_all(session.agent_id)

    def team(self, limit: int) -> dict[str, Any]:
        """For an operator (the web console's team view, over the control channel): every
        logged-in agent, in directory order, at most `limit`: where it is connected, and on
        each MRD it is logged in on its state, reason code, since when, tasks in hand and
        the task on offer. A walk of the directory: asked a second, not per message."""
        rows, total = [], 0
        for agent_id in self.directory:
            session = self.sessions.get(agent_id)
            if session is None or all(p.state == S.LOGOUT for p in session.mrds.values()):
                continue
            total += 1
            if len(rows) < limit:
                rows.append({"AgentId": agent_id, "Destination": session.destination, "Mrds": {
                    mrd: {"State": p.state, "ReasonCode": p.reason, "StateChangeTime": p.changed or STARTED,
                          "Tasks": len(p.tasks), "Offer": p.offer}
                    for mrd, p in session.mrds.items() if p.state != S.LOGOUT}})
        return {"agents": rows, "total": total, "truncated": total > len(rows)}

    def stats(self) -> dict[str, Any]:
        # MRD -> agent state -> how many: every MRD and state, zero included
        by_state = {mrd: dict.fromkeys(S.AGENT_STATES, 0) for mrd in self.mrds}
        logged_in = 0
        for session in self.sessions.values():
            logged_in += any(p.state != S.LOGOUT for p in session.mrds.values())
            for mrd, presence in session.mrds.items():
                states = by_state.setdefault(mrd, {})
                states[presence.state] = states.get(presence.state, 0) + 1
        return {"agents_connected": len(self.sessions), "agents_logged_in": logged_in, "agents_by_state": by_state}
