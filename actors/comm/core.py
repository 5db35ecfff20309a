"""Comm without sockets: its owners put together, and the path of a request through them.

Owners, each the only one to change its state: `Agents` (sessions, states per MRD),
`Tasks` (lifecycle, with `TaskTimers`), `Desks` (Chat Server liveness), `VoiceBridge` (the
GC link), `Ledger` (handled MsgIds), `DecisionGate` (the MRE's numbered decisions),
`Admission` (the door of new Tasks). `Streams` numbers what leaves. `MreLink` takes the
MRE's reports, `Operator` the operator's verbs.

What each owner holds is of two kinds. What the journal holds is set in the owner's `load`,
at the start and again when a write failed (`reload`): only that goes back to the journal's
state. What lives as long as the process (the GC link and the passwords agents gave, the
waits measured, the counters of what was refused or repeated) is set in its constructor,
and a reload leaves it as it is.

The path of one request (`request`): the registry (requests.py) says what applies it and
which message answers it; a retry is answered from what is true now; a new Task passes the
door (admission.py); the change runs with a `Reply` that catches the answer among what it
publishes; then that answer goes to the sender with its MsgId, or one built from what is
true now.

While the journal cannot be written (`unavailable()` names why: storage.py), nothing
changes: a request that would change something is refused `UNAVAILABLE` before it runs,
queries and retries of handled requests are answered from what is true now, the MRE's
decisions wait (it sends them again until they are confirmed), and so do the GC's events
and the operator's verbs. What is in memory then is exactly what is journaled.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from wire import states as S
from wire.codec import UNROUTED_ERRORS, WireError
from wire.kernel.settings import COMM_DEFAULTS

from .admission import Admission, TaskLimits
from .agent_requests import AgentRequests
from .agents import Agents
from .answers import Answers
from .decisions import DecisionGate
from .desks import Desks
from .identity import sender_of
from .intake import Intake
from .journal import Changes
from .ledger import Ledger, ledger_key
from .mre_link import MreLink
from .operator import Operator
from .requests import Request, requests
from .state import CommState
from .streams import Reply, Send, Streams
from .task_requests import TaskRequests
from .tasks import Tasks
from .unwritten import Unwritten
from .voice import VoiceBridge


class CommCore:
    def __init__(self, directory: dict[str, dict[str, Any]], mrds: dict[str, dict[str, Any]], *,
                 send_event: Send, send_mre: Send, stream: str, queues: dict[str, dict[str, Any]] | None = None,
                 call_later: Callable[..., Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 saved: CommState | None = None, gc_send: Send | None = None, gc_destination: str = "comm",
                 logout_grace: float = COMM_DEFAULTS.logout_grace, limits: TaskLimits | None = None,
                 session_takeover: str = "move", unavailable: Callable[[], str] = lambda: "",
                 intake: Intake | None = None):
        self.unavailable = unavailable  # why changes cannot be journaled now; "" when they can
        self.out = Streams(send_event, send_mre, stream)
        self.agents = Agents(directory, mrds, self.out)
        self.tasks = Tasks(self.agents, self.out, queues or {}, clock=clock, call_later=call_later)
        self.ledger = Ledger()
        self.voice = VoiceBridge(self.agents, gc_send, gc_destination, call_later, self.unavailable)
        self.admission = Admission(self.tasks, limits or TaskLimits(), intake)
        agent_requests = AgentRequests(self.agents, self.tasks, self.voice, session_takeover)
        self.desks = Desks(self.agents, agent_requests.log_out_desk, clock=clock, logout_grace=logout_grace)
        task_requests = TaskRequests(self.tasks, mrds, self.admission)
        self.requests = requests(agent_requests, task_requests, self.desks,
                                 Answers(self.agents, self.tasks, self.ledger))
        # what an agent's state is derived from, besides its own: its tasks, its desk
        self.agents.wrapping_up, self.agents.desk_lost = self.tasks.wrapping_up, self.desks.is_lost
        self.gate = DecisionGate()
        self.mre = MreLink(self.agents, self.tasks, self.out, self.gate, self.unavailable)
        self.reports = self.mre.reports()
        self.operator = Operator(self.agents, self.tasks, self.desks, self.refuse_if_unavailable)
        self.unwritten = Unwritten(self.agents, self.tasks, self.ledger, self.desks, self.gate)
        self.refused_unavailable = 0   # changes refused while the journal could not write
        self.load(saved or CommState())

    def load(self, saved: CommState) -> None:
        """Each owner's journaled state, as `saved` holds it."""
        self.agents.load(saved.sessions)
        self.tasks.load(saved)
        self.ledger.load(saved.seen)
        self.desks.load(saved.watched)
        self.gate.load(saved.decisions)
        self.unwritten.load(saved)

    def reload(self, saved: CommState, stream: str) -> None:
        """A write failed (server.py, `revert`): back to what the journal holds, numbering on
        a new stream. What lives as long as the process stays as it is; the GC is asked
        again for the voice states once the journal writes (`caught_up`): an event of the
        undone wake-up may have been applied and undone with it."""
        self.load(saved)
        self.out.restart(stream)
        self.voice.missed = self.voice.missed or self.voice.live

    def resume(self) -> None:
        """After a load from the journal: time again what was timed; agents that were
        UNKNOWN (their desk silent) are what they are, their desks given a fresh timeout."""
        self.tasks.resume_timers()
        for session in list(self.agents.sessions.values()):
            for presence in list(session.mrds.values()):
                if presence.state == S.UNKNOWN and not presence.external:
                    self.agents.refresh(session.agent_id, presence.mrd)

    def caught_up(self) -> None:
        """The journal writes again: time what was timed, and catch up with the GC."""
        self.resume()
        self.voice.caught_up()

    # requests from Chat Servers -----------------------------------------------------------
    def request(self, type: str, body: dict[str, Any]) -> str | None:
        """Apply a request once and answer it (module docstring); returns the id of the task
        a `Task` created. A refusal propagates as WireError, after any change it made was
        told as a plain notification."""
        kind = self.requests[type]
        sender = sender_of(body)
        if sender is None:
            # refused before anything changes: a request with nowhere to answer never acts as a desk
            raise WireError(S.MISSING_FIELD, f"{type} needs ReplyTo: the destination of the desk that sends it",
                            field="ReplyTo")
        self.desks.message_from(sender)
        msg_id = body.get("MsgId")
        handled = ledger_key(sender, msg_id) if msg_id is not None else None
        change = not kind.query or body.get("Reset") is True   # (a Resync that closes what its desk lost)
        reply = Reply(type, sender, msg_id, kind.answer, {field: body.get(asked) for field, asked in kind.key})
        if change and self.ledger.handled_already(handled):
            self.out.answer(reply, *self.answer_now(kind, type, body, handled))
            return None
        if type == "Task":
            self.admission.admit(handled)
        if change or (type == "Heartbeat" and body["Destination"] not in self.desks.watched):
            self.refuse_if_unavailable()  # (a desk's first beat is a change: it is watched from then on)
        task_id = self.apply(kind.apply, body, reply, handled if change else None) if kind.apply else None
        if reply.answer is not None:
            self.out.answer(reply, *reply.answer)
        elif kind.answer != "Ack" or msg_id is not None:  # an Ack only to a request it can be matched with
            self.out.answer(reply, *self.answer_now(kind, type, body, handled))
        return task_id

    def apply(self, change: Callable[[dict[str, Any]], str | None], body: dict[str, Any], reply: Reply,
              handled: str | None) -> str | None:
        """Run the change while `reply` catches the answer; remember the request (`handled`:
        its sender's MsgId). Returns the id of the task a `Task` created."""
        self.out.reply = reply
        try:
            task_id = change(body)
        except BaseException:
            self.out.reply = None
            if reply.answer is not None:  # what changed is still news to the sender
                self.out.publish(reply.destination, *reply.answer)  # type: ignore[arg-type]
            raise
        self.out.reply = None
        if handled is not None:   # (None for a query: asking twice is harmless)
            self.ledger.remember(handled, task_id or body.get("TaskId") or "")
        return task_id

    @staticmethod
    def answer_now(kind: Request, type: str, body: dict[str, Any], handled: str | None) -> tuple[str, dict[str, Any]]:
        return kind.now(body, handled) if kind.now is not None else ("Ack", {"Type": type})

    def refuse_if_unavailable(self) -> None:
        reason = self.unavailable()
        if reason:
            self.refused_unavailable += 1
            raise WireError(S.UNAVAILABLE, f"{reason}; nothing was changed, try again later")

    def refuse(self, err: WireError, body: Any) -> None:
        """Tell the sender why (Error, numbered like everything to its destination). A Task
        refused UNAVAILABLE is remembered: its retry does not wait its turn again."""
        body = body if body.__class__ is dict else {}
        msg_id = body.get("MsgId")
        if err.msg_id is None and msg_id.__class__ is str:
            err.msg_id = msg_id
        sender = sender_of(body)
        self.out.publish(err.reply_to or sender or UNROUTED_ERRORS, "Error", err.body())
        if err.code == S.UNAVAILABLE and err.type == "Task" and sender is not None and msg_id.__class__ is str:
            self.admission.refused_unavailable(ledger_key(sender, msg_id))

    def snapshot(self, unasked: bool = True) -> dict[str, Any]:
        return self.mre.snapshot(unasked)

    def take_changes(self) -> Changes:
        """What changed since the journal last wrote (unwritten.py)."""
        return self.unwritten.take()

    def stats(self) -> dict[str, Any]:
        return {**self.tasks.stats(), **self.agents.stats(), **self.mre.stats(), **self.admission.stats(),
                "duplicates": self.ledger.duplicates, "refused_unavailable": self.refused_unavailable,
                "deferred_unavailable": self.mre.deferred + self.voice.deferred}
