"""The Communication Server process: `CommCore` behind the documented queues.

Binds `General` and `CommunicationServer` (PULL) and `ChatEvents` (XPUB); pushes to the
MRE's `RoutingEngine` and, when the topology has one, to the Generic Connector, whose
`GCEvents` it subscribes to. What each wake-up changed is journaled before anything it
caused reaches a Chat Server or the GC (the commit runs before the flush). The MRE's share
leaves before the commit (`commit`): the MRE decides while Comm writes.

When that commit fails (disk full, read-only, I/O error), the wake-up is undone (`revert`):
what it would have sent is dropped, as if Comm had died just before its flush (the MRE,
told early, gets a snapshot of the journal, which replaces its view), and the
state goes back to what the journal holds, loaded as a restarted Comm would load it, but in
this process. Holding the changes and their replies until a later commit succeeds was the
other way; it was not taken because queries must still be answered meanwhile, and answers
from a memory ahead of the journal would tell what a crash could still take back, while
a Comm whose memory is its journal answers only what is durable. Nothing acknowledged is
lost either way: what was acknowledged was journaled first. Comm then stays degraded
(storage.py) until a probe write succeeds, and serves changes again by itself.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import OrderedDict
from typing import Any

import zmq

from actors.outflow import Outflow
from actors.runtime import DRAIN_SLICE, Actor, ids, log
from wire import codec, states as S
from wire.catalogue import (CHAT_EVENTS, COMMUNICATION_SERVER, GC, GC_EVENTS, GENERAL, HEARTBEAT,
                            HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC, ROUTING_ENGINE)
from wire.codec import WireError
from wire.kernel.rundir import journal_path
from wire.kernel.settings import CommSettings

from .admission import Admission
from .checks import PasswordChecks
from .core import REQUESTS, CommCore, ledger_key, sender_of
from .identity import is_mre, stated_elsewhere
from .intake import Intake
from .journal import Journal
from .state import CommState
from .storage import PROBE_EVERY, Storage
from .subscribers import HEARTBEAT_FRAME, TRIM_EVERY, Subscribers
from .task_requests import TaskLimits, oversized_task

# What Comm holds for the Chat Servers (outflow.py): ZeroMQ queues at most comm.events_hwm
# messages (batches of at most 64 KB) for a subscriber; past that it waits in Comm, counted in
# bytes: at most comm.receiver_bytes a destination and comm.receivers_bytes in all (their
# defaults: wire/kernel/settings.py), then dropped and counted; the receiver sees the gap and resyncs.
MRE_HWM = 1024
TEAM_LIMIT = 1_000   # agents an operator's `agents` answer lists at most (the web console's team view)
UNAVAILABLE_KEPT = 100_000  # Tasks refused UNAVAILABLE remembered, their retries served (retry_of_unavailable)
CONFIRM_EVERY = 0.05  # s between confirmations of the MRE's decisions
# Messages taken from General (or from the MRE) in one read, at most (and for at most the
# runtime's DRAIN_SLICE). New Tasks wait in the intake (intake.py): an agent's acceptance or
# close waiting behind a flood of new Tasks would keep the agent from the next one.
TURN = 2048


def agent_directory(topology: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What Comm reads of each directory entry: its password's hash and its extension. At
    100,000 agents the full entries (names, teams, attributes) would cost Comm about 1 KB
    an agent; the topology's copy is let go."""
    directory = {agent["id"]: {"password_hash": agent["password_hash"], "extension": agent.get("extension", "")}
                 for agent in topology["agents"]}
    topology["agents"] = []
    return directory


