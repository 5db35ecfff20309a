"""What the Communication Server does with each message, without sockets.

`CommLogic` validates every request against `CommState`, applies it, and says what goes
out through two callables: `publish(destination, type, body)` to Chat Servers and
`to_mre(type, body)` to the routing engine. Refusals are raised as WireError and become
`Error` replies in the server. Agent states are derived from what an agent asked for and
what it holds (`derive`), so they can never disagree with its tasks.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from wire import passwords, states as S
from wire.catalogue import HEARTBEAT_INTERVAL, SESSION_TIMEOUT
from wire.codec import WireError, is_destination, params_dict
from wire.stats import Histogram

from .state import CommState, Presence, Session, Task

log = logging.getLogger("mroute.comm")

Publish = Callable[[str, str, dict[str, Any]], None]
ToMre = Callable[[str, dict[str, Any]], None]
CallLater = Callable[..., Any]

VOICE_MRD = "voice"
# The voice side's agent states (protocol.md 2.4) as states of the voice MRD (1.3).
VOICE_STATES = {"LOGOUT": S.LOGOUT, "NOT_READY": S.NOT_READY, "READY": S.READY, "RESERVED": S.RESERVED,
                "RESERVED_OUTBOUND": S.RESERVED, "RESERVED_OUTBOUND_PREVIEW": S.RESERVED, "TALKING": S.BUSY,
                "HOLD": S.BUSY, "WORK": S.WORK_READY, "WORK_READY": S.WORK_READY, "UNKNOWN": S.UNKNOWN}
VOICE_ON_CALL = frozenset({"RESERVED", "RESERVED_OUTBOUND", "RESERVED_OUTBOUND_PREVIEW", "TALKING", "HOLD"})
GcCommand = Callable[..., None]
# Fields of a message that name an agent.
AGENT_FIELDS = ("AgentId", "OwnerAgentId", "RecipientAgentId", "ParticipantAgentId", "PreviousAgentId",
                "ConferenceOwner", "ConferenceParticipant")


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def password_matches(password: Any, entry: dict[str, Any]) -> bool:
    """Against the directory's hash (what a topology.json holds) or, in tests, a plain one."""
    if "password_hash" in entry:
        return passwords.verify(password, entry["password_hash"])
    return password == entry.get("password")


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds. Every state change carries one, so the date part is
    formatted once a second (datetime.isoformat was 7 % of Comm's time under load)."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{int((now - second) * 1000):03d}Z"


class CommLogic:
    def __init__(self, directory: dict[str, dict[str, Any]], mrds: dict[str, dict[str, Any]],
                 publish: Publish, to_mre: ToMre, *, queues: dict[str, dict[str, Any]] | None = None,
                 call_later: CallLater | None = None, clock: Callable[[], float] = time.monotonic,
                 state: CommState | None = None, gc: GcCommand | None = None, gc_destination: str = "comm",
                 logout_grace: float = 10.0, max_live_tasks: int = 100_000):
        self.directory = directory
        self.mrds = mrds
        self.queues = queues or {}
        # Everything Comm changes it announces: the agents and tasks named in what it sends
        # (and in what it was sent) are what the journal must write (`touched`).
        self.touched_agents: set[str] = set()
        self.touched_tasks: set[str] = set()
        self.touched_msg_ids: list[tuple[str, str]] = []   # (MsgId, TaskId) handled
        self._publish = publish
        # The request being handled, as (its ReplyTo, its MsgId), until something goes back
        # to its sender: the first message that does carries the MsgId, acknowledging it.
        self.ack_to: tuple[str, str] | None = None
        self.to_mre = lambda type, body: (self.touch(body), to_mre(type, body))
        self.call_later = call_later
        self.clock = clock
        self.state = state or CommState()
        self.gc = gc                             # sends a command to the Generic Connector, if there is one
        self.gc_destination = gc_destination     # our topic on the GC's event stream
        # Timers are not state: they are re-armed from the state after a restart.
        self.offer_timers: dict[str, Any] = {}   # task id -> its offer's RONA timer
        self.ttl_timers: dict[str, Any] = {}     # task id -> its time-to-live timer
        self.counters = {"tasks_created": 0, "tasks_routed": 0, "tasks_accepted": 0, "tasks_closed": 0,
                         "tasks_requeued": 0, "offers_refused": 0, "duplicates": 0, "rona": 0, "expired": 0}
        self.queue_wait = Histogram()  # waits for an agent: until accepted, or until the task left
        # Liveness of Chat Servers that send Heartbeat: when each was last heard, and since
        # when each silent one is lost (its agents UNKNOWN until the grace period ends).
        self.heard: dict[str, float] = {}
        self.lost: dict[str, float] = {}
        self.last_check = self.clock()
        self.touched_watch = False  # the watched Chat Servers changed: the journal must write them
        self.logout_grace = logout_grace
        self.voice_passwords: dict[str, str] = {}  # what agents gave at Connect, never journaled
        self.max_live_tasks = max_live_tasks  # backpressure: beyond it a new Task is refused OVERLOADED

    def publish(self, destination: str, type: str, body: dict[str, Any]) -> None:
        self.touch(body)
        ack = self.ack_to
        if ack is not None and destination == ack[0]:
            if body.get("MsgId") is None:
                body = {**body, "MsgId": ack[1]}
            self.ack_to = None
        self._publish(destination, type, body)

    def touch(self, body: dict[str, Any]) -> None:
        for key in AGENT_FIELDS:
            value = body.get(key)
            if value.__class__ is str:
                self.touched_agents.add(value)
        task_id = body.get("TaskId")
        if task_id.__class__ is str:
            self.touched_tasks.add(task_id)

    def resume(self) -> None:
        """After a reload from the journal: time again what was being timed. Waiting tasks
        keep what is left of their time to live (an offer's task too: it may come back);
        offers get a whole offer timeout; the Chat Servers we watched are given a fresh
        timeout, and their agents that were UNKNOWN are what they were."""
        for task in self.state.tasks.values():
            if task.state in (S.QUEUED, S.RESERVED):
                self.arm_ttl(task)
            if task.state == S.RESERVED:
                self.arm_offer(task)
        now = self.clock()
        self.heard = dict.fromkeys(self.state.watched, now)
        for session in list(self.state.sessions.values()):
            for mrd, presence in list(session.mrds.items()):
                if presence.state == S.UNKNOWN and not presence.external:
                    self.refresh(session.agent_id, mrd)

    # lookups -----------------------------------------------------------------------
    def session(self, agent_id: str, field: str = "AgentId") -> Session:
        session = self.state.sessions.get(agent_id)
        if session is None:
            raise WireError(S.INVALID_STATE, f"agent {agent_id} has no session: send Connect first", field=field)
        return session

    def presence(self, agent_id: str, mrd: str, field: str = "AgentId") -> Presence:
        presence = self.session(agent_id, field).mrds.get(mrd)
        if presence is None or presence.state == S.LOGOUT:
            raise WireError(S.INVALID_STATE, f"agent {agent_id} is not logged in on MRD {mrd}", field=field)
        return presence

    def mrd(self, name: str, field: str) -> dict[str, Any]:
        mrd = self.mrds.get(name)
        if mrd is None:
            raise WireError(S.NOT_FOUND, f"no MRD named {name!r} (known: {', '.join(self.mrds)})", field=field)
        return mrd

    def task(self, task_id: str) -> Task:
        task = self.state.tasks.get(task_id)
        if task is None:
            if task_id in self.state.closed:
                raise WireError(S.INVALID_STATE, f"task {task_id} is CLOSED", field="TaskId")
            raise WireError(S.NOT_FOUND, f"no task {task_id}", field="TaskId")
        return task

    def destination(self, agent_id: str | None) -> str | None:
        session = self.state.sessions.get(agent_id) if agent_id else None
        return session.destination if session else None

    def reply_destination(self, body: dict[str, Any]) -> str | None:
        """Where an answer to `body` goes: its ReplyTo, else its agent's Chat Server."""
        for key in ("ReplyTo", "Destination"):
            if is_destination(body.get(key)):
                return body[key]
        for key in ("AgentId", "OwnerAgentId", "ConferenceOwner"):
            dest = self.destination(body.get(key)) if isinstance(body.get(key), str) else None
            if dest:
                return dest
        return None

    def task_destinations(self, task: Task, *extra: str | None) -> set[str]:
        dests = {task.origin}
        for agent_id in (*task.agents(), *extra):
            dest = self.destination(agent_id)
            if dest:
                dests.add(dest)
        return dests

    # agent states -------------------------------------------------------------------
    def can_take(self, presence: Presence) -> bool:
        limit = self.mrds[presence.mrd]["max_tasks"]
        return presence.state in S.ROUTABLE and len(presence.tasks) + (presence.offer is not None) < limit

    def derive(self, presence: Presence) -> str:
        """The state an agent is in, given what it asked for and what it holds."""
        if presence.state == S.LOGOUT or presence.external:
            return presence.state
        if self.lost and self.state.sessions[presence.agent_id].destination in self.lost:
            return S.UNKNOWN  # its desktop's Chat Server has gone silent
        if self.interrupted(presence):
            return S.INTERRUPTED
        if presence.offer is not None:
            return S.RESERVED
        if presence.tasks:
            if presence.wants == S.NOT_READY:
                return S.PENDING_NOT_READY
            tasks = self.state.tasks
            for task_id in presence.tasks:
                if tasks[task_id].state != S.WRAP_UP:
                    break
            else:
                return S.WORK_READY
            if len(presence.tasks) >= self.mrds[presence.mrd]["max_tasks"]:
                return S.BUSY
            return S.ACTIVE
        return S.NOT_READY if presence.wants == S.NOT_READY else S.READY

    def interrupted(self, presence: Presence) -> bool:
        """Held by a task of a non-interruptible MRD (a call) while on an interruptible one."""
        if not self.mrds[presence.mrd]["interruptible"]:
            return False
        session = self.state.sessions.get(presence.agent_id)
        if session is None or len(session.mrds) < 2:  # the usual case, asked on every state change
            return False
        return any(
            not self.mrds[other.mrd]["interruptible"] and (other.tasks or other.offer is not None or other.on_call)
            for other in session.mrds.values() if other is not presence and other.state != S.LOGOUT)

    def move(self, agent_id: str, presence: Presence, state: str, reason: str | None = None) -> None:
        presence.state = state
        if reason is not None:
            presence.reason = reason
        presence.changed = utc_now()
        dest = self.destination(agent_id)
        if dest:
            self.publish(dest, "AgentState", {"AgentId": agent_id, "State": state, "Mrd": presence.mrd,
                                              "ReasonCode": presence.reason, "StateChangeTime": presence.changed})
        self.to_mre("AgentState", {"AgentId": agent_id, "State": state, "MRD": presence.mrd,
                                   "ReasonCode": presence.reason, "StateChangeTime": presence.changed})

    def refresh(self, agent_id: str, mrd: str) -> bool:
        """Publish the agent's state on `mrd` if it changed; a non-interruptible MRD's change
        may interrupt (or release) the agent's other MRDs. Returns whether it changed."""
        session = self.state.sessions.get(agent_id)
        presence = session.mrds.get(mrd) if session else None
        if presence is None:
            return False
        state = self.derive(presence)
        if state == presence.state:
            return False
        self.move(agent_id, presence, state)
        if not self.mrds[mrd]["interruptible"]:
            for other in list(session.mrds):  # type: ignore[union-attr]
                if other != mrd:
                    self.refresh(agent_id, other)
        return True

    def announce(self, agent_id: str, presence: Presence, reply_to: str | None, msg_id: str | None) -> None:
        dest = reply_to or self.destination(agent_id)
        if dest:
            self.publish(dest, "AgentState", {"AgentId": agent_id, "State": presence.state, "Mrd": presence.mrd,
                                              "ReasonCode": presence.reason, "StateChangeTime": presence.changed,
                                              "MsgId": msg_id})

    # Chat Server requests (General) ---------------------------------------------------
    def check_password(self, agent_id: str, password: str) -> dict[str, Any]:
        entry = self.directory.get(agent_id)
        if entry is None or not password_matches(password, entry):
            raise WireError(S.AUTHORIZATION_FAILURE, "unknown agent or wrong password", field="Password")
        return entry

    def on_connect(self, body: dict[str, Any]) -> None:
        agent_id = body["AgentId"]
        entry = self.check_password(agent_id, body["Password"])
        self.voice_passwords[agent_id] = body["Password"]  # for the GC's login: in memory only
        session = self.state.sessions.get(agent_id)
        if session is None:
            session = self.state.sessions[agent_id] = Session(agent_id, body["Destination"])
        if "," in body["Password"]:  # it would split a voice command's parameters
            raise WireError(S.BAD_FIELD, "a password must not contain a comma", field="Password")
        if body.get("Reset") is True:
            # A desk process that starts afresh: whatever its agent held is not on any screen now.
            for presence in session.mrds.values():
                if presence.state != S.LOGOUT and not presence.external:
                    self.logout(agent_id, presence, S.AGENT_LOGOUT)
        session.destination = body["Destination"]
        session.extension = body.get("Extension") or entry.get("extension", "")
        for mrd in list(session.mrds):  # UNKNOWN no more if it comes back through a live desk
            self.refresh(agent_id, mrd)
        self.voice_login(session)

    def voice_login(self, session: Session) -> None:
        """A contact-centre agent (one with an extension) is logged into voice through the GC."""
        if session.extension and self.gc is not None and VOICE_MRD in self.mrds:
            password = self.voice_passwords.get(session.agent_id)
            if password is None:  # a Comm restarted from its journal has not heard it since
                log.warning("cannot log %s into voice: its password has not been given since Comm started",
                            session.agent_id)
                voice = session.mrds.get(VOICE_MRD)
                if voice is not None and voice.state != S.LOGOUT:  # not on the phone any more, as far as we know
                    voice.on_call = False
                    self.move(session.agent_id, voice, S.LOGOUT, "")
                    for other in list(session.mrds):
                        if other != VOICE_MRD:
                            self.refresh(session.agent_id, other)
                return
            self.gc("Connect", session.agent_id, self.gc_destination, password)
            self.gc("Login", session.agent_id, password, session.extension)

    def voice_login_all(self) -> None:
        for session in self.state.sessions.values():
            self.voice_login(session)

    def on_login(self, body: dict[str, Any]) -> None:
        agent_id = body["AgentId"]
        session = self.session(agent_id)
        self.check_password(agent_id, body["Password"])
        self.mrd(body["Mrd"], "Mrd")
        if body["Mrd"] == VOICE_MRD and self.gc is not None and session.extension:
            self.voice_login(session)  # the voice side owns it: its State answers, through us
            return
        presence = session.mrds.setdefault(body["Mrd"], Presence(body["Mrd"], agent_id))
        if presence.state != S.LOGOUT:  # logged in already: answer with the state it is in
            self.announce(agent_id, presence, body.get("ReplyTo"), body.get("MsgId"))
            return
        presence.wants = S.NOT_READY
        presence.state = S.LOGIN
        self.refresh(agent_id, presence.mrd)  # NOT_READY, or INTERRUPTED when a call holds the agent

    def on_agent_state(self, body: dict[str, Any]) -> None:
        agent_id, target, mrd = body["AgentId"], body["State"], body["Mrd"]
        self.mrd(mrd, "Mrd")
        if target not in S.AGENT_STATES:
            raise WireError(S.BAD_FIELD, f"{target!r} is not an agent state", field="State")
        if target not in S.AGENT_REQUESTABLE:
            raise WireError(S.INVALID_STATE, f"an agent may ask for NOT_READY, READY or LOGOUT, not {target}",
                            field="State")
        presence = self.presence(agent_id, mrd)
        reason = body.get("ReasonCode") or ""
        if presence.external:
            self.voice_request(agent_id, presence, target, reason)
            return
        if target == S.LOGOUT:
            self.logout(agent_id, presence, reason)
        elif target == S.NOT_READY:
            self.not_ready(agent_id, presence, reason)
        else:
            self.ready(agent_id, presence, body)

    def logout(self, agent_id: str, presence: Presence, reason: str) -> None:
        # Tell the MRE the agent is gone before its tasks go back, so it cannot re-offer them to it.
        held = ([presence.offer] if presence.offer else []) + sorted(presence.tasks)
        presence.wants = S.NOT_READY
        self.move(agent_id, presence, S.LOGOUT, reason)
        for task_id in held:
            task = self.state.tasks[task_id]
            if task.owner == agent_id:
                self.requeue(task, S.AGENT_LOGOUT)
            else:
                self.leave(task, agent_id, S.AGENT_LOGOUT)
        presence.offer = None
        presence.tasks.clear()
        if not self.mrds[presence.mrd]["interruptible"]:  # off the phone for good: release the others
            for other in list(self.state.sessions[agent_id].mrds):
                if other != presence.mrd:
                    self.refresh(agent_id, other)

    def not_ready(self, agent_id: str, presence: Presence, reason: str) -> None:
        target = S.PENDING_NOT_READY if presence.tasks else S.NOT_READY
        current = self.derive_without_offer(presence) if presence.offer else presence.state
        if current == target:  # NOT_READY with another reason, or pending already
            presence.wants = S.NOT_READY
            self.move(agent_id, presence, current, reason)
            return
        if not S.agent_move_allowed(current, target):
            raise WireError(S.INVALID_STATE, f"agent {agent_id} is {presence.state}: cannot go {target}",
                            field="State")
        presence.wants = S.NOT_READY
        presence.reason = reason
        if presence.offer is not None:  # the agent declines what rings: it goes back to its queue
            self.requeue(self.state.tasks[presence.offer], S.RONA)
        self.refresh(agent_id, presence.mrd)

    def derive_without_offer(self, presence: Presence) -> str:
        offer, presence.offer = presence.offer, None
        try:
            return self.derive(presence)
        finally:
            presence.offer = offer

    def ready(self, agent_id: str, presence: Presence, body: dict[str, Any]) -> None:
        if presence.state == S.WORK_READY:  # wrap-up ends: its tasks close
            presence.wants = S.READY
            for task_id in sorted(presence.tasks):
                task = self.state.tasks[task_id]
                if task.owner == agent_id:
                    self.close(task, S.DONE)
                else:  # a conference participant's wrap-up ends only its own part
                    self.leave(task, agent_id, S.DONE)
            self.refresh(agent_id, presence.mrd)
            return
        if presence.state in S.ROUTABLE:  # routable already: say so
            presence.wants = S.READY
            self.announce(agent_id, presence, body.get("ReplyTo"), body.get("MsgId"))
            return
        if not S.agent_move_allowed(presence.state, S.READY):
            raise WireError(S.INVALID_STATE, f"agent {agent_id} is {presence.state}: cannot go READY",
                            field="State")
        presence.wants = S.READY
        presence.reason = ""
        if not self.refresh(agent_id, presence.mrd):  # still held (INTERRUPTED): say so
            self.announce(agent_id, presence, body.get("ReplyTo"), body.get("MsgId"))

    def on_task(self, body: dict[str, Any]) -> None:
        mrd = body["Mrd"]
        self.mrd(mrd, "Mrd")
        origin = body.get("ReplyTo")
        if origin is None:
            raise WireError(S.MISSING_FIELD, "Task needs ReplyTo: the Chat Server's destination", field="ReplyTo")
        if len(self.state.tasks) >= self.max_live_tasks:
            self.counters["overloaded"] = self.counters.get("overloaded", 0) + 1
            raise WireError(S.OVERLOADED, f"{len(self.state.tasks)} live tasks, the most Comm holds "
                                          f"(comm.max_live_tasks): try again later")
        params = dict(params_dict(body.get("params")))
        params["queue"] = self.queue_of(mrd, params)
        priority = params.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, (int, float)):
            raise WireError(S.BAD_FIELD, f"params priority must be a number, not {priority!r}", field="params")
        now = self.clock()
        task = Task(self.state.new_task_id(), mrd, body["ClientUniqueId"], body.get("name") or "", params, origin,
                    queue=params["queue"], created=now, queued_since=now)
        self.state.tasks[task.task_id] = task
        if body.get("MsgId"):
            self.state.remember(body["MsgId"], task.task_id)
        self.counters["tasks_created"] += 1
        self.arm_ttl(task)
        self.publish(origin, "TaskState", {"TaskId": task.task_id, "State": S.QUEUED, "MRD": mrd,
                                           "ClientUniqueId": task.client_id, "MsgId": body.get("MsgId")})
        self.to_mre("NewTask", {"MRD": mrd, "TaskId": task.task_id, "params": task.params,
                                "ClientUniqueId": task.client_id})

    def queue_of(self, mrd: str, params: dict[str, Any]) -> str:
        """The precision queue a task names in its params, else its MRD's default queue."""
        name = params.get("queue")
        if name is None:
            return self.mrds[mrd].get("default_queue") or f"{mrd}-default"
        queue = self.queues.get(name) if isinstance(name, str) else None
        if queue is None or queue["mrd"] != mrd:
            own = [q for q, spec in self.queues.items() if spec["mrd"] == mrd]
            raise WireError(S.NOT_FOUND, f"no queue {name!r} on MRD {mrd} (queues: {', '.join(own) or 'none'})",
                            field="params")
        return name

    def queue_spec(self, task: Task) -> dict[str, Any]:
        return self.queues.get(task.queue, {})

    # timers: RONA and time to live ------------------------------------------------------
    def waited(self, task: Task) -> float:
        """Time spent waiting for an agent (queued or on offer), over all its visits to the queue."""
        return task.waited + (self.clock() - task.queued_since if task.queued_since is not None else 0.0)

    def arm_ttl(self, task: Task) -> None:
        ttl = self.queue_spec(task).get("ttl")
        if ttl and self.call_later is not None:
            self.disarm(self.ttl_timers, task.task_id)
            self.ttl_timers[task.task_id] = self.call_later(max(0.0, ttl - self.waited(task)),
                                                            self.expire, task.task_id)

    def expire(self, task_id: str) -> None:
        """Time to live ran out: a waiting task closes NO_AGENT_AVAILABLE; one on offer or
        held is left to finish (an offer that comes back closes then, in requeue)."""
        self.ttl_timers.pop(task_id, None)
        task = self.state.tasks.get(task_id)
        if task is not None and task.state == S.QUEUED:
            self.counters["expired"] += 1
            self.close(task, S.NO_AGENT_AVAILABLE)

    def expired(self, task: Task) -> bool:
        ttl = self.queue_spec(task).get("ttl")
        return bool(ttl) and self.waited(task) >= ttl

    def arm_offer(self, task: Task) -> None:
        timeout = self.queue_spec(task).get("offer_timeout")
        if timeout and self.call_later is not None:
            self.offer_timers[task.task_id] = self.call_later(timeout, self.rona, task.task_id, task.owner)

    def disarm(self, timers: dict[str, Any], task_id: str) -> None:
        timer = timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()

    def rona(self, task_id: str, agent_id: str) -> None:
        """Redirect on no answer: the offer was not accepted in time. The agent goes
        NOT_READY (reason RONA) and the task back to the head of its queue."""
        self.offer_timers.pop(task_id, None)
        task = self.state.tasks.get(task_id)
        if task is None or task.state != S.RESERVED or task.owner != agent_id:
            return
        self.counters["rona"] += 1
        log.debug("%s not accepted by %s in time: RONA", task_id, agent_id,
                 extra={"TaskId": task_id, "AgentId": agent_id})
        presence = self.state.sessions[agent_id].mrds[task.mrd]
        presence.wants, presence.reason = S.NOT_READY, S.RONA
        self.requeue(task, S.RONA)

    def flush(self, task_id: str) -> dict[str, Any]:
        """An operator closes a task, whatever its state (FORCE_CLOSED)."""
        task = self.task(task_id)
        self.close(task, S.FORCE_CLOSED)
        return {"TaskId": task_id, "State": S.CLOSED, "Code": S.FORCE_CLOSED}

    def on_task_state(self, body: dict[str, Any]) -> None:
        task = self.task(body["TaskId"])
        target, agent_id, code = body["State"], body.get("AgentId"), body.get("Code")
        if target == S.ACTIVE:
            self.require_owner(task, S.RESERVED, agent_id)
            presence = self.presence(agent_id, task.mrd)
            presence.offer = None
            presence.tasks.add(task.task_id)
            task.state, task.code = S.ACTIVE, ""
            task.waited, task.queued_since = self.waited(task), None
            self.queue_wait.record(task.waited)
            self.disarm(self.offer_timers, task.task_id)
            self.disarm(self.ttl_timers, task.task_id)
            self.counters["tasks_accepted"] += 1
            self.refresh(agent_id, task.mrd)
            self.task_changed(task, agent_id)
        elif target == S.WRAP_UP:
            self.require_owner(task, S.ACTIVE, agent_id)
            task.state = S.WRAP_UP
            for agent in task.agents():
                self.refresh(agent, task.mrd)
            self.task_changed(task, agent_id)
        elif target == S.CLOSED:
            code = code or S.DONE
            if code not in S.CLIENT_CLOSE_CODES:
                raise WireError(S.BAD_FIELD, f"a Chat Server closes a task with DONE or CANCELLED, not {code}",
                                field="Code")
            if code == S.CANCELLED:
                self.close(task, S.CANCELLED)
                return
            if agent_id is None:
                raise WireError(S.MISSING_FIELD, "closing a task DONE needs the AgentId", field="AgentId")
            if agent_id not in task.agents() or task.state not in (S.ACTIVE, S.WRAP_UP):
                raise WireError(S.AUTHORIZATION_FAILURE if task.state in (S.ACTIVE, S.WRAP_UP) else S.INVALID_STATE,
                                f"task {task.task_id} is {task.state} with {task.agents() or 'no agent'}",
                                field="AgentId")
            if agent_id == task.owner:
                self.close(task, S.DONE)
            else:
                self.leave(task, agent_id, S.DONE)
        else:
            raise WireError(S.INVALID_STATE, f"a Chat Server sets a task ACTIVE, WRAP_UP or CLOSED, not {target}",
                            field="State")

    @staticmethod
    def require_owner(task: Task, state: str, agent_id: str | None) -> None:
        """Only the agent a task is offered to (RESERVED) or held by (ACTIVE) moves it on."""
        if task.state != state:
            raise WireError(S.INVALID_STATE, f"task {task.task_id} is {task.state}, not {state}", field="State")
        if agent_id != task.owner:
            raise WireError(S.AUTHORIZATION_FAILURE, f"task {task.task_id} is {state} with {task.owner}",
                            field="AgentId")

    def task_changed(self, task: Task, agent_id: str | None, *, code: str | None = None,
                     extra: tuple[str | None, ...] = (), **fields: Any) -> None:
        """Publish a task's new state to everyone concerned and forward it to the MRE."""
        body = {"TaskId": task.task_id, "AgentId": agent_id, "State": task.state, "MRD": task.mrd,
                "Code": code if code is not None else task.code, **fields}
        for dest in self.task_destinations(task, agent_id, *extra):
            self.publish(dest, "TaskState", body)
        self.to_mre("TaskState", body)

    def detach(self, task: Task) -> list[str]:
        """Take a task from every agent holding it or offered it; returns those agents."""
        agents = task.agents()
        self.touched_agents.update(agents)
        for agent_id in agents:
            session = self.state.sessions.get(agent_id)
            presence = session.mrds.get(task.mrd) if session else None
            if presence is not None:
                presence.tasks.discard(task.task_id)
                if presence.offer == task.task_id:
                    presence.offer = None
        task.owner, task.participants = None, []
        return agents

    def requeue(self, task: Task, code: str) -> None:
        """Back to the head of its queue (RONA, AGENT_LOGOUT), unless its time ran out."""
        if self.expired(task):
            self.counters["expired"] += 1
            self.close(task, S.NO_AGENT_AVAILABLE)
            return
        self.disarm(self.offer_timers, task.task_id)
        agents = self.detach(task)
        task.state, task.code = S.QUEUED, code
        if task.queued_since is None:  # back from an agent who held it: waiting again
            task.queued_since = self.clock()
            self.arm_ttl(task)
        self.counters["tasks_requeued"] += 1
        for agent_id in agents:  # agents' new states reach the MRE before the task does
            self.refresh(agent_id, task.mrd)
        self.task_changed(task, agents[0] if agents else None, extra=tuple(agents))

    def close(self, task: Task, code: str) -> None:
        self.disarm(self.offer_timers, task.task_id)
        self.disarm(self.ttl_timers, task.task_id)
        owner = task.owner
        agents = self.detach(task)
        if task.queued_since is not None:  # it left (cancelled, expired) without being accepted
            self.queue_wait.record(self.waited(task))
        task.state, task.code = S.CLOSED, code
        self.counters["tasks_closed"] += 1
        self.state.remember_closed(task)
        self.task_changed(task, owner, extra=tuple(agents))
        for agent_id in agents:
            self.refresh(agent_id, task.mrd)

    def leave(self, task: Task, agent_id: str, code: str) -> None:
        """A conference participant's part ends; the task stays with its owner."""
        task.participants.remove(agent_id)
        presence = self.state.sessions[agent_id].mrds[task.mrd]
        presence.tasks.discard(task.task_id)
        body = {"TaskId": task.task_id, "AgentId": agent_id, "State": S.CLOSED, "MRD": task.mrd,
                "Code": code, "Scope": "PARTICIPANT"}
        for dest in self.task_destinations(task, agent_id):
            self.publish(dest, "TaskState", body)
        self.to_mre("TaskState", body)
        self.refresh(agent_id, task.mrd)

    def second_agent(self, task: Task, owner: str, other: str, owner_field: str, other_field: str) -> Presence:
        """Validate a transfer or conference: the owner's task, an agent able to take it."""
        if task.state != S.ACTIVE:
            raise WireError(S.INVALID_STATE, f"task {task.task_id} is {task.state}, not ACTIVE", field="TaskId")
        if owner != task.owner:
            raise WireError(S.AUTHORIZATION_FAILURE, f"{owner} does not own task {task.task_id}", field=owner_field)
        if other in task.agents():
            raise WireError(S.INVALID_STATE, f"{other} already has task {task.task_id}", field=other_field)
        presence = self.presence(other, task.mrd, other_field)
        if not self.can_take(presence):
            raise WireError(S.INVALID_STATE, f"{other} cannot take task {task.task_id}: {presence.state} "
                            f"with {len(presence.tasks)} of {self.mrds[task.mrd]['max_tasks']} tasks"
                            f"{' and an offer pending' if presence.offer else ''}", field=other_field)
        return presence

    def on_transfer(self, body: dict[str, Any]) -> None:
        task = self.task(body["TaskId"])
        owner, recipient = body["OwnerAgentId"], body["RecipientAgentId"]
        target = self.second_agent(task, owner, recipient, "OwnerAgentId", "RecipientAgentId")
        self.state.sessions[owner].mrds[task.mrd].tasks.discard(task.task_id)
        target.tasks.add(task.task_id)
        task.owner, task.code = recipient, S.TRANSFERRED
        # The MRE counts the move before it hears either agent's new state.
        self.to_mre("Transfer", {"TaskId": task.task_id, "OwnerAgentId": owner, "RecipientAgentId": recipient,
                                 "MRD": task.mrd})
        self.refresh(owner, task.mrd)
        self.refresh(recipient, task.mrd)

    def on_conference(self, body: dict[str, Any]) -> None:
        task = self.task(body["TaskId"])
        if body["Mrd"] != task.mrd:
            raise WireError(S.BAD_FIELD, f"task {task.task_id} is on MRD {task.mrd}, not {body['Mrd']}",
                            field="Mrd")
        owner, participant = body["ConferenceOwner"], body["ConferenceParticipant"]
        target = self.second_agent(task, owner, participant, "ConferenceOwner", "ConferenceParticipant")
        target.tasks.add(task.task_id)
        task.participants.append(participant)
        self.to_mre("Conference", {"TaskId": task.task_id, "ConferenceOwner": owner,
                                   "ConferenceParticipant": participant, "Mrd": task.mrd})
        self.refresh(participant, task.mrd)

    def on_get_agent_state(self, body: dict[str, Any]) -> None:
        agent_id, mrd = body["AgentId"], body["Mrd"]
        if agent_id not in self.directory:
            raise WireError(S.NOT_FOUND, f"no agent {agent_id}", field="AgentId")
        self.mrd(mrd, "Mrd")
        session = self.state.sessions.get(agent_id)
        presence = session.mrds.get(mrd) if session else None
        dest = body.get("ReplyTo") or self.destination(agent_id)
        if dest is None:
            raise WireError(S.MISSING_FIELD, f"agent {agent_id} has no session: give ReplyTo", field="ReplyTo")
        self.announce(agent_id, presence or Presence(mrd, agent_id), dest, body.get("MsgId"))

    def on_get_task_state(self, body: dict[str, Any]) -> None:
        task_id = body["TaskId"]
        task = self.state.tasks.get(task_id) or self.state.closed.get(task_id)
        if task is None:
            raise WireError(S.NOT_FOUND, f"no task {task_id}", field="TaskId")
        dest = body.get("ReplyTo") or self.destination(body.get("AgentId"))
        if dest is None:
            raise WireError(S.MISSING_FIELD, "GetTaskState needs ReplyTo or a connected AgentId", field="ReplyTo")
        self.publish(dest, "TaskState", {"TaskId": task.task_id, "AgentId": task.owner, "State": task.state,
                                         "MRD": task.mrd, "Code": task.code, "Participants": task.participants,
                                         "ClientUniqueId": task.client_id, "MsgId": body.get("MsgId")})

    # MRE reports (CommunicationServer) ----------------------------------------------
    def on_agent_selected(self, body: dict[str, Any]) -> None:
        task_id, agent_id = body["TaskId"], body["AgentId"]
        task = self.state.tasks.get(task_id)
        if task is None:  # closed while the MRE chose: free the agent it reserved
            closed = self.state.closed.get(task_id)
            if closed is not None:
                self.to_mre("TaskState", {"TaskId": task_id, "AgentId": agent_id, "State": S.CLOSED,
                                          "MRD": closed.mrd, "Code": closed.code})
            else:
                log.warning("MRE selected %s for unknown task %s", agent_id, task_id,
                            extra={"TaskId": task_id, "AgentId": agent_id})
            return
        session = self.state.sessions.get(agent_id)
        presence = session.mrds.get(task.mrd) if session else None
        if task.state != S.QUEUED:
            # The MRE's view has drifted from ours: give it ours, whole.
            log.warning("MRE selected %s for task %s, which is %s with %s: sending it a snapshot", agent_id,
                        task_id, task.state, task.owner, extra={"TaskId": task_id, "AgentId": agent_id})
            self.counters["snapshots_sent"] = self.counters.get("snapshots_sent", 0) + 1
            self.to_mre("Snapshot", self.snapshot())
            return
        if presence is None or presence.offer is not None or not self.can_take(presence):
            # The MRE's view was behind ours (the agent moved meanwhile): the task goes back.
            self.counters["offers_refused"] += 1
            self.to_mre("TaskState", {"TaskId": task_id, "AgentId": agent_id, "State": S.QUEUED,
                                      "MRD": task.mrd, "Code": S.RONA})
            return
        task.state, task.owner, task.code = S.RESERVED, agent_id, ""
        presence.offer = task_id
        self.counters["tasks_routed"] += 1
        self.arm_offer(task)
        selected = {"TaskId": task_id, "AgentId": agent_id, "Status": S.SELECTED_RESERVED, "MRD": task.mrd}
        for dest in self.task_destinations(task):
            self.publish(dest, "TaskAgentSelected", selected)
        self.refresh(agent_id, task.mrd)

    def on_agent_transferred(self, body: dict[str, Any]) -> None:
        task = self.state.tasks.get(body["TaskId"])
        if task is None:
            return
        previous = body["PreviousAgentId"]
        transferred = {"TaskId": task.task_id, "AgentId": body["AgentId"], "PreviousAgentId": previous}
        for dest in self.task_destinations(task, previous):
            self.publish(dest, "TaskAgentTransferred", transferred)
            self.publish(dest, "TaskState", {"TaskId": task.task_id, "AgentId": task.owner, "State": task.state,
                                             "MRD": task.mrd, "Code": S.TRANSFERRED, "PreviousAgentId": previous})

    def on_conferenced(self, body: dict[str, Any]) -> None:
        task = self.state.tasks.get(body["TaskId"])
        if task is None:
            return
        conferenced = {"TaskId": task.task_id, "OwnerAgentId": body["OwnerAgentId"],
                       "ParticipantAgentId": body["ParticipantAgentId"]}
        for dest in self.task_destinations(task):
            self.publish(dest, "TaskConferenced", conferenced)

    # the voice side (Generic Connector events) ---------------------------------------------------
    def on_voice_state(self, event: dict[str, Any]) -> None:
        """A voice agent state from the GC becomes the agent's voice MRD state; a call holds
        (INTERRUPTED) its interruptible MRDs until it ends (protocol.md 2.5)."""
        agent_id, voice_state = event.get("agentId"), event.get("state")
        session = self.state.sessions.get(agent_id) if isinstance(agent_id, str) else None
        state = VOICE_STATES.get(voice_state) if isinstance(voice_state, str) else None
        if session is None or state is None or VOICE_MRD not in self.mrds:
            return
        presence = session.mrds.setdefault(VOICE_MRD, Presence(VOICE_MRD, agent_id, external=True))
        presence.external = True
        on_call = voice_state in VOICE_ON_CALL
        changed = on_call != presence.on_call
        presence.on_call = on_call
        if state != presence.state or str(event.get("reasonCode") or "") != presence.reason:
            self.move(agent_id, presence, state, str(event.get("reasonCode") or ""))
            changed = True
        if changed:
            for other in list(session.mrds):
                if other != VOICE_MRD:
                    self.refresh(agent_id, other)

    def voice_request(self, agent_id: str, presence: Presence, target: str, reason: str) -> None:
        """An agent's request on the voice MRD goes to the voice side, which answers with State."""
        if self.gc is None:
            raise WireError(S.INVALID_STATE, "no Generic Connector runs: voice is not available", field="Mrd")
        if target == S.READY:
            self.gc("MakeReady", agent_id)
        elif target == S.NOT_READY:
            self.gc(*(("MakeNotReadyWithReason", agent_id, reason) if reason else ("MakeNotReady", agent_id)))
        else:  # LOGOUT is allowed from any state (1.3): the voice side's abrupt logout is that
            self.gc("AbruptDisconnect", agent_id)

    # liveness of Chat Servers ------------------------------------------------------------
    def on_heartbeat(self, body: dict[str, Any]) -> None:
        self.heard_from(body["Destination"])

    def heard_from(self, destination: str) -> None:
        if destination not in self.state.watched:
            self.state.watched.add(destination)
            self.touched_watch = True
        self.heard[destination] = self.clock()
        if destination in self.lost:  # back within the grace period: its agents are as they were
            log.info("%s is back: its agents are no longer UNKNOWN", destination)
            del self.lost[destination]
            self.refresh_desk(destination)

    def check_liveness(self) -> None:
        """Called every HEARTBEAT_INTERVAL: silent Chat Servers' agents go UNKNOWN, then out."""
        now = self.clock()
        if now - self.last_check > 2 * HEARTBEAT_INTERVAL:
            # We were the ones not listening (stalled, or just restarted): judge nobody on it.
            self.last_check = now
            self.heard = dict.fromkeys(self.heard, now)
            return
        self.last_check = now
        for destination, heard in list(self.heard.items()):
            since = self.lost.get(destination)
            if since is None and now - heard > SESSION_TIMEOUT:
                log.warning("%s silent for %.1f s: its agents are UNKNOWN", destination, now - heard)
                self.lost[destination] = now
                self.refresh_desk(destination)
            elif since is not None and now - since >= self.logout_grace:
                log.warning("%s silent past the grace period: logging its agents out", destination)
                del self.lost[destination], self.heard[destination]
                self.state.watched.discard(destination)
                self.touched_watch = True
                for session in self.desk(destination):
                    for presence in session.mrds.values():
                        if presence.state != S.LOGOUT and not presence.external:
                            self.logout(session.agent_id, presence, S.AGENT_LOGOUT)

    def desk(self, destination: str) -> list[Session]:
        return [s for s in self.state.sessions.values() if s.destination == destination]

    def refresh_desk(self, destination: str) -> None:
        for session in self.desk(destination):
            for mrd in list(session.mrds):
                self.refresh(session.agent_id, mrd)

    # the MRE's resynchronisation ---------------------------------------------------------
    @property
    def epoch(self) -> str:
        return self.state.task_prefix

    def snapshot(self) -> dict[str, Any]:
        """Everything the MRE derives its view from: logged-in agents and live tasks."""
        agents = [{"AgentId": agent_id, "MRD": mrd, "State": p.state, "Tasks": sorted(p.tasks), "Offer": p.offer}
                  for agent_id, session in self.state.sessions.items()
                  for mrd, p in session.mrds.items() if p.state != S.LOGOUT]
        tasks = [{"TaskId": t.task_id, "MRD": t.mrd, "params": t.params, "State": t.state, "Agents": t.agents(),
                  "ClientUniqueId": t.client_id, "Waited": round(self.waited(t), 3)}
                 for t in sorted(self.state.tasks.values(), key=lambda t: t.created)]
        return {"Epoch": self.epoch, "Agents": agents, "Tasks": tasks}

    def on_resync(self, body: dict[str, Any]) -> None:
        log.info("MRE asked for a snapshot (%s)", body.get("Reason", "no reason given"))
        self.to_mre("Snapshot", {**self.snapshot(), "Request": body.get("Request")})

    # duplicates -----------------------------------------------------------------------
    def duplicate(self, type: str, body: dict[str, Any]) -> bool:
        """True when this MsgId was handled already: a retry. A retried Task is answered
        again with the id it was given, so the sender's retry loop ends."""
        msg_id = body.get("MsgId")
        if msg_id is None or msg_id not in self.state.seen:
            return False
        self.counters["duplicates"] += 1
        task_id = self.state.seen[msg_id]
        task = self.state.tasks.get(task_id) or self.state.closed.get(task_id)
        if type == "Task" and task is not None:
            self.publish(task.origin, "TaskState", {"TaskId": task.task_id, "State": task.state, "MRD": task.mrd,
                                                    "ClientUniqueId": task.client_id, "MsgId": msg_id})
        elif type in ("Login", "AgentState"):  # answer the retry with where the agent is now
            session = self.state.sessions.get(body.get("AgentId", ""))
            presence = session.mrds.get(body.get("Mrd", "")) if session else None
            if presence is not None:
                self.announce(presence.agent_id, presence, body.get("ReplyTo"), msg_id)
        elif type == "TaskState" and isinstance(body.get("TaskId"), str):
            try:
                self.on_get_task_state(body)
            except WireError:
                pass
        return True

    def acknowledge(self, type: str) -> None:
        """Nothing went back to the sender of the request just handled: say it was done
        (`Ack`, ours), so that a sender resending until acknowledged stops."""
        if self.ack_to is not None:
            destination, msg_id = self.ack_to
            self.ack_to = None
            self._publish(destination, "Ack", {"MsgId": msg_id, "Type": type})

    def handled(self, body: dict[str, Any]) -> None:
        self.touch(body)
        if self.heard:  # any message from a Chat Server we watch says it is alive
            reply_to = body.get("ReplyTo")
            if reply_to in self.heard:
                self.heard_from(reply_to)
        msg_id = body.get("MsgId")
        if msg_id is not None:
            if msg_id not in self.state.seen:
                self.state.remember(msg_id)
            self.touched_msg_ids.append((msg_id, self.state.seen[msg_id]))

    def stats(self) -> dict[str, Any]:
        sessions = self.state.sessions.values()
        logged_in = sum(1 for s in sessions if any(p.state != S.LOGOUT for p in s.mrds.values()))
        by_state: dict[str, dict[str, int]] = {}   # MRD -> agent state -> how many
        for session in sessions:
            for mrd, presence in session.mrds.items():
                states = by_state.setdefault(mrd, {})
                states[presence.state] = states.get(presence.state, 0) + 1
        queues: dict[str, dict[str, Any]] = {}     # queue -> waiting, oldest wait (s)
        for task in self.state.tasks.values():
            if task.state == S.QUEUED:
                queue = queues.setdefault(task.queue, {"waiting": 0, "oldest_wait_s": 0.0})
                queue["waiting"] += 1
                queue["oldest_wait_s"] = max(queue["oldest_wait_s"], round(self.waited(task), 3))
        return {**self.counters, "agents_connected": len(self.state.sessions), "agents_logged_in": logged_in,
                "tasks_live": len(self.state.tasks), "tasks_waiting": sum(q["waiting"] for q in queues.values()),
                "epoch": self.epoch, "task_number": self.state.task_number, "queue_wait": self.queue_wait.to_json(),
                "agents_by_state": by_state, "queues": queues}
