"""The Communication Server process: CommLogic behind the documented queues.

Binds `General` and `CommunicationServer` (PULL) and `ChatEvents` (PUB); pushes to the
MRE's `RoutingEngine`. Every refusal goes back to its sender as `Error`.
"""

from __future__ import annotations

import os
import time
from functools import partial
from typing import Any

import zmq

import orjson

from actors.runtime import Actor, log
from wire import codec, gc as gc_wire
from wire.catalogue import (CHAT_EVENTS, COMMUNICATION_SERVER, GC, GC_EVENTS, GENERAL, HEARTBEAT,
                            HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC, ROUTING_ENGINE)
from wire.codec import WireError

from .journal import Journal, journal_path
from .logic import CommLogic


def agent_directory(topology: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What Comm reads of each directory entry: its password's hash and its extension. At
    100,000 agents the full entries (names, teams, attributes) would cost Comm about 1 KB
    an agent; the topology's copy is let go."""
    directory = {agent["id"]: {"password_hash": agent["password_hash"], "extension": agent.get("extension", "")}
                 for agent in topology["agents"]}
    topology["agents"] = []
    return directory


# queue -> message type -> the CommLogic method that handles it
HANDLERS = {
    GENERAL: {"Connect": "on_connect", "Login": "on_login", "AgentState": "on_agent_state",
              "Task": "on_task", "TaskState": "on_task_state", "Transfer": "on_transfer",
              "Conference": "on_conference", "GetAgentState": "on_get_agent_state",
              "GetTaskState": "on_get_task_state", "Heartbeat": "on_heartbeat"},
    COMMUNICATION_SERVER: {"TaskAgentSelected": "on_agent_selected",
                           "TaskAgentTransferred": "on_agent_transferred",
                           "TaskConferenced": "on_conferenced", "Resync": "on_resync"},
}


GC_BACKLOG = 10_000  # voice commands kept while the GC is not confirmed yet

# Answering a query twice is harmless, so a repeated MsgId is not dropped for these.
QUERIES = frozenset({"GetAgentState", "GetTaskState", "Resync", "Heartbeat"})


class Comm(Actor):
    role = "comm"

    def start(self) -> None:
        endpoints = self.config.endpoints
        self.events = self.socket(zmq.PUB, bind=endpoints[CHAT_EVENTS])
        self.mre = self.socket(zmq.PUSH, connect=endpoints[ROUTING_ENGINE])
        general = self.socket(zmq.PULL, bind=endpoints[GENERAL])
        reports = self.socket(zmq.PULL, bind=endpoints[COMMUNICATION_SERVER])
        topology = self.config.topology
        has_gc = any(spec["role"] == "gc" and spec.get("count", 1) > 0 for spec in topology["actors"].values())
        self.mre_stream = f"{os.getpid()}-{time.time_ns()}"  # a restarted Comm numbers afresh
        self.mre_seq = 0
        self.journal = Journal(journal_path(self.config.run_dir)) if self.config.settings.get("journal", True) else None
        state = self.journal.load() if self.journal is not None else None
        self.logic = CommLogic(agent_directory(topology), topology["mrds"], self.publish, self.to_mre,
                               queues=topology.get("queues", {}), call_later=self.loop.call_later,
                               gc=self.to_gc if has_gc else None, gc_destination=self.name, state=state,
                               logout_grace=float(self.config.settings.get("logout_grace", 10.0)),
                               max_live_tasks=int(self.config.settings.get("max_live_tasks", 100_000)))
        if state is not None:
            log.info("%s: carried on from the journal: %d agents, %d tasks (epoch %s)", self.name,
                     len(state.sessions), len(state.tasks), state.task_prefix)
            self.logic.resume()
        # Nothing leaves before what caused it is journaled: the commit runs before the flush.
        self.loop.before_poll.insert(0, self.commit)
        self.gc_live = False                       # our GC subscription is confirmed
        self.gc_epoch: str | None = None
        self.gc_status: str | None = None
        self.gc_backlog: list[list[bytes]] = []    # voice commands waiting for that
        if has_gc:
            self.gc = self.socket(zmq.PUSH, connect=endpoints[GC])
            self.gc_events = self.socket(zmq.SUB, connect=endpoints[GC_EVENTS])
            self.gc_events.setsockopt(zmq.SUBSCRIBE, codec.topic(self.name))
            self.loop.add_reader(self.gc_events, self.drain_gc_events)
            self.hello_gc()
        for queue, sock in ((GENERAL, general), (COMMUNICATION_SERVER, reports)):
            self.serve(queue, sock, {type: partial(self.handle, getattr(self.logic, name), type)
                                     for type, name in HANDLERS[queue].items()})
        # A new Comm knows nothing: an MRE still holding the old one's view must drop it.
        self.to_mre("Snapshot", self.logic.snapshot())
        self.beats = 0
        self.heartbeat()
        self.loop.call_every(HEARTBEAT_INTERVAL, self.heartbeat)
        self.loop.call_every(HEARTBEAT_INTERVAL, self.logic.check_liveness)

    def to_gc(self, command: str, agent_id: str, *params: str) -> None:
        frames = gc_wire.frames(command, agent_id, *params)
        if self.gc_live:
            self.send(self.gc, frames)
        elif len(self.gc_backlog) < GC_BACKLOG:
            self.gc_backlog.append(frames)

    def hello_gc(self) -> None:
        """Say Hello until the GC's System answer arrives on our topic: until then what it
        publishes to us (our agents' voice states) could be lost (zeromq-rules 7)."""
        if not self.gc_live:
            self.send(self.gc, gc_wire.frames("Hello", self.name))
            self.loop.call_later(0.05, self.hello_gc)

    def gc_went_live(self) -> None:
        self.gc_live = True
        for frames in self.gc_backlog:
            self.send(self.gc, frames)
        self.gc_backlog.clear()
        self.loop.call_every(HEARTBEAT_INTERVAL, lambda: self.send(self.gc, gc_wire.frames("Beat", self.name)))

    def on_gc_system(self, event: dict[str, Any]) -> None:
        """A GC that restarted knows none of our agents: log the voice agents in again."""
        epoch, status = event.get("epoch"), event.get("status")
        if self.gc_epoch is not None and epoch != self.gc_epoch:
            log.warning("the GC restarted (epoch %s -> %s): logging voice agents in again", self.gc_epoch, epoch)
            self.logic.voice_login_all()
        elif self.gc_status == "OUT_OF_SERVICE" and status == "IN_SERVICE":
            log.info("the voice side is back: logging voice agents in again")
            self.logic.voice_login_all()
        self.gc_epoch, self.gc_status = epoch, status

    def drain_gc_events(self) -> None:
        for _ in range(512):
            try:
                _topic, type, raw = self.gc_events.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not self.gc_live:
                self.gc_went_live()
            if type == b"State":
                self.logic.on_voice_state(event)
            elif type == b"System":
                self.on_gc_system(event)
            elif type == b"Error":
                log.warning("GC refused %s: %s %s", event.get("command"), event.get("code"), event.get("message"))

    def commit(self) -> None:
        logic = self.logic
        if not (logic.touched_agents or logic.touched_tasks or logic.touched_msg_ids or logic.touched_watch):
            return
        if self.journal is not None:
            self.journal.save(logic.state, logic.touched_agents, logic.touched_tasks, logic.touched_msg_ids)
        logic.touched_agents.clear()
        logic.touched_tasks.clear()
        logic.touched_msg_ids.clear()
        logic.touched_watch = False

    def close(self) -> None:
        if getattr(self, "logic", None) is not None:  # start() may have failed before
            self.commit()
        super().close()
        if getattr(self, "journal", None) is not None:
            self.journal.close()

    def heartbeat(self) -> None:
        self.beats += 1
        self.publish(HEARTBEAT_TOPIC, HEARTBEAT, {"Epoch": self.logic.epoch, "Seq": self.beats})

    def publish(self, destination: str, type: str, body: dict[str, Any]) -> None:
        self.send(self.events, codec.encode_pub(destination, type, body))

    def to_mre(self, type: str, body: dict[str, Any]) -> None:
        """Every message to the MRE is numbered within this process's stream; a Snapshot
        carries the number of the last update it includes. The MRE applies updates in
        order from its snapshot on, and asks for a new snapshot when one is missing."""
        if type != "Snapshot":
            self.mre_seq += 1
        self.send(self.mre, codec.encode(type, {**body, "Seq": self.mre_seq, "Stream": self.mre_stream}))

    def refuse(self, err: WireError, body: dict[str, Any]) -> None:
        super().refuse(err, body)
        if err.msg_id is None and isinstance(body.get("MsgId"), str):
            err.msg_id = body["MsgId"]
        dest = err.reply_to or self.logic.reply_destination(body) or codec.UNROUTED_ERRORS
        self.send(self.events, codec.error_frames(err, dest))

    def handle(self, method: Any, type: str, body: dict[str, Any]) -> None:
        """Apply a request once (a repeated MsgId is answered, not applied again) and make
        sure one message carrying its MsgId goes back to its sender: an answer, an Error,
        or an Ack. That is the acknowledgement a sender resends until it gets."""
        msg_id, reply_to = body.get("MsgId"), body.get("ReplyTo")
        logic = self.logic
        logic.ack_to = (reply_to, msg_id) if msg_id.__class__ is str and reply_to.__class__ is str else None
        try:
            if type in QUERIES or not logic.duplicate(type, body):
                method(body)
                logic.handled(body)
                if type == "Task" and msg_id.__class__ is str:  # the task's id exists only from now on
                    self.trace.append((time.time(), GENERAL, type, logic.state.seen.get(msg_id, ""), None))
            logic.acknowledge(type)
        finally:
            logic.ack_to = None  # a refusal is answered with an Error that carries the MsgId

    def control_verbs(self) -> dict[str, Any]:
        return {"flush": lambda body: self.logic.flush(str(body.get("task", "")))}

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.logic.stats()}

