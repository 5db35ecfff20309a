"""What a load run is asked to do (its plan: the rate's profile and the durations the
servers draw) and one look at the fleet it drives (a Reading): shared by the load driver
(load.py), the fleets (fleet.py) and the report's rows (loadrows.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from wire.behaviour import Behaviour
from wire.dist import Distribution, parse as parse_dist
from wire.stats import Histogram

PROFILES = ("constant", "ramp", "steps")


@dataclass(frozen=True)
class Profile:
    """How the offered rate moves over the run: flat, a straight ramp from 0 to the rate,
    or `steps` equal stairs up to it."""
    kind: str = "constant"
    steps: int = 4

    def rate_at(self, t: float, duration: float, peak: float) -> float:
        if self.kind == "ramp":
            return peak * min(1.0, t / duration) if duration > 0 else peak
        if self.kind == "steps":
            stair = min(self.steps, int(t / duration * self.steps) + 1) if duration > 0 else self.steps
            return peak * stair / self.steps
        return peak

    def __str__(self) -> str:
        return f"steps:{self.steps}" if self.kind == "steps" else self.kind


def parse_profile(spec: str) -> Profile:
    kind, _, count = spec.partition(":")
    if kind not in PROFILES:
        raise ValueError(f"{spec!r} is not an arrival profile (known: constant, ramp, steps[:N])")
    if kind != "steps":
        if count:
            raise ValueError(f"{spec!r}: only steps takes a number")
        return Profile(kind)
    if count and (not count.isdigit() or int(count) < 1):
        raise ValueError(f"{spec!r}: the number of steps must be an integer >= 1")
    return Profile("steps", int(count) if count else 4)


@dataclass(frozen=True)
class VoicePlan:
    """A scenario's voice calls (`voice:`): inbound calls on a voice queue of the GC that ring
    agents with an extension; the GC's phones answer after `ring` and callers hang up after
    `talk` (actors/gc/callers.py), since no client of a load run answers."""
    calls_per_s: float
    queue: str | None = None              # None: the GC's first, until scenario.voice_queue resolves it
    talk: Distribution = field(default_factory=lambda: parse_dist("exp:20"))
    ring: Distribution = field(default_factory=lambda: parse_dist("fixed:1"))

    @property
    def queue_name(self) -> str:
        if self.queue is None:
            raise ValueError("the voice queue is not resolved yet (launch/load/scenario.py: voice_queue)")
        return self.queue

    def gc_body(self, rate: float) -> dict[str, Any]:
        """What the GC is told (its control verb `load`): `rate` calls a second on the queue."""
        return {"queues": {self.queue_name: {"rate": rate, "talk": str(self.talk)}}, "auto_answer": str(self.ring)}

    def stop_body(self) -> dict[str, Any]:
        """What stops the calls (no new one; those live end as they were to)."""
        return {"queues": {self.queue_name: {"rate": 0.0}}}

    def to_json(self) -> dict[str, Any]:
        return {"calls_per_s": self.calls_per_s, "queue": self.queue, "talk": str(self.talk), "ring": str(self.ring)}


@dataclass
class LoadPlan:
    rate: float                      # tasks/s offered at the profile's peak, over the whole fleet
    duration: float                  # seconds of arrivals
    handle: Distribution
    think: Distribution
    patience: Distribution | None
    profile: Profile = field(default_factory=Profile)
    drain: float = 10.0              # seconds allowed after arrivals stop for tasks to finish
    behaviour: Behaviour = field(default_factory=Behaviour)   # a scenario's (wire/behaviour.py)
    hook: str | None = None          # a scenario's Python hook (wire/hook.py): spawned Chat Servers import it
    voice: VoicePlan | None = None   # a scenario's voice calls

    def settings(self) -> dict[str, Any]:
        return {"handle": str(self.handle), "think": str(self.think),
                "patience": str(self.patience) if self.patience else None}

    def load_body(self) -> dict[str, Any]:
        """What the Chat Servers are told at the start (control verb `load`): the durations
        and the behaviours (not in their topology entry: only a load run sets those)."""
        return {**self.settings(), **self.behaviour.to_json()}


# a Chat Server's transfers and conferences (actors/chat/handover.py, which launch/ may not
# import): chats drawn for each, done by Comm, refused by Comm, not asked (no agent with room);
# conference participants that ended their part themselves
HANDOVER_COUNTS = ("transfers", "transferred", "transfer_refused", "transfer_skipped",
                   "conferences", "conferenced", "conference_refused", "conference_skipped", "parts_ended")
CHAT_COUNTS = ("created", "queued", "refused", "throttled", "routed", "routed_unmeasured", "abandoned", "closed",
               "expired", "closed_other", "lost", "accepted", "handled", "errors", "offered", "ignored", "rona",
               "breaks", "logouts", "chats_interrupted", *HANDOVER_COUNTS, "hook_errors", "hook_names_dropped")
# what a scenario's agents did (wire/behaviour.py): offers made to them, those they left to time
# out (`ignored`), offers Comm took back (`rona`), NOT_READY breaks and logouts they asked for,
# their chats a voice call held (`chats_interrupted`: the issue's `interrupted`, a name the report
# gives already to a run cut short), chats they transferred or conferenced (HANDOVER_COUNTS)
BEHAVIOUR_COUNTS = ("offered", "ignored", "rona", "breaks", "logouts", "chats_interrupted", *HANDOVER_COUNTS)
# what the GC's simulated callers did on a voice queue (actors/gc/callers.py): a scenario's voice
# calls; a call placed was ended by its caller, dropped otherwise, refused (the queue was full),
# or is live still
VOICE_COUNTS = ("calls_placed", "calls_answered", "calls_ended", "calls_dropped", "calls_refused")
# What the servers saw of Comm's numbered streams: a gap (`missed` messages lost on the way)
# is recovered by a Resync, so it is no failure, but a run with some must say so.
STREAM_COUNTS = ("gaps", "missed", "resyncs", "streams")


@dataclass
class Reading:
    """One look at every actor: the chat servers' counts summed, their latency histograms
    merged, and Comm's view of what waits."""
    at: float
    counts: dict[str, int]
    latency: Histogram
    queue_wait: Histogram
    open: int
    unacknowledged: int
    waiting: int
    comm_live: int
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)   # each Chat Server's stats as read
    comm: dict[str, Any] = field(default_factory=dict)                 # Comm's, when it is among them
    hook: dict[str, int] = field(default_factory=dict)                 # what a scenario's hook counted
    gc: dict[str, Any] = field(default_factory=dict)                   # the GC's, when it is among them

    @classmethod
    def of(cls, stats: dict[str, dict[str, Any]], chats: list[str]) -> "Reading":
        counts = dict.fromkeys(CHAT_COUNTS + STREAM_COUNTS, 0)
        latency, open_, unacked, hook = Histogram(), 0, 0, {}
        for name in chats:
            s = stats.get(name, {})
            if "created" not in s:  # counting it as zero would make the figures wrong, not missing
                raise RuntimeError(f"{name} did not report its counts: {s.get('error', 'no answer')}")
            for key in CHAT_COUNTS + STREAM_COUNTS:
                counts[key] += int(s.get(key, 0))
            latency.merge(Histogram.from_json(s.get("latency", {})))
            open_ += int(s.get("open", 0))
            for key, n in (s.get("hook") or {}).items():
                hook[key] = hook.get(key, 0) + int(n)
            unacked += int(s.get("unacknowledged", 0))
        comm = next((s for s in stats.values() if "tasks_live" in s), {})
        return cls(time.monotonic(), counts, latency, Histogram.from_json(comm.get("queue_wait", {})), open_,
                   unacked, int(comm.get("tasks_waiting", 0)), int(comm.get("tasks_live", 0)),
                   {name: stats[name] for name in chats}, comm, hook,
                   next((s for s in stats.values() if "calls" in s and "dialogs" in s), {}))
