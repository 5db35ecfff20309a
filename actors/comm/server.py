"""The Communication Server process: `CommCore` behind the documented queues.

Binds `General` and `CommunicationServer` (PULL) and `ChatEvents` (XPUB); pushes to the
MRE's `RoutingEngine` and, when the topology has one, to the Generic Connector, whose
`GCEvents` it subscribes to. What it reads is applied through its `Turn` (turn.py), which
journals what a turn changed before anything it caused reaches a Chat Server or the GC.
"""

from __future__ import annotations

from typing import Any

import zmq

from actors.outflow import Outflow
from actors.runtime import Actor, log
from wire import codec
from wire.catalogue import (CHAT_EVENTS, COMMUNICATION_SERVER, GC, GC_EVENTS, GENERAL, HEARTBEAT,
                            HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC, ROUTING_ENGINE)
from wire.codec import WireError
from wire.kernel.rundir import journal_path
from wire.kernel.settings import CommSettings

from .admission import TaskLimits
from .checks import PasswordChecks
from .core import CommCore
from .identity import may_use
from .intake import Intake
from .journal import Journal
from .ledger import ledger_key
from .storage import PROBE_EVERY, Storage
from .subscribers import HEARTBEAT_FRAME, TRIM_EVERY, Subscribers
from .task_requests import oversized_task, stated_sender
from .turn import Turn, new_stream

