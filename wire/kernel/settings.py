"""Each role's settings (a topology file's `actors:` entry): one dataclass a role, each key
with its default and its bounds, defined here once.

launch/topocheck.py validates a topology file's entries into these (`validate`), refusing
what is out of bounds with the file, the key and why; the supervisor writes them into the
run directory's topology.json (`as_json`); an actor reads its own back (`from_json`).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Callable

# kinds of setting: what `validate` asks of a value
INT, NUMBER, BOOL, TEXT, CHOICE, DIST, OPTIONAL_DIST, MAPPING, ANY, VOICE_QUEUES = (
    "int", "number", "bool", "text", "choice", "dist", "optional_dist", "mapping", "any", "voice_queues")


def setting(default: Any, kind: str, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] = (), positive: bool = False) -> Any:
    """A key of a role's entry: its default, its kind and its bounds (`low`..`high` for an
    INT, `positive` for a NUMBER that may not be 0, `low` for one that is 0 (off) or at
    least that, `choices` for a CHOICE)."""
    meta = {"kind": kind, "low": low, "high": high, "choices": choices, "positive": positive}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ActorSettings:
    """What every role takes. `io_threads` sizes the actor's ZeroMQ context."""
    role: str
    count: int = setting(1, INT, 0)
    host: str | None = setting(None, TEXT)
    io_threads: int = setting(1, INT, 1, 16)


@dataclass(frozen=True)
class CommSettings(ActorSettings):
    journal: bool = setting(True, BOOL)
    logout_grace: float = setting(10.0, NUMBER)         # s a desk may be silent before its agents log out
    session_takeover: str = setting("move", CHOICE, choices=("move", "refuse"))
    # what one client's Tasks may cost Comm (actors/comm/task_requests.py's TaskLimits)
    max_live_tasks: int = setting(100_000, INT, 1)      # beyond it a new Task is refused OVERLOADED
    max_params: int = setting(64, INT, 1)               # pairs in a Task's params, else BAD_FIELD
    max_params_bytes: int = setting(16_384, INT, 1)     # a Task's params, encoded, else BAD_FIELD
    max_live_bytes: int = setting(64 * 1024 ** 2, INT, 1)  # every live task's params together
    max_waiting: int = setting(10_000, INT, 1)          # tasks waiting for an agent
    admission_budget: float = setting(0.025, NUMBER, positive=True)  # s of CPU a new Task may wait at the door
    events_hwm: int = setting(64, INT, 1)               # ChatEvents' high-water mark, in ZeroMQ messages
    receiver_bytes: int = setting(64 * 1024 ** 2, INT, 4096)    # what Comm holds for one subscriber
    receivers_bytes: int = setting(256 * 1024 ** 2, INT, 4096)  # ... for all of them together


@dataclass(frozen=True)
class MreSettings(ActorSettings):
    pass


@dataclass(frozen=True)
class ChatSettings(ActorSettings):
    """A simulated Chat Server: its agents' desks and its customers."""
    agents: int = setting(0, INT, 0)                    # agents of the directory it logs in
    rate: float = setting(0.0, NUMBER)                  # new customers a second
    handle: str = setting("uniform:2,6", DIST)          # how long an agent keeps a chat
    think: str = setting("uniform:0.05,0.3", DIST)      # how long an agent takes to accept
    patience: str | None = setting(None, OPTIONAL_DIST)  # how long a customer waits for an agent
    mrd: str = setting("chat", TEXT)
    # client-side throttling (wire/throttle.py): while Comm refuses Tasks OVERLOADED, send
    # about this many times what it takes and refuse the rest here; 0: send every Task
    throttle: float = setting(1.1, NUMBER, 1)
    # a load scenario's Python hook (wire/hook.py): FILE.py:CLASS (from the topology's
    # directory) or MODULE:CLASS; only the topology names it, never a control message
    hook: str | None = setting(None, TEXT)


@dataclass(frozen=True)
class GcSettings(ActorSettings):
    """The Generic Connector: the voice side."""
    # voice queue -> {rate: outside calls a second, talk: how long a caller talks before hanging
    # up (a duration; absent: until the agent releases)}: voice_queues
    queues: dict[str, Any] = setting({}, VOICE_QUEUES)
    wrap_up: float = setting(0.0, NUMBER)               # s of WORK after a call; 0: none
    answer_delay: float = setting(1.0, NUMBER)          # s before an outside number answers
    licenses: int = setting(10_000, INT, 0)
    reason_codes: Any = setting(None, ANY)              # None: the GC's defaults
    phonebooks: Any = setting(None, ANY)
    client_timeout: float = setting(10.0, NUMBER, positive=True)  # s a client lives without Hello or Beat
    # how long an agent's phone rings before it answers by itself (Cisco's Auto Answer), a
    # duration; None: never (its client answers)
    auto_answer: str | None = setting(None, OPTIONAL_DIST)
    # calls a voice queue holds waiting for an agent: one past it is refused (calls_refused)
    max_waiting: int = setting(1_000, INT, 1)


COMM_DEFAULTS = CommSettings("comm")   # for Comm's parts made without a topology (tests, benchmarks)

SETTINGS: dict[str, type[ActorSettings]] = {"comm": CommSettings, "mre": MreSettings, "chat": ChatSettings,
                                            "gc": GcSettings}


