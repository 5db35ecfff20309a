"""The controller (Circus's Controller): serves the CLI's requests on the control ROUTER.

Every request is answered exactly once: with the verb's answer, with an error naming what
was wrong with it, or, when a verb has a bug, with an error saying so; the exception is
logged and the loop goes on (zeromq-rules 13). Verbs that wait (a start, a stop) answer
from the arbiter's waiters; those callbacks are guarded the same way.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Protocol

import orjson
import zmq

from wire import control
from wire.kernel.loop import Loop

from ..process.channel import Results
from ..process.record import Process
from ..process.states import FATAL, RUNNING, SERVING, STOPPED

log = logging.getLogger("mroute.supervisor")


class CommandError(Exception):
    """A request the controller refuses, with the reason for the CLI; `confirm`: the same
    request with `force` would be carried out (the CLI may ask a person)."""

    def __init__(self, reason: str, confirm: bool = False):
        super().__init__(reason)
        self.confirm = confirm


class Request:
    """One CLI request: answered once, whatever happens."""

    def __init__(self, verb: str, send: Callable[[bool, dict[str, Any]], None]):
        self.verb = verb
        self.send = send
        self.answered = False

    def reply(self, ok: bool, answer: dict[str, Any]) -> None:
        if not self.answered:
            self.answered = True
            self.send(ok, answer)

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, CommandError):
            self.reply(False, {"reason": str(exc), **({"confirm": True} if exc.confirm else {})})
            return
        log.exception("the supervisor's %r verb failed", self.verb)
        self.reply(False, {"reason": f"the supervisor failed to serve {self.verb!r}: {type(exc).__name__}: {exc}"})

    def guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        """fn, answering the request with an error if it raises (for callbacks run later)."""
        def guarded(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - a bug in a verb is answered, not raised
                self.failed(exc)
        return guarded


Verb = Callable[[dict[str, Any], Request], None]


class Supervised(Protocol):
    """What the verbs ask of the supervisor (arbiter.py, which makes the controller: named
    here, it is not imported back)."""
    loop: Loop
    events: zmq.Socket
    stop_grace: float
    ready_timeout_s: float

    @property
    def children(self) -> dict[str, Process]: ...
    def status(self) -> dict[str, Any]: ...
    def request_stats(self, done: Callable[[Results], None]) -> None: ...
    def select(self, name: Any) -> list[Process]: ...
    def ask_children(self, names: set[str], verb: str, body: dict[str, Any] | None,
                     done: Callable[[Results], None]) -> None: ...
    def when(self, condition: Callable[[], bool], done: Callable[[bool], None], timeout: float) -> None: ...
    def stop_child(self, child: Process) -> None: ...
    def start_child(self, child: Process) -> None: ...
    def scale(self, name: Any, count: Any, force: bool = False) -> tuple[list[Process], list[Process]]: ...
    def reap(self) -> None: ...
    def write_state(self) -> None: ...


class Controller:
    def __init__(self, arbiter: Supervised, sock: zmq.Socket, endpoint: str):
        self.arbiter = arbiter
        self.sock = sock
        sock.linger = 0
        sock.bind(endpoint)
        arbiter.loop.add_reader(sock, self.on_request)
        self.verbs: dict[str, Verb] = {
            "status": self.status, "stats": self.stats, "down": self.down, "stop": self.stop,
            "start": self.start, "restart": self.restart, "scale": self.scale, "ask": self.ask,
            "probe": self.probe}

    def on_request(self) -> None:
        while True:
            try:
                client, *raw = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                request_id, verb, body = control.parse(raw)
            except ValueError as exc:
                self.sock.send_multipart([client, *control.frames("", control.ERROR, {"reason": str(exc)})])
                continue

            def send(ok: bool, answer: dict[str, Any], client: bytes = client, request_id: str = request_id) -> None:
                self.sock.send_multipart([client, *control.frames(request_id, control.OK if ok else control.ERROR,
                                                                  answer)])
            self.dispatch(verb, body, Request(verb, send))

    def dispatch(self, verb: str, body: dict[str, Any], request: Request) -> None:
        handler = self.verbs.get(verb)
        if handler is None:
            request.reply(False, {"reason": f"unknown verb {verb!r} (known: {', '.join(sorted(self.verbs))})"})
            return
        request.guard(handler)(body, request)

    def close(self) -> None:
        self.sock.close(0)

    # the verbs ----------------------------------------------------------------------------
    def status(self, body: dict[str, Any], request: Request) -> None:
        request.reply(True, self.arbiter.status())

    def stats(self, body: dict[str, Any], request: Request) -> None:
        self.arbiter.request_stats(request.guard(lambda results: request.reply(True, {"actors": results})))

    def probe(self, body: dict[str, Any], request: Request) -> None:
        """Publish a token on the event stream, so a subscriber can tell that it is live."""
        self.arbiter.events.send_multipart([b"probe", orjson.dumps({"token": body.get("token")})])
        request.reply(True, {})

    def ask(self, body: dict[str, Any], request: Request) -> None:
        """Forward an operator command to actors: `role` asks the running actor of that role
        (flush, explain, ...) and answers with its reply; `name` asks every running instance
        it selects (`chat` or `chat.2`) and answers with their replies by instance."""
        verb, args = str(body.get("verb")), body.get("body", {})
        if body.get("name") is not None:
            names = {c.name for c in self.arbiter.select(body["name"]) if c.state in SERVING}
            if not names:
                raise CommandError(f"no running instance of {body['name']}")
            self.arbiter.ask_children(names, verb, args, request.guard(lambda results: request.reply(
                not any("error" in r for r in results.values()), {"actors": results})))
            return
        role = body.get("role")
        child = next((c for c in self.arbiter.children.values() if c.role == role and c.state in SERVING), None)
        if child is None:
            raise CommandError(f"no running {role} to ask")
        self.arbiter.ask_children({child.name}, verb, args, request.guard(
            lambda results: request.reply("error" not in results[child.name],
                                          results[child.name].get("error", results[child.name]))))

    def answer_when(self, children: list[Process], states: tuple[str, ...], request: Request,
                    timeout: float) -> None:
        """Reply once every child is in one of `states` (or, for starts, has given up)."""
        settled = states + ((FATAL,) if RUNNING in states else ())

        def done(in_time: bool) -> None:
            ok = in_time and all(c.state in states for c in children)
            answer: dict[str, Any] = {"actors": [c.describe() for c in children]}
            if not ok:
                answer["reason"] = ("timed out: " if not in_time else "") + ", ".join(
                    f"{c.name} is {c.state}" + (f" ({c.last_failure()})" if c.failure else "")
                    for c in children if c.state not in states)
            request.reply(ok, answer)
        self.arbiter.when(lambda: all(c.state in settled for c in children), request.guard(done), timeout)

    def down(self, body: dict[str, Any], request: Request) -> None:
        request.reply(True, {"pid": os.getpid()})
        self.arbiter.loop.stop("down requested")

    def stop(self, body: dict[str, Any], request: Request) -> None:
        children = self.arbiter.select(body.get("name"))
        for child in children:
            self.arbiter.stop_child(child)
        self.answer_when(children, (STOPPED,), request, self.arbiter.stop_grace + 3)

    def start(self, body: dict[str, Any], request: Request) -> None:
        children = self.arbiter.select(body.get("name"))
        for child in children:
            self.arbiter.start_child(child)
        self.answer_when(children, (RUNNING,), request, self.arbiter.ready_timeout_s + 1)

    def restart(self, body: dict[str, Any], request: Request) -> None:
        children = self.arbiter.select(body.get("name"))
        for child in children:
            self.arbiter.stop_child(child)

        def start_again(ok: bool) -> None:
            for child in children:
                child.restarts += 1
                self.arbiter.start_child(child)
            self.answer_when(children, (RUNNING,), request, self.arbiter.ready_timeout_s + 1)
        self.arbiter.when(lambda: all(c.proc is None for c in children), request.guard(start_again),
                          self.arbiter.stop_grace + 3)

    def scale(self, body: dict[str, Any], request: Request) -> None:
        name = body.get("name")
        added, extra = self.arbiter.scale(name, body.get("count"), force=body.get("force") is True)

        def settle(ok: bool) -> None:
            self.arbiter.reap()  # forget the extra processes that are gone
            self.arbiter.write_state()
            answer = {"actors": [c.describe() for c in self.arbiter.children.values()
                                 if c.name.rpartition(".")[0] == name]}
            ok = ok and all(c.state == RUNNING for c in added)
            removed = [c.name for c in extra if c.role == "chat"]
            comm = next((c.name for c in self.arbiter.children.values() if c.role == "comm" and c.state in SERVING),
                        None)
            if not removed or comm is None:
                request.reply(ok, answer)
                return
            # removed Chat Servers are not coming back: their agents out now, not after the grace
            self.arbiter.ask_children({comm}, "desks_closed", {"desks": removed}, request.guard(
                lambda results: request.reply(ok, {**answer, "logged_out": results[comm].get("agents", [])})))
        self.arbiter.when(lambda: all(c.proc is None for c in extra) and all(c.state in (RUNNING, FATAL)
                                                                             for c in added),
                          request.guard(settle), self.arbiter.ready_timeout_s + 1)
