"""The simulated voice side's people, where no client of ours answers (a load run): callers
who arrive on each voice queue at its `rate` (Poisson) and hang up after `talk` (the dialog
ends as the caller's ReleaseCall would end it), and agents' phones that answer by themselves
after `auto_answer` (Cisco's Auto Answer: as AnswerCall would). Counted for each voice queue
(`COUNTS`): calls placed, answered (by anyone: the phone itself or the agent's client), ended by
their caller, ended otherwise (dropped: the agent released it, logged out, a supervisor dropped
the caller), refused (the queue held `max_waiting` calls already); with the calls live (not
ended yet) they add up: placed = ended + dropped + refused + live.

The settings change while it runs (the GC's control verb `load`): `configure` checks the
whole change before it applies any of it, and a queue's new rate starts its arrivals afresh.
A call's ring and talk are drawn when it is placed and kept with it (`Call`): a change, such as
a load run giving a running GC its own settings back, leaves the calls placed already to end
as they were to."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from wire import dist, voice as V
from wire.kernel.settings import voice_queue

from .acd import Acd, QueueFull
from .agents import VoiceAgent
from .dialogs import Dialog, Dialogs, Participant, event_name

LOAD_KEYS = ("queues", "auto_answer")
COUNTS = ("calls_placed", "calls_answered", "calls_ended", "calls_dropped", "calls_refused")


@dataclass
class Call:
    """One of our callers' calls, as it was placed: its queue, how long the agent's phone
    rings before it answers by itself and how long the caller talks (None: never, until the
    agent answers; until the agent releases)."""
    queue: str
    ring: float | None
    talk: float | None
    answered: bool = False
    hung_up: bool = False     # ended by its caller (calls_ended), not otherwise (calls_dropped)


class SettingError(ValueError):
    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


class Callers:
    def __init__(self, acd: Acd, dialogs: Dialogs, queues: dict[str, dict[str, Any]], auto_answer: str | None,
                 clock: Callable[[], float], call_later: Callable[..., Any], rng: random.Random | None = None):
        self.acd, self.dialogs = acd, dialogs
        self.clock, self.call_later = clock, call_later
        self.rng = rng or random.Random()
        # every voice queue of the ACD, with its rate and its callers' talk (None: they stay)
        self.queues = {name: voice_queue(name, queues.get(name), self.refuse) for name in acd.queues}
        self.talks = {name: dist.parse_optional(spec["talk"]) for name, spec in self.queues.items()}   # parsed once
        self.auto_answer = dist.parse_optional(auto_answer)
        self.arrivals: dict[str, Any] = {}   # queue -> its next arrival's timer
        self.due: dict[str, float] = {}      # queue -> when its next arrival is due
        self.numbers = 0
        self.counts = {name: dict.fromkeys(COUNTS, 0) for name in self.queues}   # queue -> its counts
        self.placed: dict[str, Call] = {}    # dialog id -> our call, until it ends (calls_live)

    @staticmethod
    def refuse(key: str, reason: str) -> SettingError:
        return SettingError(f"queues.{key}" if key else "queues", reason)

    def start(self) -> None:
        for name in self.queues:
            self.restart(name)

    # settings ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"queues": {name: dict(spec) for name, spec in self.queues.items()},
                "auto_answer": str(self.auto_answer) if self.auto_answer is not None else None}

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """Change any of `queues: {NAME: {rate, talk}}` (a queue's keys left out stay) and
        `auto_answer`; raise SettingError naming the key at fault, having changed nothing.
        Answer with all of them."""
        for key in body:
            if key not in LOAD_KEYS:
                raise SettingError(str(key), f"unknown key (expected one of: {', '.join(LOAD_KEYS)})")
        queues = body.get("queues", {})
        if not isinstance(queues, dict):
            raise SettingError("queues", f"must be a mapping of voice queues, not {type(queues).__name__}")
        changed = {}
        for name, spec in queues.items():
            if name not in self.queues:
                raise SettingError(f"queues.{name}", f"not a voice queue of this GC (it has: {', '.join(self.queues)})")
            changed[name] = voice_queue(name, spec, self.refuse, base=self.queues[name])
        auto_answer = self.auto_answer
        if "auto_answer" in body:
            try:
                auto_answer = dist.parse_optional(body["auto_answer"])
            except ValueError as exc:
                raise SettingError("auto_answer", str(exc)) from None
        self.auto_answer = auto_answer
        for name, spec in changed.items():
            rate_changed = spec["rate"] != self.queues[name]["rate"]
            self.queues[name] = spec
            self.talks[name] = dist.parse_optional(spec["talk"])
            if rate_changed:
                self.restart(name)
        return self.settings()

    # callers arriving ---------------------------------------------------------------------------
    def restart(self, queue: str) -> None:
        """The queue's Poisson arrivals start afresh at its rate; 0 stops them."""
        timer = self.arrivals.pop(queue, None)
        if timer is not None:
            timer.cancel()
        rate = self.queues[queue]["rate"]
        if rate > 0:
            self.due[queue] = self.clock() + self.rng.expovariate(rate)
            self.arrivals[queue] = self.call_later(self.due[queue] - self.clock(), self.arrival, queue)

    def arrival(self, queue: str) -> None:
        try:
            self.place(queue, "")
        except QueueFull:
            pass   # counted: calls_refused
        # each arrival is due a Poisson interval after the one before, not after the moment its
        # timer ran (timers fire late on a busy machine): the offered rate stays exact
        self.due[queue] += self.rng.expovariate(self.queues[queue]["rate"])
        self.arrivals[queue] = self.call_later(max(0.0, self.due[queue] - self.clock()), self.arrival, queue)

    def place(self, queue: str, ani: str) -> str:
        """An inbound call on `queue` (an arrival, or the control verb `call`): its dialog id;
        QueueFull (counted) when the queue holds `max_waiting` calls already."""
        self.numbers += 1
        try:
            dialog = self.acd.admit(queue, ani or f"555{self.numbers:04d}")
        except QueueFull:
            self.counts[queue]["calls_placed"] += 1
            self.counts[queue]["calls_refused"] += 1
            raise
        self.counts[queue]["calls_placed"] += 1
        # its ring and talk as the settings say now, whatever they say when it rings or is answered
        talk = self.talks[queue]
        self.placed[dialog.dialog_id] = Call(queue, self.auto_answer.sample(self.rng) if self.auto_answer else None,
                                             talk.sample(self.rng) if talk is not None else None)
        self.acd.serve()
        return dialog.dialog_id

    def live(self, queue: str | None = None) -> int:
        """Calls placed (on `queue`; None: on any) that have not ended: waiting, ringing or talking."""
        return sum(1 for call in self.placed.values() if queue is None or call.queue == queue)

    def ended(self, dialog: Dialog) -> None:
        """A dialog ended, or is forgotten (Dialogs): if it was our caller's, counted by how."""
        call = self.placed.pop(dialog.dialog_id, None)
        if call is not None:
            self.counts[call.queue]["calls_ended" if call.hung_up else "calls_dropped"] += 1

    def stats(self) -> dict[str, dict[str, int]]:
        """Each voice queue's counts, and its calls live and waiting now."""
        return {name: {**counts, "calls_live": self.live(name), "calls_waiting": len(self.acd.queues[name])}
                for name, counts in self.counts.items()}

    # an agent's phone, and the caller on it --------------------------------------------------------
    def rang(self, dialog: Dialog, agent: VoiceAgent) -> None:
        """A call rings the agent's phone: it answers by itself after `auto_answer`, if set (our
        callers' calls: after the ring drawn when the call was placed)."""
        call = self.placed.get(dialog.dialog_id)
        ring = call.ring if call is not None else (self.auto_answer.sample(self.rng) if self.auto_answer else None)
        if ring is not None:
            self.call_later(ring, self.answer, dialog.dialog_id, agent.extension)

    def answer(self, dialog_id: str, extension: str) -> None:
        dialog = self.dialogs.by_id.get(dialog_id)
        party = dialog.party(extension) if dialog is not None else None
        if dialog is None or party is None or party.state != V.ALERTING:
            return   # answered by its client meanwhile, or the caller hung up while it rang
        self.dialogs.activate(dialog, party)
        self.dialogs.publish(dialog, event_name(dialog))

    def answered(self, dialog: Dialog, party: Participant) -> None:
        """An agent answered one of our callers' calls (Dialogs.activate): the caller talks for
        the talk drawn when the call was placed, then hangs up."""
        call = self.placed.get(dialog.dialog_id)
        if call is None or call.answered:
            return   # not our caller's, or answered once (a retrieve or a conference activates it again)
        call.answered = True
        self.counts[call.queue]["calls_answered"] += 1
        if call.talk is not None:
            self.call_later(call.talk, self.hang_up, dialog.dialog_id)

    def hang_up(self, dialog_id: str) -> None:
        dialog, call = self.dialogs.by_id.get(dialog_id), self.placed.get(dialog_id)
        if dialog is None or call is None or dialog.party(dialog.from_address) is None:
            return   # the agent released it first
        call.hung_up = True
        self.dialogs.leave(dialog, dialog.from_address)   # counted as it ends (`ended`)
