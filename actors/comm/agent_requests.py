"""What a Chat Server asks for its agents: Connect, Login and AgentState (protocol.md 1.1
#1-#3, states 1.3). Validation first, then the change, through the agents' and the tasks'
owners; the answer is the AgentState the change caused (see core.py)."""

from __future__ import annotations

import logging
from typing import Any

from wire import states as S
from wire.codec import WireError

from .agents import Agents, state_body
from .state import Presence, Session
from .tasks import Tasks
from .voice import VOICE_MRD, VoiceBridge

log = logging.getLogger("mroute.comm")


SESSION_MOVED = "SESSION_MOVED"   # ReasonCode (ours): the agent connected through another desk
TAKEOVER_POLICIES = ("move", "refuse")


def require_session_desk(session: Session, body: dict[str, Any]) -> None:
    """A desk changes only the agents whose session it holds (protocol.md 1.2, who may ask
    what): the sender is the request's ReplyTo, which core.request made sure of."""
    if body.get("ReplyTo") != session.destination:
        raise WireError(S.AUTHORIZATION_FAILURE, f"{session.agent_id} is connected through another desk: only "
                                                 f"that desk changes its state", field="ReplyTo")


class AgentRequests:
    def __init__(self, agents: Agents, tasks: Tasks, voice: VoiceBridge, session_takeover: str = "move"):
        self.agents = agents
        self.tasks = tasks
        self.voice = voice
        self.session_takeover = session_takeover   # a Connect from another desk: move the session, or refuse

    def connect(self, body: dict[str, Any]) -> None:
        agent_id, password = body["AgentId"], body["Password"]
        entry = self.agents.check_password(agent_id, password)
        if "," in password:  # it would split a voice command's parameters
            raise WireError(S.BAD_FIELD, "a password must not contain a comma", field="Password")
        self.voice.remember(agent_id, password)
        extension = body.get("Extension") or entry.get("extension", "")
        session = self.agents.sessions.get(agent_id)
        if session is None:
            session = self.agents.connect(agent_id, body["Destination"], extension)
        elif session.destination != body["Destination"] and self.live(session):
            self.take_over(session, body["Destination"])
        elif body.get("Reset") is True:
            # A desk process that starts afresh: whatever its agent held is not on any screen now.
            for presence in list(session.mrds.values()):
                if presence.state != S.LOGOUT and not presence.external:
                    self.logout(presence, S.AGENT_LOGOUT)
        self.agents.connect(agent_id, body["Destination"], extension)
        self.agents.refresh_all(agent_id)  # UNKNOWN no more if it comes back through a live desk
        self.voice.login(session)

    @staticmethod
    def live(session: Any) -> bool:
        return any(p.state != S.LOGOUT for p in session.mrds.values())

    def take_over(self, session: Any, new_desk: str) -> None:
        """A live agent connecting through another desk: refused, or moved with its states
        and tasks, the old desk told it has lost the agent (AgentState LOGOUT SESSION_MOVED)."""
        old_desk = session.destination
        if self.session_takeover == "refuse":
            raise WireError(S.INVALID_STATE, f"{session.agent_id} is logged in through {old_desk}: log out there "
                                             f"first (comm.session_takeover: refuse)", field="Destination")
        log.warning("%s moved from desk %s to %s", session.agent_id, old_desk, new_desk)
        for presence in session.mrds.values():
            if presence.state != S.LOGOUT:
                self.agents.out.publish(old_desk, "AgentState", {**state_body(presence), "State": S.LOGOUT,
                                                                 "ReasonCode": SESSION_MOVED})

    def login(self, body: dict[str, Any]) -> None:
        agent_id, mrd = body["AgentId"], body["Mrd"]
        session = self.agents.session(agent_id)
        require_session_desk(session, body)
        self.agents.check_password(agent_id, body["Password"])
        self.agents.mrd(mrd, "Mrd")
        if mrd == VOICE_MRD and self.voice.send is not None and session.extension:
            self.voice.login(session)  # the voice side owns it: its State comes back through us
            return
        presence = self.agents.join(agent_id, mrd)
        if presence.state != S.LOGOUT:  # logged in already: the answer says the state it is in
            return
        self.agents.begin_login(presence)
        self.agents.refresh(agent_id, mrd)  # NOT_READY, or INTERRUPTED when a call holds the agent

    def agent_state(self, body: dict[str, Any]) -> None:
        agent_id, target, mrd = body["AgentId"], body["State"], body["Mrd"]
        self.agents.mrd(mrd, "Mrd")
        if target not in S.AGENT_STATES:
            raise WireError(S.BAD_FIELD, f"{target!r} is not an agent state", field="State")
        if target not in S.AGENT_REQUESTABLE:
            raise WireError(S.INVALID_STATE, f"an agent may ask for NOT_READY, READY or LOGOUT, not {target}",
                            field="State")
        require_session_desk(self.agents.session(agent_id), body)
        presence = self.agents.presence(agent_id, mrd)
        reason = body.get("ReasonCode") or ""
        if presence.external:
            self.voice.request(presence, target, reason)
        elif target == S.LOGOUT:
            self.logout(presence, reason)
        elif target == S.NOT_READY:
            self.not_ready(presence, reason)
        else:
            self.ready(presence)

    def logout(self, presence: Presence, reason: str) -> None:
        # Tell the MRE the agent is gone before its tasks go back, so it cannot re-offer them to it.
        agent_id = presence.agent_id
        held = ([presence.offer] if presence.offer else []) + sorted(presence.tasks)
        self.agents.want(presence, S.NOT_READY)
        self.agents.move(presence, S.LOGOUT, reason)
        for task_id in held:
            self.tasks.give_back(self.tasks.live[task_id], agent_id, S.AGENT_LOGOUT)
        if not self.agents.mrds[presence.mrd]["interruptible"]:  # off the phone for good: release the others
            self.agents.refresh_others(agent_id, presence.mrd)

    def log_out_desk(self, destination: str) -> None:
        """A desk silent past the grace period: its agents out, their tasks back to the queues."""
        for session in self.agents.at_desk(destination):
            for presence in list(session.mrds.values()):
                if presence.state != S.LOGOUT and not presence.external:
                    self.logout(presence, S.AGENT_LOGOUT)

    def not_ready(self, presence: Presence, reason: str) -> None:
        target = S.PENDING_NOT_READY if presence.tasks else S.NOT_READY
        current = self.agents.derive_without_offer(presence) if presence.offer else presence.state
        if current == target:  # NOT_READY with another reason, or pending already
            self.agents.want(presence, S.NOT_READY)
            self.agents.move(presence, current, reason)
            return
        if not S.agent_move_allowed(current, target):
            raise WireError(S.INVALID_STATE, f"agent {presence.agent_id} is {presence.state}: cannot go {target}",
                            field="State")
        self.agents.want(presence, S.NOT_READY, reason)
        if presence.offer is not None:  # the agent declines what rings: it goes back to its queue
            self.tasks.requeue(self.tasks.live[presence.offer], S.RONA)
        self.agents.refresh(presence.agent_id, presence.mrd)

    def ready(self, presence: Presence) -> None:
        agent_id = presence.agent_id
        if presence.state == S.WORK_READY:  # wrap-up ends: its tasks close (a participant's part ends)
            self.agents.want(presence, S.READY)
            for task_id in sorted(presence.tasks):
                self.tasks.end_part(self.tasks.live[task_id], agent_id, S.DONE)
            self.agents.refresh(agent_id, presence.mrd)
            return
        if presence.state in S.ROUTABLE:  # routable already: the answer says so
            self.agents.want(presence, S.READY)
            return
        if not S.agent_move_allowed(presence.state, S.READY):
            raise WireError(S.INVALID_STATE, f"agent {agent_id} is {presence.state}: cannot go READY", field="State")
        self.agents.want(presence, S.READY, "")
        self.agents.refresh(agent_id, presence.mrd)  # still held (INTERRUPTED): the answer says so