class Comm(Actor):
    role = "comm"

    def start(self) -> None:
        endpoints, topology = self.config.endpoints, self.config.topology
        settings: CommSettings = self.config.settings  # type: ignore[assignment]
        # XPUB with NODROP: a subscriber whose queue is full makes the send fail (EAGAIN),
        # which the runtime counts as dropped, instead of PUB dropping it without a word.
        # Who hears what is ours to say (XPUB_MANUAL, on_subscription), set before it binds.
        # What a subscriber's queue holds is counted and bounded in bytes (outflow.py).
        self.events = self.socket(zmq.XPUB, bind=endpoints[CHAT_EVENTS], hwm=settings.events_hwm,
                                  options={zmq.XPUB_NODROP: 1, zmq.XPUB_MANUAL: 1})
        self.subscribers = Subscribers(self.name, self.events, Outflow(
            self.events, hwm=settings.events_hwm, per_receiver=settings.receiver_bytes, total=settings.receivers_bytes,
            dropped=lambda frames, count: self.sender.count_dropped(self.events, frames, count),
            skippable=frozenset({HEARTBEAT_FRAME})), self.counters, self.refusal_lines)
        self.loop.add_reader(self.events, self.subscribers.on_subscription)
        # a stuck MRE holds at most MRE_HWM batches (BATCH_BYTES each) here; past them it
        # misses updates, sees the gap and asks for a snapshot
        self.mre = self.socket(zmq.PUSH, connect=endpoints[ROUTING_ENGINE], hwm=MRE_HWM)
        # a body over MAX_BODY is refused with an Error; a frame over twice that drops its sender
        general = self.socket(zmq.PULL, bind=endpoints[GENERAL], max_frame=2 * codec.MAX_BODY)
        reports = self.socket(zmq.PULL, bind=endpoints[COMMUNICATION_SERVER], max_frame=codec.MAX_BODY)
        self.unreadable = ""  # the journal could be neither written nor read: this process ends
        self.has_gc = any(spec["role"] == "gc" and spec.get("count", 1) > 0 for spec in topology["actors"].values())
        self.gc = self.socket(zmq.PUSH, connect=endpoints[GC]) if self.has_gc else None
        self.directory = agent_directory(topology)
        self.intake = Intake(lambda: self.loop.wakes, settings.admission_budget)
        self.admission = Admission(self.intake)
        self.storage = Storage(Journal(journal_path(self.config.run_dir)) if settings.journal else None)
        saved = self.storage.load()
        self.core = self.new_core(saved)
        if saved is not None:
            log.info("%s: carried on from the journal: %d agents, %d tasks (epoch %s)", self.name,
                     len(saved.sessions), len(saved.tasks), saved.task_prefix)
            self.core.resume()
        # Nothing reaches a client before what caused it is journaled: the commit runs before the flush.
        self.loop.before_poll.insert(0, self.commit)
        # The handlers find the core when called: `revert` replaces it.
        if self.has_gc:
            gc_events = self.socket(zmq.SUB, connect=endpoints[GC_EVENTS])
            gc_events.setsockopt(zmq.SUBSCRIBE, codec.topic(self.name))
            # a bad event cannot be answered (the GC takes commands, not errors): counted and logged
            self.serve(GC_EVENTS, gc_events, {type: self.gc_handler(type) for type in self.gc_handlers},
                       decode=codec.decode_stream, refuse=super().refuse)
            self.core.voice.start()
            self.loop.call_every(HEARTBEAT_INTERVAL, lambda: self.core.voice.beat())
        self.this_turn: list[tuple[str, dict[str, Any], str | None]] = []  # requests since the last commit
        self.unavailable_tasks: OrderedDict[str, None] = OrderedDict()  # Tasks refused UNAVAILABLE, by ledger key
        self.requesters = {type: self.requester(type) for type in REQUESTS}
        self.checks = PasswordChecks(self.ctx, self.directory, self.rerun)
        self.loop.add_reader(self.checks.wake, self.checks.on_checked)
        self.intake.take = self.serve(GENERAL, general, self.requesters,
                                      decode=self.decode_general, defer=(b"Task", self.intake.keep), batch=TURN)
        # new Tasks after what came with them, before the commit that journals them
        self.loop.before_poll.insert(0, self.handle_intake)
        self.serve(COMMUNICATION_SERVER, reports, {type: self.report_handler(type) for type in self.core.reports},
                   batch=TURN)
        # A new Comm knows nothing: an MRE still holding the old one's view must drop it.
        self.to_mre("Snapshot", self.core.snapshot())
        self.heartbeat()
        self.loop.call_every(HEARTBEAT_INTERVAL, self.heartbeat)
        self.loop.call_every(HEARTBEAT_INTERVAL, self.check_desks)
        self.loop.call_every(CONFIRM_EVERY, self.confirm_decisions)
        self.loop.call_every(PROBE_EVERY, self.probe)
        sender = self.sender
        sender.outflows[self.events] = self.subscribers.outflow
        sender.batch_forms[self.events] = self.subscribers.forms
        sender.drop_watch[self.events] = self.subscribers.count_drop
        self.loop.call_every(TRIM_EVERY, self.subscribers.give_back)
        sender.batching.update({self.events: True, self.mre: False})

    def handle_intake(self) -> None:
        if self.intake.handle(DRAIN_SLICE):
            self.loop.behind = True

    def decode_general(self, frames: list[bytes]) -> tuple[str, Any]:
        if len(frames) == 2 and frames[0] == b"Task":
            err = oversized_task(frames[1], self.core.task_requests.limits)
            if err is not None:
                raise err
        return codec.decode(frames, queue=GENERAL)

    def new_core(self, saved: CommState | None) -> CommCore:
        """A core over `saved` (None: afresh), numbering on a stream of its own: a receiver
        that sees a new Stream knows that what it was told before may be incomplete."""
        settings: CommSettings = self.config.settings  # type: ignore[assignment]
        topology = self.config.topology
        stream = f"{os.getpid()}-{time.time_ns()}"
        self.mre_stream, self.mre_seq = stream, 0
        core = CommCore(self.directory, topology["mrds"], send_event=self.to_events,
                        to_mre=self.to_mre, stream=stream, queues=topology.get("queues", {}),
                        call_later=self.loop.call_later, clock=time.monotonic, saved=saved,
                        gc_send=(lambda frames: self.send(self.gc, frames)) if self.has_gc else None,
                        gc_destination=self.name,
                        logout_grace=settings.logout_grace, limits=TaskLimits.of(settings),
                        session_takeover=settings.session_takeover,
                        unavailable=lambda: self.storage.reason, no_room=self.admission.refusal)
        self.gc_handlers = core.gc_handlers()
        return core

    # the current core's handlers, looked up at each call: `revert` replaces the core
    def report_handler(self, type: str) -> Any:
        """What the MRE reports, taken only from the MRE (identity.py, decisions.py): anything
        else on CommunicationServer changes nothing, and is counted and logged."""
        def report(body: dict[str, Any]) -> None:
            core = self.core
            if not is_mre(self.peer):
                self.not_from_mre(type, body, f"sent with the key {self.peer!r}")
                return
            foreign = core.gate.foreign
            core.reports[type](body)
            if core.gate.foreign != foreign:
                self.not_from_mre(type, body, f"on stream {str(body.get('Stream'))[:40]!r}, which Comm never named")
        return report

    def not_from_mre(self, type: str, body: dict[str, Any], why: str) -> None:
        self.counters["not_from_mre"] = self.counters.get("not_from_mre", 0) + 1
        write, unlogged = self.refusal_lines.take()
        if write:
            log.warning("%s: ignored a %s that is not the MRE's: %s%s", self.name, type, why,
                        f" ({unlogged} refusals before this one not logged)" if unlogged else "", extra=ids(body))

    def gc_handler(self, type: str) -> Any:
        return lambda body: self.gc_handlers[type](body)

    def requester(self, type: str) -> Any:
        """What Chat Servers ask, once their key is known to allow the destinations they name
        (identity.py; without CURVE they are taken at their word)."""
        if type != "Task":
            def request(body: dict[str, Any]) -> None:
                self.this_turn.append((type, body, self.peer))
                if self.peer is not None and (err := stated_elsewhere(self.peer, body)) is not None:
                    raise err
                if self.checks.holds(type, body, self.peer):  # a password to check first (checks.py)
                    return
                self.core.request(type, body)
            return request
        trace = self.trace

        def create(body: dict[str, Any]) -> None:
            self.this_turn.append((type, body, self.peer))
            if self.peer is not None and (err := stated_elsewhere(self.peer, body)) is not None:
                raise err
            retry = self.retry_of_unavailable(body)
            if self.checks.holds(type, body, self.peer) or (not retry and self.turned_away(body)):
                return
            at = time.time()
            self.admission.exempt = retry
            try:
                task_id = self.core.request(type, body)
            finally:
                self.admission.exempt = False
            if task_id is not None:  # the task's id exists only from now on: `mroute trace` starts here
                trace.append((at, GENERAL, type, task_id, None, S.QUEUED, None))
        return create

    def rerun(self, type: str, body: dict[str, Any], peer: str | None) -> None:
        """A request that waited for a password check, handled now as if it had just come
        (a refusal told to its sender as any other)."""
        self.peer = peer
        try:
            self.requesters[type](body)
        except WireError as err:
            err.type = err.type or type
            self.refuse(err, body)
        except Exception as exc:  # a bug must not stop the actor serving others
            log.exception("%s: handler failed on %s", self.name, type)
            self.refuse(WireError(S.GENERAL_ERROR, f"internal error: {exc}", type=type), body)

    def retry_of_unavailable(self, body: dict[str, Any]) -> bool:
        """Whether this Task was refused UNAVAILABLE (the journal could not write) and is
        sent again: it is served, not refused again at the door for having come back with
        every other retry at once (after a full disk, 596 of them were refused OVERLOADED)."""
        if not self.unavailable_tasks:
            return False
        msg_id, sender = body.get("MsgId"), sender_of(body)
        return sender is not None and msg_id.__class__ is str and \
            self.unavailable_tasks.pop(ledger_key(sender, msg_id), False) is None

    def turned_away(self, body: dict[str, Any]) -> bool:
        """A new Task refused at the door (TaskRequests.door), before the request machinery
        (the answer bookkeeping, the handler, an exception): under several times the load
        Comm can take, refusals are most of what it handles. A retry of a Task it
        acknowledged is not new: it is answered with the task's state, the usual way."""
        msg_id, sender = body.get("MsgId"), sender_of(body)
        if sender is None or (msg_id is not None and ledger_key(sender, msg_id) in self.core.ledger.seen):
            return False
        full = self.core.task_requests.door()
        if not full:
            return False
        self.refuse(WireError(S.OVERLOADED, full, type="Task"), body)
        return True

    def commit(self) -> None:
        """Journal what this wake-up changed, before the flush sends what it caused."""
        if self.unreadable:  # on our way out: nothing more leaves
            self.sender.outbox.clear()
            return
        # What goes to the MRE leaves before the commit, so that it decides while Comm writes:
        # the MRE is never told what a client has not (its decisions come back through Comm,
        # which journals before telling a desk), and a Comm that reverts a turn, or dies and
        # starts again, sends it a snapshot of what is journaled, which replaces its view.
        sender = self.sender
        if sender.outbox:
            mre = self.mre
            early = [message for message in sender.outbox if message[0] is mre]
            if early:
                sender.outbox = [message for message in sender.outbox if message[0] is not mre]
                sender.send_all(early)
        if self.storage.write(self.core.take_changes()):
            self.this_turn.clear()
        else:
            self.revert()

    def revert(self) -> None:
        """Undo the wake-up whose changes the journal could not write (module docstring).
        The sockets, the GC link and the desks' liveness carry on; the MRE gets a snapshot
        of the journaled state, and Chat Servers, seeing a new Stream, ask for theirs. The
        requests of the wake-up are handled again, by the reloaded Comm: each is answered
        (a change refused UNAVAILABLE, a query from what is journaled), none left waiting
        for an answer that was never sent."""
        undone, self.sender.outbox = len(self.sender.outbox), []
        replay, self.this_turn = self.this_turn, []
        old = self.core
        old.retire()
        try:  # an empty journal: the epoch goes on (nothing of this one was journaled, nor sent)
            saved = self.storage.load() or CommState(task_prefix=old.tasks.prefix)
        except (sqlite3.Error, OSError) as exc:
            # Neither written nor read: what memory holds is ahead of what is durable, and
            # nothing here can tell which part. A restarted Comm reads what is journaled.
            self.unreadable = f"journal write failed ({self.storage.failure}), then reading it failed ({exc})"
            log.critical("%s: %s: stopping, to be restarted from the journal", self.name, self.unreadable)
            self.loop.stop(self.unreadable)
            return
        self.core = self.new_core(saved)
        self.core.take_over(old)
        self.counters["reverted"] = self.counters.get("reverted", 0) + 1
        log.warning("%s: undid a wake-up the journal could not write (%d messages not sent); "
                    "serving from the journal: %d agents, %d tasks", self.name, undone,
                    len(self.core.agents.sessions), len(self.core.tasks.live))
        if self.has_gc and not self.core.voice.live:
            self.core.voice.start()
        self.to_mre("Snapshot", self.core.snapshot())
        self.heartbeat()
        for type, body, peer in replay:
            self.rerun(type, body, peer)
        self.intake.restamp()

    def probe(self) -> None:
        """While degraded: the first write that goes through ends it."""
        if self.storage.failure and self.storage.probe():
            self.core.caught_up()

    def check_desks(self) -> None:
        """Silent desks' agents go UNKNOWN, then out: changes, left while nothing may change
        (a desk's silence is judged afresh when it ends)."""
        if not self.storage.failure:
            self.core.desks.check()

    def degraded(self) -> str:
        return self.unreadable or self.storage.reason

    def confirm_decisions(self) -> None:
        """Confirm the MRE's decisions applied so far, a few times a second rather than once
        a wake-up (the MRE resends after 0.5 s). Timers run before the commit and the flush
        of the same turn of the loop: what a Confirm covers is journaled before it leaves."""
        for confirm in self.core.gate.confirmations():
            self.to_mre("Confirm", confirm)

    def close(self) -> None:
        if getattr(self, "checks", None) is not None:
            self.checks.close()
        if getattr(self, "core", None) is not None and not self.unreadable:  # start() may have failed before it
            if not self.storage.write(self.core.take_changes()):
                self.sender.outbox = []  # not journaled: not sent, as after a crash
        super().close()
        if getattr(self, "storage", None) is not None and self.storage.journal is not None:
            self.storage.journal.close()

    def heartbeat(self) -> None:
        """Every subscriber hears it: one full subscriber keeps it from all (ZMQ_XPUB_NODROP
        refuses a message any matching subscriber cannot take), so it is not numbered, and
        one not sent is no drop. It says which Comm speaks: `Epoch` (task ids, the journal)
        and `Stream` (the process)."""
        self.to_events(codec.encode_pub(HEARTBEAT_TOPIC, HEARTBEAT, {"Epoch": self.core.tasks.prefix,
                                                                     "Stream": self.core.out.stream}))

    def to_events(self, frames: list[bytes]) -> None:
        if self.tapped and b"ChatEvents" in self.tapped_queues:  # `mroute tap` reads a copy, never our socket
            self.mirror(CHAT_EVENTS, frames)
        self.send(self.events, frames)

    def to_mre(self, type: str, body: dict[str, Any]) -> None:
        """Every message to the MRE is numbered within this process's stream; a Snapshot
        carries the number of the last update it includes. The MRE applies updates in
        order from its snapshot on, and asks for a new snapshot when one is missing."""
        if type != "Snapshot":
            self.mre_seq += 1
        self.send(self.mre, codec.encode(type, {**body, "Seq": self.mre_seq, "Stream": self.mre_stream}))

    def refuse(self, err: WireError, body: Any) -> None:
        super().refuse(err, body)
        self.core.refuse(err, body)
        if err.code == S.UNAVAILABLE and err.type == "Task" and body.__class__ is dict:
            msg_id, sender = body.get("MsgId"), sender_of(body)
            if msg_id.__class__ is str and sender is not None:  # its retry is served (retry_of_unavailable)
                self.unavailable_tasks[ledger_key(sender, msg_id)] = None
                if len(self.unavailable_tasks) > UNAVAILABLE_KEPT:
                    self.unavailable_tasks.popitem(last=False)

    def control_verbs(self) -> dict[str, Any]:
        return {"flush": lambda body: self.core.flush(str(body.get("task", ""))),
                "desks_closed": lambda body: self.core.desks_closed([str(d) for d in body.get("desks") or []]),
                "account": lambda body: self.core.account(int(body.get("count", 0))),
                "agents": lambda body: self.core.agents.team(int(body.get("limit", TEAM_LIMIT)))}

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.core.stats(), **self.storage.stats(), **self.admission.stats(),
                **self.checks.stats(),
                **self.subscribers.stats()}
