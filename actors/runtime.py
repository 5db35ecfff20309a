"""The runtime every actor shares: sockets from the topology, the one receive path (decode,
validate, dispatch by message type, refuse), the way out (sending.py), the tap,
and the lifecycle the supervisor drives (READY handshake, stats, stop). The loop itself is
wire/kernel/loop.py (zeromq-rules 1-3, 9, 10, 12-14, 17).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import zmq

from actors.frames import recv_frames, recv_frames_with_peer, send_frames
from actors.lograte import LogBudget
from actors.sending import Sender
from actors.zap import Door
from wire import codec, control
from wire.codec import BATCH, WireError, unbatch
from wire.curve import ACTORS, Curve, from_security
from wire.kernel.loop import Loop
from wire.kernel.settings import SETTINGS, ActorSettings
from wire.states import GENERAL_ERROR

log = logging.getLogger("mroute")

Decode = Callable[[list[bytes]], tuple[str, Any]]

TRACE_KEPT = 20_000  # messages remembered per actor for `mroute trace`
DRAIN_BATCH = 512  # messages taken from one socket per wake-up before others get a turn
# Wall-clock seconds one socket is read per wake-up before the others, the commit and the
# outbox get a turn (issue 15). A turn is a hop's latency for everything it causes: with
# turns of thousands of messages, Comm and the MRE waited on each other's 20-50 ms turns in
# lockstep, every hop of an agent's next task took a whole turn, and under overload agents
# sat waiting for offers (completed/s at twice the peak: 4,550-5,620, median 5,110). With
# 5 ms slices: 5,070-6,260, median 5,900 (five runs each, same hour).
DRAIN_SLICE = 0.005
MAX_FRAME = 4096    # bytes in one frame a bound socket takes, unless said (Actor.socket)

def ids(body: dict[str, Any]) -> dict[str, Any]:
    """The TaskId and AgentId a message names, for a log line's `extra`."""
    return {key: body[key] for key in ("TaskId", "AgentId") if isinstance(body.get(key), str)}


def bind_address(endpoint: str, any_interface: bool) -> str:
    """Where to bind a documented endpoint. Under an orchestrator (`mroute actor`) a tcp
    endpoint names a Service, whose address is not this pod's: bind every interface on its
    port, and let the Service bring its clients here."""
    if any_interface and endpoint.startswith("tcp://"):
        return f"tcp://*:{endpoint.rpartition(':')[2]}"
    return endpoint


@dataclass
class ActorConfig:
    name: str                 # instance name, e.g. chat.1
    role: str
    index: int                # instance number, 1-based
    run_dir: str
    endpoints: dict[str, str]
    topology: dict[str, Any]  # the resolved topology (mrds, queues, agents, actors)
    settings: ActorSettings = None  # type: ignore[assignment]  # this actor's entry; None: its role's defaults

    def __post_init__(self) -> None:
        if self.settings is None:
            self.settings = SETTINGS.get(self.role, ActorSettings)(role=self.role)


