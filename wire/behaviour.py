"""What simulated people do beyond arriving and handling (issue 30): the queues customers
choose and their priority, offers agents leave to time out (RONA), chats agents transfer to
another agent or conference another agent into, agents' NOT_READY breaks and their logging
out and back in. A load scenario (launch/load/scenario.py) names them; the
Chat Server (actors/chat/) takes them in its control verb `load`. Both check them here, so
that a bad value is refused with the same key and reason wherever it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import dist


class BehaviourError(ValueError):
    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class Breaks:
    every: dist.Distribution       # an agent's time READY (or working) between breaks
    length: dist.Distribution      # a break's length, NOT_READY


@dataclass(frozen=True)
class Shifts:
    logout: float                  # share of `every` ticks at which the agent logs out
    every: dist.Distribution
    away: dist.Distribution        # logged out this long, then back in


@dataclass(frozen=True)
class Behaviour:
    queues: dict[str, float] = field(default_factory=dict)   # queue -> weight; empty: the MRD's default
    priority: dict[str, int] = field(default_factory=dict)   # queue -> the Task's params priority
    ignore_offer: float = 0.0
    transfer: float = 0.0          # share of accepted chats handed to another agent (Transfer)
    conference: float = 0.0        # share of accepted chats another agent joins (Conference)
    breaks: Breaks | None = None
    shifts: Shifts | None = None

    def to_json(self) -> dict[str, Any]:
        return {"queues": dict(self.queues), "priority": dict(self.priority), "ignore_offer": self.ignore_offer,
                "transfer": self.transfer, "conference": self.conference,
                "breaks": {"every": str(self.breaks.every), "length": str(self.breaks.length)}
                if self.breaks else None,
                "shifts": {"logout": self.shifts.logout, "every": str(self.shifts.every),
                           "away": str(self.shifts.away)} if self.shifts else None}


KEYS = ("queues", "priority", "ignore_offer", "transfer", "conference", "breaks", "shifts")


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def share(key: str, value: Any) -> float:
    if not number(value) or not 0 <= value <= 1:
        raise BehaviourError(key, f"a share must be a number from 0 to 1, not {value!r}")
    return float(value)


def duration(key: str, value: Any) -> dist.Distribution:
    try:
        return dist.parse(value)
    except ValueError as exc:
        raise BehaviourError(key, str(exc)) from None


def mapping(key: str, value: Any, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BehaviourError(key, f"expected a mapping, not {value!r}")
    for name in value:
        if number(name):   # YAML's `{length: uniform:1,3}`: the comma ended the value
            raise BehaviourError(f"{key}.{name}", "a number as a key: inside { }, quote a uniform:A,B "
                                                  "('uniform:1,3'), or a comma ends it")
        if not isinstance(name, str) or (keys is not None and name not in keys):
            raise BehaviourError(f"{key}.{name}", f"unknown key (expected one of: {', '.join(keys or ())})")
    return value


def parse(body: dict[str, Any], prefix: str = "") -> Behaviour:
    """A Behaviour from the JSON (or YAML) form; a missing key is its default. Raises
    BehaviourError naming the key (under `prefix`) and why."""
    def key(name: str) -> str:
        return f"{prefix}{name}"
    queues = mapping(key("queues"), body.get("queues") or {})
    for name, weight in queues.items():
        if not number(weight) or weight < 0:
            raise BehaviourError(key(f"queues.{name}"), f"a weight must be a number >= 0, not {weight!r}")
    if queues and not any(queues.values()):
        raise BehaviourError(key("queues"), "at least one weight must be above 0")
    priority = mapping(key("priority"), body.get("priority") or {})
    for name, level in priority.items():
        if not isinstance(level, int) or isinstance(level, bool):
            raise BehaviourError(key(f"priority.{name}"), f"a priority must be an integer, not {level!r}")
        if queues and name not in queues:
            raise BehaviourError(key(f"priority.{name}"), f"not one of the queues customers choose "
                                                          f"({', '.join(queues)})")
    breaks = shifts = None
    if body.get("breaks") is not None:
        spec = mapping(key("breaks"), body["breaks"], ("every", "length"))
        for name in ("every", "length"):
            if name not in spec:
                raise BehaviourError(key(f"breaks.{name}"), "missing (a duration: fixed:X, uniform:A,B or exp:MEAN)")
        breaks = Breaks(duration(key("breaks.every"), spec["every"]), duration(key("breaks.length"), spec["length"]))
        if breaks.every.mean <= 0:
            raise BehaviourError(key("breaks.every"), "must be above 0 seconds on average")
    if body.get("shifts") is not None:
        spec = mapping(key("shifts"), body["shifts"], ("logout", "every", "away"))
        for name in ("logout", "every"):
            if name not in spec:
                raise BehaviourError(key(f"shifts.{name}"), "missing")
        shifts = Shifts(share(key("shifts.logout"), spec["logout"]), duration(key("shifts.every"), spec["every"]),
                        duration(key("shifts.away"), spec.get("away", "fixed:1")))
        if shifts.every.mean <= 0:
            raise BehaviourError(key("shifts.every"), "must be above 0 seconds on average")
    transfer = share(key("transfer"), body.get("transfer", 0.0))
    conference = share(key("conference"), body.get("conference", 0.0))
    if transfer + conference > 1:   # one draw decides which an accepted chat gets, if either
        raise BehaviourError(key("conference"), f"transfer and conference are shares of the same accepted "
                                                f"chats: together at most 1, not {transfer + conference:g}")
    return Behaviour({n: float(w) for n, w in queues.items()}, dict(priority),
                     share(key("ignore_offer"), body.get("ignore_offer", 0.0)), transfer, conference, breaks, shifts)
