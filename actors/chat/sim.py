"""A simulated Chat Server: customers' chats on one side, agents' desktops on the other.

It speaks only protocol.md: pushes to `General`, listens on its own topic of `ChatEvents`.
Its agents connect, log into the MRD and go READY; customers arrive at `rate` per second
(Poisson) and give up (cancel) when no agent was chosen within their patience; its agents
accept offers after a think time and close tasks after a handling time. It measures routing
latency (Task sent -> TaskAgentSelected received) and accounts for every task it created.
The customer side is customers.py, the agents' side desk.py; this is the server around them:
its sockets and the client session (wire/session.py: the one client's core) that probes
the subscription, sends requests until answered, beats, follows Comm's numbered stream and
asks for a Snapshot of what it should hold whenever news was lost.

Settings (the actor's entry in the topology): `agents` (how many directory agents this
instance desks, taken in directory order by instance number), `rate` (tasks/s), `handle`,
`think` and `patience` (durations, wire/dist.py), `mrd`. The control verb `load` changes
rate and durations while it runs (`mroute load` drives a fleet with it); given a new `run`
number it starts counting afresh, so that a load run on a busy topology counts only the
tasks it created.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq

from actors.lograte import LogBudget
from actors.runtime import Actor, log
from wire import behaviour as behaviours, dist, hook as hooks, states as S
from wire.catalogue import CHAT_EVENTS, GENERAL
from wire.codec import WireError
from wire.curve import Curve
from wire.desking import desk_range
from wire.client import CONSUMED, COUNTS as SESSION_COUNTS, Incoming, Session   # the one client's session
from wire.kernel.settings import ChatSettings, as_json
from wire.throttle import Throttle

from .customers import Customers
from .desk import Desk
from .handover import COUNTS as HANDOVER_COUNTS
from .hooked import HookCalls

COUNTS = ("created", "queued", "routed", "routed_unmeasured", "abandoned", "closed", "expired", "closed_other",
          "lost", "refused", "offered", "accepted", "acceptances", "handled", "errors",
          "ignored", "rona", "breaks", "logouts",   # a load scenario's behaviours (wire/behaviour.py)
          "chats_interrupted",   # times a voice call held one of our agents on chat (INTERRUPTED: desk.py)
          *HANDOVER_COUNTS, "hook_errors", "hook_names_dropped")


def read_credentials() -> dict[str, str]:
    """{agent: password} from stdin, when the supervisor hands them over (else nothing)."""
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    try:
        data = sys.stdin.buffer.read()
    except (OSError, ValueError):
        return {}
    return orjson.loads(data) if data.strip() else {}


class ChatServer(Actor):
    role = "chat"

    def start(self) -> None:
        settings: ChatSettings = self.config.settings  # type: ignore[assignment]
        per_server = settings.agents
        directory = self.config.topology["agents"]
        actor = self.name.rpartition(".")[0]
        actors = self.config.topology.get("actors") or {actor: as_json(settings)}
        span = desk_range(actors, actor, self.config.index)
        agents = {a["id"]: a for a in directory[span.start:span.stop]}
        if len(agents) < per_server:
            log.warning("%s wants %d agents but the directory has only %d from #%d", self.name, per_server,
                        len(agents), span.start + 1)
        self.mrd = settings.mrd
        self.rate = settings.rate
        self.handle = dist.parse(settings.handle)
        self.think = dist.parse(settings.think)
        self.patience = dist.parse_optional(settings.patience)
        self.behaviour = behaviours.Behaviour()   # only a load run (its scenario) sets one
        self.rng = random.Random(f"{self.name}-{time.time()}")
        probe_agent = next(iter(agents), directory[0]["id"] if directory else "")

        self.arrivals: Any = None
        self.numbers = 0
        self.run: Any = None
        # The passwords come on our stdin from the supervisor: the directory we read holds hashes.
        self.hooks: HookCalls | None = None
        self.desk = Desk(self, agents, read_credentials())
        self.customers = Customers(self)
        if settings.hook is not None:
            self.hooks = self.hooked(settings.hook)
        boot = format(time.time_ns() // 1_000_000, "x")  # MsgIds of a restarted us must not repeat
        self.general = self.socket(zmq.PUSH, connect=self.config.endpoints[GENERAL])
        # what a turn has for Comm leaves as one batch (a PUSH: its one peer, no topic): its
        # customers' and agents' timers that fall due together are one send, not one each
        self.sender.batching[self.general] = False
        self.session = Session(self.name, (probe_agent, self.mrd), batches=True, ids=f"{self.name}-{boot}-m",
                               held=lambda: [*self.desk.held, *self.desk.handover.joined, *self.customers.tracked()],
                               sink=lambda frames: self.send(self.general, frames),
                               throttle=Throttle(settings.throttle, rand=self.rng.random)
                               if settings.throttle else None)
        self.session.on_live = self.went_live
        self.session.on_epoch = self.on_epoch
        self.counts: dict[str, int] = {}
        self.error_lines = LogBudget()  # a line per Error, up to a budget: all are counted
        self.counts_afresh()

        self.events = self.socket(zmq.SUB, connect=self.config.endpoints[CHAT_EVENTS])
        for topic in self.session.subscriptions:   # ours as batches (what a turn has for us, at once), Comm's beat
            self.events.setsockopt(zmq.SUBSCRIBE, topic)
        self.take = self.serve(CHAT_EVENTS, self.events, self.handlers(), decode=self.session.decode)
        self.tick()

    def curve_key(self, curve: Curve) -> Path:
        """Our actor's client key: it lets us use our own destinations only (chat.1 under
        the key `chat`), never our actors' key (wire/curve.py)."""
        return curve.client_key(self.name.rpartition(".")[0])

    def hooked(self, spec: str) -> HookCalls | None:
        """The scenario hook's calls; a hook that cannot be imported or made is said, and we
        serve without it (mroute load made one before it started us: this is a file changed since)."""
        queues = {name for name, q in (self.config.topology.get("queues") or {}).items() if q.get("mrd") == self.mrd}
        try:
            calls = HookCalls(self, hooks.load(spec), self.desk, self.customers, queues)
        except (Exception, SystemExit) as exc:   # the user's code, whatever it raises
            log.error("%s: no scenario hook: %s failed: %s: %s", self.name, spec, type(exc).__name__, exc)
            return None
        log.info("%s: scenario hook %s", self.name, spec)
        return calls

    @property
    def agents(self) -> dict[str, dict[str, Any]]:
        return self.desk.agents

    def handlers(self) -> dict[str, Callable[[Incoming], None]]:
        """Every type Comm may publish to us, given as the session hands it (each answer
        once, with the request it answers); what the session took for itself is CONSUMED."""
        ignore: Callable[[Incoming], None] = lambda incoming: None  # noqa: E731
        handlers: dict[str, Callable[[Incoming], None]] = {
            "TaskState": self.on_task_state, "TaskAgentSelected": self.on_selected,
            "AgentState": lambda incoming: self.desk.on_agent_state(incoming.message.body),
            "Error": self.on_error, "Snapshot": self.on_snapshot,
            "Ack": ignore, "TaskAgentTransferred": self.on_transferred, "TaskConferenced": self.on_conferenced}
        if self.hooks is not None and self.hooks.watches:
            handlers = {type: self.watched(type, handle, self.hooks) for type, handle in handlers.items()}
        return {**handlers, CONSUMED: ignore}

    @staticmethod
    def watched(type: str, handle: Callable[[Incoming], None], hooks: HookCalls) -> Callable[[Incoming], None]:
        """`handle`, then the scenario hook's on_message."""
        def handled(incoming: Incoming) -> None:
            handle(incoming)
            hooks.message(type, incoming.message.body)
        return handled

    def counts_afresh(self) -> None:
        """Counts and latency from now on; tasks created before are no longer ours to count."""
        self.counts = {**dict.fromkeys(COUNTS, 0), "agents_ready": self.counts.get("agents_ready", 0)}
        self.session.counts = {**dict.fromkeys(SESSION_COUNTS, 0),
                               "comm_restarts": self.session.counts["comm_restarts"]}
        self.error_codes: dict[str, int] = {}   # "Type Code" -> Errors received: a load's failures by code
        self.customers.afresh()
        if self.hooks is not None:
            self.hooks.afresh()
        self.session.follower.count_afresh()

    # the session: probing, beating, sending again ----------------------------------------
    def ready(self) -> bool:
        return False  # READY once Comm has answered on our topic (went_live)

    def tick(self) -> None:
        due = self.session.tick()
        self.loop.call_later(max(0.005, due - time.monotonic()), self.tick)
        self.customers.prune()

    def went_live(self) -> None:
        self.announce_ready()
        self.desk.log_all_in(reset=True)
        self.session.resync(reset=True)   # and our earlier process's customers are gone with it
        self.set_rate(self.rate)

    def set_rate(self, rate: float) -> None:
        """Customers arrive at `rate` per second (Poisson); 0 stops them."""
        self.rate = rate
        if self.arrivals is not None:
            self.arrivals.cancel()
            self.arrivals = None
        if rate > 0 and self.session.live:
            self.arrivals = self.loop.call_later(self.rng.expovariate(rate), self.new_task)
            self.arrivals_due = self.arrivals.when

    def new_task(self) -> None:
        self.numbers += 1
        self.customers.new_task(self.numbers)
        # Each arrival is due a Poisson interval after the one before, not after the moment
        # its timer ran (timers fire up to a millisecond late): the offered rate stays exact.
        self.arrivals_due += self.rng.expovariate(self.rate)
        self.arrivals = self.loop.call_at(self.arrivals_due, self.new_task)

    def control_verbs(self) -> dict[str, Any]:
        return {"load": self.set_load}

    def set_load(self, body: dict[str, Any]) -> dict[str, Any]:
        """Change any of rate, handle, think, patience and the behaviours (wire/behaviour.py:
        queues, priority, ignore_offer, breaks, shifts); an empty body changes nothing.
        Answer with all of them. A `run` other than the current one starts counting afresh."""
        try:
            handle = dist.parse(body.get("handle", self.handle))
            think = dist.parse(body.get("think", self.think))
            patience = dist.parse_optional(body["patience"]) if "patience" in body else self.patience
        except ValueError as exc:
            raise WireError("BAD_FIELD", str(exc)) from None
        try:
            behaviour = behaviours.parse({**self.behaviour.to_json(),
                                          **{k: body[k] for k in behaviours.KEYS if k in body}})
        except behaviours.BehaviourError as exc:
            raise WireError("BAD_FIELD", str(exc), field=exc.key.split(".")[0]) from None
        rate = body.get("rate", self.rate)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
            raise WireError("BAD_FIELD", f"rate must be a number >= 0, not {rate!r}", field="rate")
        self.handle, self.think, self.patience = handle, think, patience
        if behaviour != self.behaviour:
            self.behaviour = behaviour
            self.desk.behaviour_changed()
        if "run" in body and body["run"] != self.run:
            self.run = body["run"]
            self.counts_afresh()
        self.set_rate(float(rate))
        return {"run": self.run, "rate": self.rate, "handle": str(self.handle), "think": str(self.think),
                "patience": str(self.patience) if self.patience else None, **self.behaviour.to_json()}

    def request(self, type: str, body: dict[str, Any]) -> str:
        """Send until answered (at least once): Comm answers every request carrying a MsgId
        with one message carrying it back, and applies a repeated MsgId only once."""
        return self.session.request(type, body).msg_id

    # receiving -------------------------------------------------------------------------
    def on_epoch(self, old: str | None, new: str) -> None:
        if old is None:
            # Our agents logged in before we knew which Comm we spoke to: that Comm may have
            # died since. Logging in again is harmless (Comm answers with the state they are in).
            self.desk.log_all_in()
            return
        # A new Comm (no journal) knows none of our agents or tasks: start again. (One with
        # its journal shows only as a new Stream: the session asks it for a Snapshot.)
        log.warning("%s: logging our agents in again", self.name)
        lost = self.customers.forget()  # the new Comm has none of them: nothing will end them
        if lost:
            log.warning("%s: %d of our tasks died with the old Comm", self.name, lost)
        self.counts["lost"] += lost
        self.desk.forget()
        self.desk.log_all_in()

    def on_task_state(self, incoming: Incoming) -> None:
        body = incoming.message.body
        if incoming.answers is not None and incoming.answers.type == "Task":
            self.customers.on_answer(body["MsgId"], body)
            return
        self.desk.on_task_state(body)
        self.customers.on_task_state(body)

    def on_selected(self, incoming: Incoming) -> None:
        body = incoming.message.body
        self.customers.on_selected(body["TaskId"])
        self.desk.on_offer(body["TaskId"], body["AgentId"])

    def on_transferred(self, incoming: Incoming) -> None:
        """The desks move the task by the TaskState (Code TRANSFERRED) that comes with this;
        here only our agent's Transfer is answered (counted)."""
        if incoming.answers is not None and incoming.answers.type == "Transfer":
            self.desk.handover.on_answer("Transfer", refused=False)

    def on_conferenced(self, incoming: Incoming) -> None:
        if incoming.answers is not None and incoming.answers.type == "Conference":
            self.desk.handover.on_answer("Conference", refused=False)
        self.desk.handover.on_conferenced(incoming.message.body)

    def on_error(self, incoming: Incoming) -> None:
        body, request = incoming.message.body, incoming.answers
        if request is not None:
            if request.type == "Task":
                self.customers.on_refused(body["MsgId"], body.get("Code"))
            elif request.type == "TaskState":
                self.desk.on_refused(request.body)
            elif request.type in ("Transfer", "Conference"):
                self.desk.handover.on_answer(request.type, refused=True)
        self.counts["errors"] += 1
        key = f"{body.get('Type')} {body.get('Code')}"
        self.error_codes[key] = self.error_codes.get(key, 0) + 1
        write, unlogged = self.error_lines.take()
        if write:
            log.warning("%s got Error %s on %s: %s%s", self.name, body.get("Code"), body.get("Type"),
                        body.get("Reason"),
                        f" ({unlogged} errors before this one not logged)" if unlogged else "")

    def on_snapshot(self, incoming: Incoming) -> None:
        """The snapshot supersedes what we held: it stands where it is in our stream, after
        everything Comm sent us before it (the session asked for it: news was lost)."""
        body = incoming.message.body
        tasks = {row["TaskId"]: row for row in body["Tasks"]
                 if row.__class__ is dict and row.get("TaskId").__class__ is str}
        unknown = {task_id for task_id in body["Unknown"] if task_id.__class__ is str}
        agents = [row for row in body["Agents"] if row.__class__ is dict and row.get("AgentId").__class__ is str]
        self.desk.apply_snapshot(agents, tasks, unknown)
        self.customers.apply_snapshot(tasks, unknown)

    def stop(self) -> None:
        # Sign our agents out so that Comm requeues what they held rather than keep it, and
        # wait (bounded) for Comm to confirm: linger is not delivery (zeromq-rules 9).
        signed_in = [a for a in self.agents if self.desk.logged_in(a)]
        for agent_id in signed_in:
            self.request("AgentState", {"AgentId": agent_id, "State": S.LOGOUT, "Mrd": self.mrd})
        if signed_in and self.session.live:
            self.loop.run(until=lambda: all(not self.desk.logged_in(a) for a in signed_in), timeout=1.0,
                          after_stop=True)

    def stats(self) -> dict[str, Any]:
        customers = self.customers
        session = self.session.stats()
        return {**super().stats(), **self.counts, **session, "error_codes": dict(self.error_codes),
                "agents": len(self.agents), "rate": self.rate, "unacked": session["unanswered"],
                "held": self.desk.held_view(), "waiting": len(customers.waiting), "open": len(customers.open),
                "unacknowledged": len(customers.sent_at), "latency": customers.latency.to_json(),
                "queues": customers.by_queue.stats(), "hook": dict(self.hooks.counts) if self.hooks else {}}