class Actor:
    """Base of every role. A role binds or connects its sockets in `start` and registers
    each queue it consumes, with its table of handlers, through `serve`."""

    role = ""

    def __init__(self, ctx: zmq.Context, config: ActorConfig, loop: Loop):
        self.ctx = ctx
        self.config = config
        self.name = config.name
        self.loop = loop
        self.sockets: list[zmq.Socket] = []
        self.counters: dict[str, int] = {"received": 0, "sent": 0, "refused": 0}
        self.control: zmq.Socket | None = None  # the DEALER to the supervisor, set by main
        self.sender = Sender(self.name, loop, self.counters)   # the way out: outbox, batches, outflows
        loop.before_poll.append(self.end_turn)
        self.door: Door | None = None  # the ZAP handler and its counts, when the topology asks for CURVE
        # (time, queue, type, TaskId, AgentId, State, Code) of the last messages taken that name
        # a task: `mroute trace` puts every actor's together into a task's path
        self.trace: deque[tuple[float, str, str, str, Any, Any, Any]] = deque(maxlen=TRACE_KEPT)
        self.tap: zmq.Socket | None = None
        self.tapped_queues: set[bytes] = set()
        self.tapped = False
        self.refusal_lines = LogBudget()  # a warning per refusal, up to a budget: the rest counted
        self.curve_servers: set[zmq.Socket] = set()  # sockets whose messages say who sent them
        self.peer: str | None = None  # who sent the message being handled (serve), under CURVE

    # sockets -------------------------------------------------------------------------
    def socket(self, kind: int, *, bind: str | None = None, connect: str | None = None,
               hwm: int = 100_000, options: dict[int, int] | None = None,
               max_frame: int = MAX_FRAME) -> zmq.Socket:
        """A socket bound or connected as the topology says (`options`: set before either).

        A socket we bind takes no frame over `max_frame` bytes (ZMQ_MAXMSGSIZE): without it
        twenty 50 MB frames on General took Comm to 1.09 GB. libzmq drops the connection of
        a peer that sends one and tells only that it dropped a connection: those are counted
        (`disconnects` in the stats: every connection our bound sockets lost, these among
        them)."""
        sock = self.ctx.socket(kind)
        sock.linger = 1000
        sock.sndhwm = hwm
        sock.rcvhwm = hwm
        sock.setsockopt(zmq.RECONNECT_IVL, 20)
        for option, value in (options or {}).items():
            sock.setsockopt(option, value)
        if bind:
            sock.maxmsgsize = max_frame
        curve = from_security(self.config.topology.get("security"))
        if curve is not None and bind:
            if self.door is None:  # lets in only the allowed keys, for every socket we bind
                self.door = Door(self.ctx, self.name, curve.allowed_keys(), reload=curve.allowed_keys)
                self.door.start()
            curve.serve(sock)
            self.door.watch(sock)
            self.curve_servers.add(sock)
        elif curve is not None:
            curve.connect_as(sock, self.curve_key(curve))
        if bind and self.door is None:  # (the door watches its sockets' disconnects itself)
            self.watch_disconnects(sock)
        if bind:
            sock.bind(bind_address(bind, bool(self.config.topology.get("bind_any"))))
        if connect:
            sock.connect(connect)
        self.sockets.append(sock)
        return sock

    def watch_disconnects(self, sock: zmq.Socket) -> None:
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        monitor.linger = 0
        self.sockets.append(monitor)

        def disconnected() -> None:
            while (frames := recv_frames(monitor)) is not None:
                self.counters["disconnects"] = self.counters.get("disconnects", 0) + 1
        self.loop.add_reader(monitor, disconnected)

    def end_turn(self) -> None:
        """What ends a turn of the loop, once what it read was handled: what it caused leaves."""
        self.sender.flush()

    def serve(self, queue: str, sock: zmq.Socket, handlers: Mapping[str, Callable[[Any], None]] | None = None, *,
              dispatch: Callable[[str, Any, str | None], None] | None = None,
              decode: Decode | None = None, refuse: Callable[[WireError, Any], None] | None = None,
              refusals: tuple[type[Exception], ...] = (),
              defer: tuple[bytes, Callable[[list[bytes], str | None], None]] | None = None,
              batch: int = DRAIN_BATCH) -> Callable[[list[bytes], str | None], None]:
        """The one receive path of every actor: take what `sock` holds (a batch per wake-up),
        count it, mirror it to a listening tap, decode it, remember it for `mroute trace`,
        call the handler of its type (a table: adding a message is adding an entry) and
        refuse what cannot be accepted, without ever stopping the loop.

        `dispatch(type, message, peer)`, when given instead of `handlers`, takes every
        message the codec lets through (a role with a registry of its own: Comm's turn.py).
        `decode(frames) -> (type, message)` is the queue's codec (default: the catalogue's,
        for `queue`); `refuse(err, message)` tells the sender (default: a counted log line);
        `refusals` are a codec's own refusal exceptions, turned into WireError by
        `as_refusal` before `refuse` sees them. A handler's unexpected exception is a bug: it
        is logged with its traceback and refused GENERAL_ERROR, and the actor goes on.
        `defer` = (type, keep): messages of that type, alone or in a batch (the layout
        without a topic, as on a PULL queue), are given to `keep` unread with their sender, to
        be taken later with the `take` this returns (Comm's new Tasks wait in its intake,
        behind what is said about the tasks it holds, never the other way). A read takes at
        most `batch` messages, or DRAIN_SLICE seconds, before other sockets get theirs.

        While a handler runs, `self.peer` is who sent its message: on a CURVE server socket
        the name of the client's key (zap.py), which a role may hold it to; else None, and
        the sender is only what the message says."""
        counters = self.counters
        trace = self.trace
        tap_name = queue.encode()
        decode = decode or partial(codec.decode, queue=queue)
        refuse = refuse or self.refuse
        errors = (WireError, *refusals)
        table = handlers or {}

        def take(frames: list[bytes], peer: str | None = None) -> None:
            counters["received"] += 1
            self.peer = peer
            if self.tapped and tap_name in self.tapped_queues:
                self.mirror(queue, frames)
            message: Any = {}
            type = ""
            try:
                type, message = decode(frames)
                body = message if message.__class__ is dict else getattr(message, "body", None)  # (a client's)
                if body.__class__ is dict:
                    task_id = body.get("TaskId")
                    if task_id.__class__ is str and len(task_id) <= 256:
                        trace.append((time.time(), queue, type, task_id, body.get("AgentId"),
                                      body.get("State"), body.get("Code")))
                if dispatch is not None:
                    dispatch(type, message, peer)
                    return
                handler = table.get(type)
                if handler is None:
                    raise WireError("BAD_MESSAGE", f"{self.role} does not handle {type} on {queue}", type=type,
                                    msg_id=message.get("MsgId") if message.__class__ is dict else None)
                handler(message)
            except errors as exc:  # (no local of this frame may hold it: a cycle through its traceback)
                refuse(self.refusal(exc, type), message)
            except Exception as exc:  # a bug must not stop the actor serving others
                log.exception("%s: handler failed on %s", self.name, frames[:1])
                refuse(WireError(GENERAL_ERROR, f"internal error: {exc}",
                                 type=type or frames[0].decode("ascii", "replace")[:60],
                                 msg_id=message.get("MsgId") if message.__class__ is dict else None), message)

        clock = time.perf_counter

        deferred, keep = defer if defer is not None else (None, None)
        # a CURVE server socket says who sent each message (the key's name), others nobody
        curve = sock in self.curve_servers

        def drain() -> None:
            over = clock() + DRAIN_SLICE
            peer = None
            for _ in range(batch):
                if curve:
                    frames, peer = recv_frames_with_peer(sock)
                else:
                    frames = recv_frames(sock)
                if frames is None:
                    break
                if frames[0] == deferred:
                    keep(frames, peer)  # type: ignore[misc]
                elif frames[0] == BATCH or (len(frames) > 3 and frames[1] == BATCH):
                    for message in unbatch(frames):
                        if message[0] == deferred:
                            keep(message, peer)  # type: ignore[misc]
                        else:
                            take(message, peer)
                else:
                    take(frames, peer)
                if clock() > over:  # what is left waits for the next poll, which returns at once
                    break
        self.loop.add_reader(sock, drain)
        return take

    def curve_key(self, curve: Curve) -> str | Path:
        """The key this actor connects with under CURVE: our actors' (wire/curve.py says
        who holds which); the MRE and the Chat Servers have keys of their own."""
        return ACTORS

    def refusal(self, exc: Exception, type: str) -> WireError:
        """`exc`, refused while `type` was handled, as the WireError its sender is told.
        Made here, not in the frame that caught it: a local there that held it would be a
        reference cycle through its traceback, every refusal garbage that only Python's
        cycle collector frees (under overload thousands a second, and its pauses with them)."""
        err = exc if isinstance(exc, WireError) else self.as_refusal(exc)
        err.type = err.type or type
        return err

    def as_refusal(self, exc: Exception) -> WireError:
        """A codec's own refusal as a WireError (roles whose codec has one override this)."""
        return WireError(GENERAL_ERROR, str(exc))

    # the tap: what we take from our queues, mirrored while `mroute tap` listens ---------
    def open_tap(self) -> None:
        tap_dir = self.config.topology.get("tap_dir")
        if not tap_dir:
            return
        self.tap = self.ctx.socket(zmq.XPUB)
        self.tap.linger = 0
        self.tap.sndhwm = 10_000  # a slow tap loses lines, never slows us
        try:
            self.tap.bind(f"ipc://{tap_dir}/{control.tap_file(self.name)}")
        except zmq.ZMQError as exc:  # no tap is no reason not to serve
            log.warning("%s: no tap socket: %s", self.name, exc)
            self.tap.close(0)
            self.tap = None
            return
        self.sockets.append(self.tap)
        self.loop.add_reader(self.tap, self.on_tap_subscription)

    def on_tap_subscription(self) -> None:
        """XPUB passes on the first subscription to a queue and the last unsubscription:
        mirror while any queue of ours is tapped."""
        while (frames := recv_frames(self.tap)) is not None:
            flag, queue = frames[0][:1], frames[0][1:]
            if flag == b"\x01":
                self.tapped_queues.add(queue)
            elif flag == b"\x00":
                self.tapped_queues.discard(queue)
            self.tapped = bool(self.tapped_queues)

    def mirror(self, queue: str, frames: list[bytes]) -> None:
        try:
            send_frames(self.tap, [queue.encode(), *frames])
        except zmq.ZMQError:  # full: the tap misses it
            pass

    def send(self, sock: zmq.Socket, frames: list[bytes]) -> None:
        """Queue a message: it leaves with the rest of this wake-up's (sending.py)."""
        self.sender.outbox.append((sock, frames))

    def refuse(self, err: WireError, body: dict[str, Any]) -> None:
        """Tell the sender why its message was refused; roles with a way back override."""
        self.counters["refused"] += 1
        write, unlogged = self.refusal_lines.take()
        if not write:
            self.counters["refusals_unlogged"] = self.refusal_lines.unlogged_total
            return
        log.warning("%s refused %s: %s %s%s%s", self.name, err.type or "message", err.code, err.reason,
                    f" (field {err.field})" if err.field else "",
                    f" ({unlogged} refusals before this one not logged)" if unlogged else "", extra=ids(body))

    # lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Bind or connect every socket and load state; READY is sent after this returns."""

    def ready(self) -> bool:
        """False while the actor still waits for something before it is READY (e.g. a
        confirmed subscription); it calls `announce_ready` itself when it is."""
        return True

    def announce_ready(self) -> None:
        log.info("%s READY (pid %d)", self.name, os.getpid())
        if self.control is not None:
            self.control.send_multipart(control.frames("", control.READY, {"pid": os.getpid()}))

    def stop(self) -> None:
        """Called once when the loop has ended, before sockets close."""

    def degraded(self) -> str:
        """Why this actor serves only in part now (Comm: its journal cannot write), or "":
        said in every ping answer, the supervisor shows it as the state DEGRADED."""
        return ""

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"counters": dict(self.counters), "tapped": self.tapped}
        if self.door is not None:  # CURVE handshakes let in and refused, connections lost
            stats["auth"] = self.door.stats()
            stats["counters"]["disconnects"] = self.door.disconnects
        return stats

    def traced(self, task_id: str) -> list[dict[str, Any]]:
        return [{"at": at, "queue": queue, "type": type, "agent": agent, "state": state, "code": code}
                for at, queue, type, task, agent, state, code in self.trace if task == task_id]

    def control_verbs(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """Operator commands this role answers on its control channel (beyond ping, stats
        and stop), e.g. Comm's `flush`. A handler raises WireError to refuse."""
        return {}

    def close(self) -> None:
        self.sender.flush()
        for sock in self.sockets:
            sock.close(linger=200)
        if self.door is not None:
            self.door.stop()
