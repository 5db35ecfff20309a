"""Comm without sockets: its owners put together, and the dispatcher in front of them.

Owners, each the only one to change its state: `Agents` (sessions, states per MRD),
`Tasks` (lifecycle, with `TaskTimers`), `Desks` (Chat Server liveness), `VoiceBridge` (the
GC link), `Ledger` (handled MsgIds, answers owed), `DecisionGate` (the MRE's numbered
decisions). `Outbox` numbers what leaves for each destination.

The path of one request: `request(type, body)` looks the type up in REQUESTS (its handler,
the message that answers it and the fields that say which one), answers a retry from what
is true now (`Answers`), or runs the handler with a `Reply` that catches the answer among
what the change publishes; then sends that answer with the request's MsgId, or one built
from what is true now.

While the journal cannot be written (`unavailable()` names why: storage.py), nothing
changes: a request that would change something is refused `UNAVAILABLE` before it runs,
queries and retries of handled requests are answered from what is true now, the MRE's
decisions wait (it sends them again until they are confirmed), and so do the GC's events
and the operator's verbs. What is in memory then is exactly what is journaled.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import orjson

from wire import states as S
from wire.codec import UNROUTED_ERRORS, WireError, is_destination, routing_params
from wire.kernel.settings import COMM_DEFAULTS

from .agent_requests import AgentRequests
from .agents import Agents
from .answers import Answers
from .decisions import DecisionGate
from .desks import Desks
from .journal import Changes
from .ledger import Ledger
from .outbox import Outbox, Reply, SendEvent, ToMre
from .state import CommState
from .task_requests import TaskLimits, TaskRequests
from .tasks import Tasks
from .voice import VoiceBridge

log = logging.getLogger("mroute.comm")

# request -> (its answer's type, which message of that type answers it: the answer's field
# -> the request's field that has the same value)
REQUESTS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "Connect": ("Ack", ()),
    "Heartbeat": ("Ack", ()),
    "Login": ("AgentState", (("AgentId", "AgentId"), ("Mrd", "Mrd"))),
    "AgentState": ("AgentState", (("AgentId", "AgentId"), ("Mrd", "Mrd"))),
    "GetAgentState": ("AgentState", (("AgentId", "AgentId"), ("Mrd", "Mrd"))),
    "Task": ("TaskState", ()),
    "TaskState": ("TaskState", (("TaskId", "TaskId"),)),
    "GetTaskState": ("TaskState", (("TaskId", "TaskId"),)),
    "Transfer": ("TaskAgentTransferred", (("TaskId", "TaskId"), ("AgentId", "RecipientAgentId"))),
    "Conference": ("TaskConferenced", (("TaskId", "TaskId"), ("ParticipantAgentId", "ConferenceParticipant"))),
    "Resync": ("Snapshot", (("Destination", "Destination"),)),
}
RESYNC_SPACING = 0.1  # s: the MRE's Resyncs answered at most this often (on_resync)
DRIFT_SPACING = 1.0   # s: snapshots sent for the MRE's drift at most this often (drifted)
DRIFT = frozenset({"offer_pending", "at_limit"})  # offers refused for what the MRE should have known
# Asking twice is harmless: these are not remembered (nor journaled), just answered.
QUERIES = frozenset({"GetAgentState", "GetTaskState", "Resync", "Heartbeat"})


def sender_of(body: dict[str, Any]) -> str | None:
    """Who sent a request, as it says (under CURVE the server checked it against the
    client's key first): its ReplyTo; for Connect, Heartbeat and Resync, which name their
    desk, its Destination when it gives no ReplyTo. Never the desk of an agent it names: a
    request with no ReplyTo does not act as that agent's desk."""
    sender = body.get("ReplyTo")
    if sender is None:
        sender = body.get("Destination")
    return sender if sender.__class__ is str and is_destination(sender) else None


def own_destination(body: dict[str, Any]) -> str:
    """The Destination a Heartbeat or Resync is about, which must be its sender's own: a
    desk beats for itself and resyncs what it holds, not what another desk holds."""
    destination = body["Destination"]
    if body.get("ReplyTo", destination) != destination:
        raise WireError(S.AUTHORIZATION_FAILURE, f"{body['ReplyTo']} may not speak for {destination}: a desk "
                                                 f"beats and resyncs for itself only", field="Destination")
    return destination


def ledger_key(sender: str, msg_id: str) -> str:
    """What the ledger remembers a request by: its sender and its MsgId."""
    return f"{sender}\x00{msg_id}"


class CommCore:
    def __init__(self, directory: dict[str, dict[str, Any]], mrds: dict[str, dict[str, Any]], *,
                 send_event: SendEvent, to_mre: ToMre, stream: str, queues: dict[str, dict[str, Any]] | None = None,
                 call_later: Callable[..., Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 saved: CommState | None = None, gc_send: Callable[[list[bytes]], None] | None = None,
                 gc_destination: str = "comm", logout_grace: float = COMM_DEFAULTS.logout_grace, limits: TaskLimits | None = None,
                 session_takeover: str = "move", unavailable: Callable[[], str] = lambda: "",
                 no_room: Callable[[], str] = lambda: ""):
        saved = saved or CommState()
        self.unavailable = unavailable  # why changes cannot be journaled now; "" when they can
        self.mrds = mrds
        self.out = Outbox(send_event, to_mre, stream)
        self.agents = Agents(directory, mrds, self.out, sessions=saved.sessions)
        self.tasks = Tasks(self.agents, self.out, queues or {}, clock=clock, call_later=call_later,
                           prefix=saved.task_prefix, number=saved.task_number, counters=saved.counters)
        self.tasks.adopt(saved.tasks, saved.closed)
        self.ledger = Ledger(saved.seen)
        self.voice = VoiceBridge(self.agents, gc_send, gc_destination, call_later)
        self.agent_requests = AgentRequests(self.agents, self.tasks, self.voice, session_takeover)
        self.task_requests = TaskRequests(self.tasks, mrds, limits or TaskLimits(), no_room)
        self.desks = Desks(self.agents, self.agent_requests.log_out_desk, clock=clock, logout_grace=logout_grace,
                           watched=saved.watched)
        self.answers = Answers(self.agents, self.tasks, self.ledger)
        # what an agent's state is derived from, besides its own: its tasks, its desk
        self.agents.wrapping_up, self.agents.desk_lost = self.tasks.wrapping_up, self.desks.is_lost
        self.gate = DecisionGate(saved.decisions)
        # whether the journal holds the meta rows (a Comm loaded from it does), and the task
        # number it holds: only what changed is written, not the whole of `watched` (one
        # Chat Server a desk, 10,000 at most) and the MRE streams at every new task
        self.meta_written = saved.task_prefix is not None
        self.number_written = saved.task_number
        # the tasks' counters as last journaled (a Comm loaded from the journal: as it holds them)
        self.counts_written: Any = self.tasks.counts() if self.meta_written else None
        self.refused_unavailable = 0   # changes refused while the journal could not write
        self.deferred = 0              # MRE decisions and GC events left for later, the same
        ar, tr = self.agent_requests, self.task_requests
        # General: what Chat Servers ask
        self.appliers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "Connect": ar.connect, "Login": ar.login, "AgentState": ar.agent_state, "Task": tr.task,
            "TaskState": tr.task_state, "Transfer": tr.transfer, "Conference": tr.conference,
            "Heartbeat": self.heartbeat, "GetAgentState": lambda body: None, "GetTaskState": lambda body: None,
            "Resync": self.resync}
        # CommunicationServer: what the MRE reports
        self.reports: dict[str, Callable[[dict[str, Any]], None]] = {
            "TaskAgentSelected": self.decision(self.on_agent_selected),
            "TaskAgentTransferred": self.decision(self.on_counted),
            "TaskConferenced": self.decision(self.on_counted), "Resync": self.on_resync}
        self.mre_reports = 0
        self.voice_missed = False  # GC events were left while nothing could change
        self.resynced_at = -RESYNC_SPACING   # when the MRE was last sent a snapshot it asked for
        self.resyncs_spaced = 0              # the MRE's asks left unanswered: one came too soon before
        self.drift_snapshot_at = -DRIFT_SPACING  # when the MRE was last sent a snapshot for a drift

    def resume(self) -> None:
        """After a reload from the journal: time again what was timed; agents that were
        UNKNOWN (their desk silent) are what they are, their desks given a fresh timeout."""
        self.tasks.resume_timers()
        for session in list(self.agents.sessions.values()):
            for presence in list(session.mrds.values()):
                if presence.state == S.UNKNOWN and not presence.external:
                    self.agents.refresh(session.agent_id, presence.mrd)

    # requests from Chat Servers -----------------------------------------------------------
    def request(self, type: str, body: dict[str, Any]) -> str | None:
        """Apply a request once and answer it (module docstring); returns the id of the task
        a `Task` created. A refusal propagates as WireError, after any change it made was
        told as a plain notification."""
        answer_type, key = REQUESTS[type]
        sender = sender_of(body)
        if sender is None:
            # refused before anything changes: a request with nowhere to answer never acts as a desk
            raise WireError(S.MISSING_FIELD, f"{type} needs ReplyTo: the destination of the desk that sends it",
                            field="ReplyTo")
        self.desks.message_from(sender)
        msg_id = body.get("MsgId")
        reply = Reply(type, sender, msg_id, answer_type, {field: body.get(asked) for field, asked in key})
        # a MsgId is its sender's: the same one from another desk is another request
        handled = ledger_key(sender, msg_id) if msg_id is not None else None
        change = type not in QUERIES or body.get("Reset") is True   # (a Resync that closes what its desk lost)
        if change and self.ledger.handled_already(handled):
            self.out.answer(reply, *self.answers.current(type, body, handled))
            return None
        if change or (type == "Heartbeat" and body["Destination"] not in self.desks.watched):
            self.refuse_if_unavailable()  # (a desk's first beat is a change: it is watched from then on)
        task_id = self.apply(type, body, reply, handled if change else None)
        self.finish(reply, body, handled)
        return task_id

    def apply(self, type: str, body: dict[str, Any], reply: Reply | None = None,
              handled: str | None = None) -> str | None:
        """Run the handler while `reply` catches the answer; remember the request (`handled`:
        its sender's MsgId). Returns the id of the task a `Task` created."""
        self.out.reply = reply
        try:
            task_id = self.appliers[type](body)
        except BaseException:
            self.out.reply = None
            if reply is not None and reply.answer is not None:  # what changed is still news to the sender
                self.out.publish(reply.destination, *reply.answer)  # type: ignore[arg-type]
            raise
        self.out.reply = None
        if handled is not None:   # (None for a query: asking twice is harmless)
            self.ledger.remember(handled, task_id or body.get("TaskId") or "")
        return task_id

    def finish(self, reply: Reply, body: dict[str, Any], handled: str | None = None) -> None:
        """Send the answer caught among what the change published, else one from what is
        true now (a query, a change that published nothing to its sender); `Ack` only to a
        request that can be matched with it (a MsgId)."""
        if reply.answer is not None:
            self.out.answer(reply, *reply.answer)
        elif reply.answer_type != "Ack" or reply.msg_id is not None:
            self.out.answer(reply, *self.answers.current(reply.request, body, handled))

    def heartbeat(self, body: dict[str, Any]) -> None:
        self.desks.heard_from(own_destination(body))

    def resync(self, body: dict[str, Any]) -> None:
        """A desk asks what it should hold (answered with a Snapshot). With `Reset: true` it
        has started afresh and names every task it still has: the tasks it created that it
        does not name have lost their customer with its earlier process, and close as a
        customer's cancel does (CANCELLED), rather than wait for an agent to talk to nobody."""
        destination = own_destination(body)
        if body.get("Reset") is not True:
            return
        still = set(body.get("TaskIds") or ())
        gone = [task for task in self.tasks.live.values() if task.origin == destination and task.task_id not in still]
        for task in gone:
            self.tasks.close(task, S.CANCELLED)
        if gone:
            self.tasks.counters["tasks_left_by_desks"] = self.tasks.counters.get("tasks_left_by_desks", 0) + len(gone)
            log.info("%s started afresh without %d of the tasks it created: cancelled", destination, len(gone))

    def refuse_if_unavailable(self) -> None:
        reason = self.unavailable()
        if reason:
            self.refused_unavailable += 1
            raise WireError(S.UNAVAILABLE, f"{reason}; nothing was changed, try again later")

    def refuse(self, err: WireError, body: Any) -> None:
        """Tell the sender why (Error, numbered like everything to its destination)."""
        body = body if body.__class__ is dict else {}
        if err.msg_id is None and isinstance(body.get("MsgId"), str):
            err.msg_id = body["MsgId"]
        dest = err.reply_to or sender_of(body) or UNROUTED_ERRORS
        self.out.publish(dest, "Error", err.body())

    # reports from the MRE (decisions numbered by it) ----------------------------------------
    def decision(self, handler: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        def admitted(body: dict[str, Any]) -> None:
            if self.unavailable():  # not admitted: the MRE sends it again until we confirm it
                self.deferred += 1
            elif self.gate.admit(body):
                handler(body)
        return admitted

    def gc_handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        """The GC's events; those that arrive while nothing may change are counted and left:
        `caught_up` asks the GC again for every voice agent's state."""
        def gated(handler: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
            def handle(event: dict[str, Any]) -> None:
                if self.unavailable():
                    self.deferred += 1
                    self.voice_missed = True
                else:
                    handler(event)
            return handle
        return {type: gated(handler) for type, handler in self.voice.handlers().items()}

    def on_agent_selected(self, body: dict[str, Any]) -> None:
        task_id, agent_id = body["TaskId"], body["AgentId"]
        task = self.tasks.live.get(task_id)
        if task is None:  # closed while the MRE chose: free the agent it reserved
            closed = self.tasks.closed.get(task_id)
            if closed is not None:
                self.out.to_mre("TaskState", {"TaskId": task_id, "AgentId": agent_id, "State": S.CLOSED,
                                              "MRD": closed.mrd, "Code": closed.code})
            else:
                log.warning("MRE selected %s for unknown task %s", agent_id, task_id,
                            extra={"TaskId": task_id, "AgentId": agent_id})
            return
        if task.state != S.QUEUED:
            self.drifted(f"MRE selected {agent_id} for task {task_id}, which is {task.state} with {task.owner}")
            return
        refused = self.tasks.select(task, agent_id)
        if refused in DRIFT:   # the MRE does not know of an offer or a task the agent holds
            self.drifted(f"MRE selected {agent_id} for task {task_id}, which it cannot take ({refused})")

    def drifted(self, why: str) -> None:
        """The MRE's view has drifted from ours: give it ours, whole, at most once every
        DRIFT_SPACING (a snapshot walks every agent and task; what the MRE decides before
        it has the snapshot is refused and sent back, one by one)."""
        now = self.tasks.clock()
        counters = self.tasks.counters
        if now - self.drift_snapshot_at < DRIFT_SPACING:
            counters["snapshots_spaced"] = counters.get("snapshots_spaced", 0) + 1
            return
        self.drift_snapshot_at = now
        log.warning("%s: sending the MRE a snapshot", why)
        counters["snapshots_sent"] = counters.get("snapshots_sent", 0) + 1
        self.out.to_mre("Snapshot", self.snapshot())

    def on_counted(self, body: dict[str, Any]) -> None:
        """The MRE counted a transfer or conference: Comm told the desks when it made it."""
        self.mre_reports += 1

    def flush(self, task_id: str) -> dict[str, Any]:
        """An operator closes a task, whatever its state (FORCE_CLOSED)."""
        self.refuse_if_unavailable()
        task = self.tasks.task(task_id)
        self.tasks.close(task, S.FORCE_CLOSED)
        return {"TaskId": task_id, "State": S.CLOSED, "Code": S.FORCE_CLOSED}

    def account(self, count: int) -> dict[str, Any]:
        """For an operator's audit (`mroute chaos`, over the control channel): every task
        numbered 1..count, as GetTaskState would answer it, or None when Comm does not know
        it. Task ids cannot be guessed by clients; an operator asks by number."""
        prefix = f"{self.tasks.prefix}-"
        known: dict[str, Any] = {}
        for tasks in (self.tasks.closed, self.tasks.live):
            for task_id, task in tasks.items():
                if task_id.startswith(prefix):
                    known[task_id[len(prefix):].partition("-")[0]] = self.tasks.state_body(task)
        return {"epoch": self.tasks.prefix, "tasks": {str(n): known.get(str(n)) for n in range(1, count + 1)}}

    def desks_closed(self, destinations: list[str]) -> dict[str, Any]:
        """Chat Servers removed by their supervisor: their agents out at once (AGENT_LOGOUT)."""
        self.refuse_if_unavailable()
        agents = sorted({s.agent_id for d in destinations for s in self.agents.at_desk(d)
                         if any(p.state != S.LOGOUT for p in s.mrds.values())})
        for destination in destinations:
            self.desks.closed(destination)
        return {"agents": agents}

    def on_resync(self, body: dict[str, Any]) -> None:
        """The MRE asks for a snapshot (it asks again every 0.5 s until one comes). At most
        one is built every RESYNC_SPACING: each costs Comm a pass over every agent and task,
        and without CURVE anyone who reaches the queue can ask."""
        now = self.tasks.clock()
        if now - self.resynced_at < RESYNC_SPACING:
            self.resyncs_spaced += 1
            return
        self.resynced_at = now
        log.info("MRE asked for a snapshot (%s)", body.get("Reason", "no reason given"))
        self.out.to_mre("Snapshot", {**self.snapshot(unasked=False), "Request": body.get("Request")})

    def snapshot(self, unasked: bool = True) -> dict[str, Any]:
        """Everything the MRE derives its view from: logged-in agents and live tasks, and
        the stream it numbers its decisions on from then on (decisions.py; `unasked`: one
        the MRE did not ask for, which retires the streams before it)."""
        agents = [{"AgentId": agent_id, "MRD": mrd, "State": p.state, "Tasks": sorted(p.tasks), "Offer": p.offer}
                  for agent_id, session in self.agents.sessions.items()
                  for mrd, p in session.mrds.items() if p.state != S.LOGOUT]
        tasks = [{"TaskId": t.task_id, "MRD": t.mrd, "params": routing_params(t.params), "State": t.state,
                  "Agents": t.agents(), "ClientUniqueId": t.client_id, "Waited": round(self.tasks.waited(t), 3)}
                 for t in sorted(self.tasks.live.values(), key=lambda t: t.created)]
        return {"Epoch": self.tasks.prefix, "Agents": agents, "Tasks": tasks, "Decisions": self.gate.issue(unasked)}

    # the journal -----------------------------------------------------------------------------
    def retire(self) -> None:
        """This core is replaced by one loaded from the journal (server.py, `revert`): none of
        its timers may run again, nor its GC handshake."""
        self.tasks.timers.cancel_all()
        self.voice.send = None

    def take_over(self, old: "CommCore") -> None:
        """Replacing `old` (reloaded from the journal): what was never journaled and is still
        true comes from it: the GC link, the passwords agents gave, the waits measured since
        this start, and the counters that are not the tasks' (those are journaled, and count
        what the journal holds)."""
        voice, was = self.voice, old.voice
        voice.passwords, voice.live, voice.epoch, voice.status = was.passwords, was.live, was.epoch, was.status
        voice.backlog = was.backlog  # what waits for the GC's answer to our Hello
        self.tasks.queue_wait = old.tasks.queue_wait
        for name, figures in old.tasks.by_queue.items():
            self.tasks.figures(name).wait = figures.wait
        self.gate.repeated, self.gate.early, self.ledger.duplicates = old.gate.repeated, old.gate.early, \
            old.ledger.duplicates
        self.task_requests.overloaded, self.mre_reports = old.task_requests.overloaded, old.mre_reports
        self.refused_unavailable, self.deferred = old.refused_unavailable, old.deferred
        self.voice_missed = old.voice_missed or was.live  # an event of the undone wake-up may be among them

    def caught_up(self) -> None:
        """The journal writes again: time what was timed, and ask the GC again for the voice
        states of the events left meanwhile (a Login of a logged-in agent answers its State)."""
        self.resume()
        if self.voice_missed:
            self.voice_missed = False
            self.voice.login_all()

    def take_changes(self) -> Changes:
        """What changed since the last call, as the owners marked it; clears their marks."""
        agents, tasks, ledger = self.agents, self.tasks, self.ledger
        changes = Changes(agents={a: agents.sessions.get(a) for a in agents.dirty},
                          tasks={t: tasks.live.get(t) for t in tasks.dirty},
                          closed={t: tasks.closed[t] for t in tasks.dirty if t in tasks.closed},
                          seen=ledger.new)
        meta = changes.meta
        # The prefix goes with every number: a Comm reverted onto an empty journal keeps its
        # epoch without having written it.
        if not self.meta_written or tasks.number != self.number_written:
            meta["task_prefix"] = tasks.prefix
            meta["task_number"] = str(tasks.number)
            self.number_written = tasks.number
        if not self.meta_written or self.desks.dirty:
            meta["watched"] = orjson.dumps(sorted(self.desks.watched)).decode()
        if not self.meta_written or self.gate.dirty:
            meta["decisions"] = orjson.dumps(self.gate.applied).decode()
        counts = tasks.counts()
        if counts != self.counts_written:
            meta["counters"] = orjson.dumps({"tasks": tasks.counters, "queues": {q: c for q, c in counts[1]}}).decode()
            self.counts_written = counts
        self.meta_written = True
        agents.dirty, tasks.dirty, ledger.new, self.desks.dirty, self.gate.dirty = set(), set(), [], False, False
        return changes

    def stats(self) -> dict[str, Any]:
        return {**self.tasks.stats(), **self.agents.stats(), **self.gate.stats(), "duplicates": self.ledger.duplicates,
                "overloaded": self.task_requests.overloaded, "mre_reports": self.mre_reports,
                "refused_unavailable": self.refused_unavailable, "deferred_unavailable": self.deferred,
                "mre_resyncs_spaced": self.resyncs_spaced}