# What Comm holds for the Chat Servers (outflow.py): ZeroMQ queues at most comm.events_hwm
# messages (batches of at most 64 KB) for a subscriber; past that it waits in Comm, counted in
# bytes: at most comm.receiver_bytes a destination and comm.receivers_bytes in all (their
# defaults: wire/kernel/settings.py), then dropped and counted; the receiver sees the gap and resyncs.
MRE_HWM = 1024
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
        has_gc = any(spec["role"] == "gc" and spec.get("count", 1) > 0 for spec in topology["actors"].values())
        self.gc = self.socket(zmq.PUSH, connect=endpoints[GC]) if has_gc else None
        directory = agent_directory(topology)
        self.intake = Intake(lambda: self.loop.wakes, settings.admission_budget)
        journal = Journal(journal_path(self.config.run_dir), checkpoints=True) if settings.journal else None
        self.storage = Storage(journal)
        saved = self.storage.load()
        self.core = CommCore(directory, topology["mrds"], send_event=self.to_events,
                             send_mre=lambda frames: self.send(self.mre, frames), stream=new_stream(),
                             queues=topology.get("queues", {}), call_later=self.loop.call_later, saved=saved,
                             gc_send=(lambda frames: self.send(self.gc, frames)) if has_gc else None,
                             gc_destination=self.name, logout_grace=settings.logout_grace,
                             limits=TaskLimits.of(settings), session_takeover=settings.session_takeover,
                             unavailable=lambda: self.storage.reason, intake=self.intake)
        if saved is not None:
            log.info("%s: carried on from the journal: %d agents, %d tasks (epoch %s)", self.name,
                     len(saved.sessions), len(saved.tasks), saved.task_prefix)
            self.core.resume()
        self.checks = PasswordChecks(self.ctx, directory, lambda type, body, peer: self.turn.rerun(type, body, peer))
        self.loop.add_reader(self.checks.wake, self.checks.on_checked)
        self.turn = Turn(self.name, self.core, self.storage, self.sender, self.mre, self.intake, self.checks,
                         self.loop, refuse=self.refuse, after_revert=self.heartbeat, counters=self.counters,
                         refusal_lines=self.refusal_lines, trace=self.trace)
        if has_gc:
            gc_events = self.socket(zmq.SUB, connect=endpoints[GC_EVENTS])
            gc_events.setsockopt(zmq.SUBSCRIBE, codec.topic(self.name))
            # a bad event cannot be answered (the GC takes commands, not errors): counted and logged
            self.serve(GC_EVENTS, gc_events, dispatch=self.turn.gc_event, decode=codec.decode_stream,
                       refuse=super().refuse)
            self.core.voice.start()
            self.loop.call_every(HEARTBEAT_INTERVAL, self.core.voice.beat)
        self.intake.take = self.serve(GENERAL, general, dispatch=self.turn.request, decode=self.decode_general,
                                      defer=(b"Task", self.intake.keep), batch=TURN)
        self.intake.refuse_unread = self.refuse_unread
        self.serve(COMMUNICATION_SERVER, reports, dispatch=self.turn.report, batch=TURN)
        # A new Comm knows nothing: an MRE still holding the old one's view must drop it.
        self.core.out.to_mre("Snapshot", self.core.snapshot())
        self.heartbeat()
        self.loop.call_every(HEARTBEAT_INTERVAL, self.heartbeat)
        self.loop.call_every(HEARTBEAT_INTERVAL, self.check_desks)
        self.loop.call_every(CONFIRM_EVERY, self.core.mre.confirmations)
        self.loop.call_every(PROBE_EVERY, self.probe)
        sender = self.sender
        sender.outflows[self.events] = self.subscribers.outflow
        sender.batch_forms[self.events] = self.subscribers.forms
        sender.drop_watch[self.events] = self.subscribers.count_drop
        self.loop.call_every(TRIM_EVERY, self.subscribers.give_back)
        sender.batching.update({self.events: True, self.mre: False})

    def end_turn(self) -> None:
        self.turn.end()

    def refuse_unread(self, frames: list[bytes], peer: str | None) -> bool:
        """Refuse a Task that waited at the door past its budget without decoding it: at
        twice the peak, decoding the Tasks refused so was a twentieth of Comm's time, which
        its acceptances and closes then lacked. Only when its bytes say plainly who sent it
        and it cannot be anything but new: not a retry the ledger answers, nor one refused
        UNAVAILABLE (the door serves those), nor from a desk whose requests wait for a
        password check (they keep their order), nor a name its key may not use, nor while
        `mroute tap` listens. Else it goes the whole way, to the same refusal. A Task that
        is malformed besides is told OVERLOADED, and what is wrong with it when it comes back."""
        stated = stated_sender(frames[1]) if len(frames) == 2 and not self.tapped else None
        if stated is None:
            return False
        reply_to, msg_id = stated
        core, handled = self.core, ledger_key(reply_to, msg_id)
        if handled in core.ledger.seen or handled in core.admission.unavailable or reply_to in self.checks.desks \
                or not may_use(peer, reply_to):
            return False
        self.turn.unread.append((frames, peer))   # answered again if the turn is undone
        self.counters["received"] += 1
        core.admission.unread += 1
        core.desks.message_from(reply_to)
        body = {"MsgId": msg_id, "ReplyTo": reply_to}
        self.refuse(core.admission.waited_too_long(self.intake, type="Task", msg_id=msg_id, reply_to=reply_to), body)
        return True

    def decode_general(self, frames: list[bytes]) -> tuple[str, Any]:
        if len(frames) == 2 and frames[0] == b"Task":
            err = oversized_task(frames[1], self.core.admission.limits)
            if err is not None:
                try:
                    raise err
                finally:  # not held by this frame, which its traceback holds: no cycle (Actor.refusal)
                    del err
        return codec.decode(frames, queue=GENERAL)

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
        return self.turn.unreadable or self.storage.reason

    def close(self) -> None:
        if getattr(self, "checks", None) is not None:
            self.checks.close()
        if getattr(self, "turn", None) is not None and not self.turn.unreadable:  # start() may have failed before it
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

    def refuse(self, err: WireError, body: Any) -> None:
        super().refuse(err, body)
        self.core.refuse(err, body)

    def control_verbs(self) -> dict[str, Any]:
        return self.core.operator.verbs()

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.core.stats(), **self.storage.stats(), **self.checks.stats(),
                **self.subscribers.stats()}