def validate(role: str, entry: dict[str, Any], refuse: Callable[[str, str], Exception],
             defaults: dict[str, Any] | None = None) -> ActorSettings:
    """`entry` as `role`'s settings, every key checked; `refuse(key, reason)` makes the error
    raised for the first key at fault (an unknown one included). `defaults`: this topology's
    own, where they differ from the role's (io_threads under CURVE)."""
    cls = SETTINGS[role]
    known = {f.name: f for f in fields(cls)}
    for name in entry:
        if name not in known:
            raise refuse(str(name), f"unknown key (expected one of: {', '.join(known)})")
    values: dict[str, Any] = {"role": role}
    for name, f in known.items():
        if name == "role":
            continue
        value = entry.get(name, (defaults or {}).get(name, MISSING))
        if value is MISSING or (value is None and f.metadata["kind"] not in (TEXT, OPTIONAL_DIST, ANY)):
            continue   # the default
        if f.metadata["kind"] == VOICE_QUEUES:   # refused naming the key inside: queues.sales.talk
            values[name] = voice_queues(value, lambda at, reason, name=name: refuse(f"{name}.{at}" if at else name,
                                                                                 reason))
            continue
        values[name] = _checked(value, f.metadata, lambda reason, name=name: refuse(name, reason))
    return cls(**values)


def _checked(value: Any, meta: dict[str, Any], refuse: Callable[[str], Exception]) -> Any:
    kind, low, high = meta["kind"], meta["low"], meta["high"]
    if kind == INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise refuse(f"must be an integer {bounds}, not {value!r}")
        return value
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                meta["positive"] and value == 0):
            raise refuse(f"must be a number {'> 0' if meta['positive'] else '>= 0'}, not {value!r}")
        if low is not None and 0 < value < low:
            raise refuse(f"must be 0 (off) or a number >= {low:g}, not {value!r}")
        return float(value)
    if kind == BOOL:
        if not isinstance(value, bool):
            raise refuse(f"must be true or false, not {value!r}")
        return value
    if kind == CHOICE:
        if value not in meta["choices"]:
            raise refuse(f"must be {' or '.join(meta['choices'])}, not {value!r}")
        return value
    if kind == TEXT:
        if value is not None and (not isinstance(value, str) or not value):
            raise refuse(f"must be a non-empty string, not {value!r}")
        return value
    if kind in (DIST, OPTIONAL_DIST):
        from wire import dist
        try:
            parsed = dist.parse_optional(value) if kind == OPTIONAL_DIST else dist.parse(value)
        except ValueError as exc:
            raise refuse(str(exc)) from None
        return str(parsed) if parsed is not None else None
    if kind == MAPPING:
        if not isinstance(value, dict):
            raise refuse(f"must be a mapping, not {type(value).__name__}")
        return value
    return value


VOICE_QUEUE_KEYS = ("rate", "talk")
MAX_CALLS_PER_S = 1_000.0   # a voice queue's rate at most: its callers' timers and dialogs are the GC's


def voice_queues(value: Any, refuse: Callable[[str, str], Exception]) -> dict[str, dict[str, Any]]:
    """A GC's voice queues checked, `{NAME: {rate, talk}}`: `rate` calls a second (>= 0, 0 or
    absent: none), `talk` a duration (wire/dist.py) or None; `refuse(key, reason)` names the
    key at fault below the queues (`sales.talk`; "": the queues themselves). An empty entry
    is `{rate: 0, talk: None}`."""
    if not isinstance(value, dict):
        raise refuse("", f"must be a mapping of voice queues, not {type(value).__name__}")
    return {str(name): voice_queue(name, spec, refuse) for name, spec in value.items()}


def voice_queue(name: Any, spec: Any, refuse: Callable[[str, str], Exception],
                base: dict[str, Any] | None = None) -> dict[str, Any]:
    """One voice queue's entry, over `base` (its values so far: what the entry leaves out)."""
    if not isinstance(name, str) or not name:
        raise refuse(str(name), "a voice queue's name must be a non-empty string")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise refuse(name, f"must be a mapping (rate, talk), not {type(spec).__name__}")
    for key in spec:
        if key not in VOICE_QUEUE_KEYS:
            raise refuse(f"{name}.{key}", f"unknown key (expected one of: {', '.join(VOICE_QUEUE_KEYS)})")
    out = {"rate": 0.0, "talk": None, **(base or {})}
    if "rate" in spec:
        rate = spec["rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < float("inf"):
            raise refuse(f"{name}.rate", f"must be a number >= 0 (calls a second), not {rate!r}")
        if rate > MAX_CALLS_PER_S:
            raise refuse(f"{name}.rate", f"must be at most {MAX_CALLS_PER_S:g} calls a second, not {rate!r}")
        out["rate"] = float(rate)
    if "talk" in spec:
        from wire import dist
        try:
            talk = dist.parse_optional(spec["talk"])
        except ValueError as exc:
            raise refuse(f"{name}.talk", str(exc)) from None
        out["talk"] = str(talk) if talk is not None else None
    return out


def as_json(settings: ActorSettings) -> dict[str, Any]:
    """What topology.json holds for an actor."""
    return asdict(settings)


def from_json(role: str, entry: dict[str, Any]) -> ActorSettings:
    """An actor's settings as the supervisor wrote them (validated already)."""
    return SETTINGS[role](**{**entry, "role": role})
