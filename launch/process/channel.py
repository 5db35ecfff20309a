"""The runner's end of the actors' control channel (wire/control.py): a ROUTER to which every
actor connects a DEALER named after its instance; the supervisor has one for all its
actors, a pod's runner one for its own. It sends requests with ids, matches the answers,
and answers for those that did not within the deadline (zeromq-rules 10)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq

from wire import control
from wire.kernel.loop import Loop, Timer

STATS_TIMEOUT = 2.0
Results = dict[str, Any]


@dataclass
class Pending:
    """A control request to actors, waiting for their answers."""
    names: set[str]
    results: Results = field(default_factory=dict)
    done: Callable[[Results], None] | None = None
    timer: Timer | None = None


class ActorChannel:
    def __init__(self, ctx: zmq.Context, loop: Loop, endpoint: str,
                 heard: Callable[[str, str, dict[str, Any]], None]):
        """`heard(name, verb, body)` for every message an actor sends (any traffic shows it
        is alive), before its answer, if it is one, is matched to its request."""
        self.loop = loop
        self.heard = heard
        self.request_ids = itertools.count(1)
        self.pending: dict[str, Pending] = {}
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a restarted actor takes its name back
        self.sock.bind(endpoint)
        loop.add_reader(self.sock, self.on_message)

    def on_message(self) -> None:
        while True:
            try:
                identity, *raw = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                request_id, verb, body = control.parse(raw)
            except ValueError:
                continue
            name = identity.decode(errors="replace")
            self.heard(name, verb, body)
            pending = self.pending.get(request_id) if request_id else None
            if pending is not None and name in pending.names:
                pending.results[name] = body if verb == control.OK else {"error": body}
                pending.names.discard(name)
                if not pending.names:
                    self.finish(request_id)

    def ask(self, names: set[str], verb: str, body: dict[str, Any] | None,
            done: Callable[[Results], None], timeout: float = STATS_TIMEOUT) -> None:
        """Send a control verb to actors; done(results by name) once all answered or at the
        timeout (those that did not answer get an error)."""
        request_id = f"r{next(self.request_ids)}"
        pending = self.pending[request_id] = Pending(set(names), done=done)
        for name in names:
            self.sock.send_multipart([name.encode(), *control.frames(request_id, verb, body)])
        pending.timer = self.loop.call_later(timeout, self.finish, request_id)
        if not names:
            self.finish(request_id)

    def send(self, name: str, verb: str, body: dict[str, Any] | None = None, request_id: str = "ping") -> None:
        """A request whose answer only counts as a sign of life (a ping)."""
        self.sock.send_multipart([name.encode(), *control.frames(request_id, verb, body)])

    def finish(self, request_id: str) -> None:
        pending = self.pending.pop(request_id, None)
        if pending is None:
            return
        if pending.timer:
            pending.timer.cancel()
        for name in pending.names:
            pending.results[name] = {"error": {"reason": f"{name} did not answer"}}
        if pending.done:
            pending.done(pending.results)

    def finish_all(self) -> None:
        """Every request still waiting gets its answer now (pykka: nothing vanishes)."""
        for request_id in list(self.pending):
            self.finish(request_id)

    def close(self) -> None:
        self.sock.close(0)
