"""`mroute load --scenario FILE`: a YAML file of what the command-line flags say, and of the
behaviours they cannot (wire/behaviour.py): the queues customers choose, offers left to time
out, chats transferred and conferenced, agents' breaks and shifts, and voice calls through the
GC that interrupt agents' chats. A flag given on the command line wins over the file.

Every key is checked here, before anything starts: an unknown key, a bad value and a key this
version does not simulate yet are refused naming the key; what the topology must have for them
(the queues, a GC with the voice queue, agents with an extension) is checked before the fleet starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from wire import behaviour, dist, hook as hooks
from wire.kernel.settings import MAX_CALLS_PER_S

from .plan import VoicePlan, parse_profile

TOP = ("chat_servers", "agents_per_server", "drain", "customers", "agents", "voice", "hook")
CUSTOMERS = ("rate", "duration", "profile", "patience", "queues", "priority")
AGENTS = ("handle", "think", "ignore_offer", "breaks", "shifts", "transfer", "conference")
VOICE = ("calls_per_s", "queue", "talk", "ring")


class ScenarioError(ValueError):
    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


@dataclass
class Scenario:
    flags: dict[str, Any] = field(default_factory=dict)   # load_command's parameter -> value, parsed
    behaviour: behaviour.Behaviour = field(default_factory=behaviour.Behaviour)
    hook: str | None = None        # FILE.py:CLASS (absolute) or MODULE:CLASS, checked to import
    voice: VoicePlan | None = None


def section(data: dict[str, Any], name: str, known: tuple[str, ...]) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(name, f"expected a mapping, not {value!r}")
    check_keys(value, known, f"{name}.")
    return value


def check_keys(data: dict[str, Any], known: tuple[str, ...], prefix: str = "") -> None:
    for key in data:
        if key not in known:
            raise ScenarioError(f"{prefix}{key}", f"unknown key (expected one of: {', '.join(known)})")


def integer(key: str, value: Any, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ScenarioError(key, f"must be an integer >= {low}, not {value!r}")
    return value


def positive(key: str, value: Any, low: float, inclusive: bool = True) -> float:
    if not behaviour.number(value) or value < low or (not inclusive and value == low):
        raise ScenarioError(key, f"must be a number {'>=' if inclusive else '>'} {low:g}, not {value!r}")
    return float(value)


def parsed(key: str, parser: Any, value: Any) -> Any:
    try:
        return parser(value)
    except ValueError as exc:
        raise ScenarioError(key, str(exc)) from None


def parse(data: Any, base: Path | None = None) -> Scenario:
    """A Scenario from a scenario file's content (`base`: its directory, where a hook's file
    is named from); raises ScenarioError naming the key. Without `base` (a scenario that came
    as text, from the web console) a hook is refused, never imported: what a request names
    must not run in our process."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError("(top)", f"a scenario is a mapping of keys, not {type(data).__name__}")
    check_keys(data, TOP)
    customers = section(data, "customers", CUSTOMERS)
    agents = section(data, "agents", AGENTS)
    flags: dict[str, Any] = {}
    if "chat_servers" in data:
        flags["servers"] = integer("chat_servers", data["chat_servers"], 1)
    if "agents_per_server" in data:
        flags["agents"] = integer("agents_per_server", data["agents_per_server"], 1)
    if "drain" in data:
        flags["drain"] = positive("drain", data["drain"], 0)
    if "rate" in customers:
        flags["rate"] = positive("customers.rate", customers["rate"], 0)
    if "duration" in customers:
        flags["duration"] = positive("customers.duration", customers["duration"], 0.5)
    if "profile" in customers:
        flags["profile"] = parsed("customers.profile", parse_profile, str(customers["profile"]))
    if "patience" in customers:
        flags["patience"] = parsed("customers.patience", dist.parse_optional, customers["patience"])
    for name in ("handle", "think"):
        if name in agents:
            flags[name] = parsed(f"agents.{name}", dist.parse, agents[name])
    wanted = {**{k: customers[k] for k in ("queues", "priority") if k in customers},
              **{k: agents[k] for k in ("ignore_offer", "transfer", "conference", "breaks", "shifts")
                 if k in agents}}
    try:
        behaves = behaviour.parse(wanted)
    except behaviour.BehaviourError as exc:
        section_of = "customers." if exc.key.split(".")[0] in ("queues", "priority") else "agents."
        raise ScenarioError(section_of + exc.key, exc.reason) from None
    if "hook" in data and base is None:
        raise ScenarioError("hook", "only a scenario file run by mroute load may name one (Chat Servers that run "
                                    "already take theirs from their topology: actors.NAME.hook)")
    return Scenario(flags, behaves, hook(data["hook"], base) if "hook" in data and base is not None else None,
                    voice_plan(data))


def hook(spec: Any, base: Path) -> str:
    """The hook's class, found, imported and made once here (as the Chat Servers will), so
    that a wrong one is said before anything starts."""
    try:
        resolved = hooks.resolve(spec, base)
        hooks.made(hooks.load(resolved))
    except hooks.HookError as exc:
        raise ScenarioError("hook", str(exc)) from None
    return resolved


def voice_plan(data: dict[str, Any]) -> VoicePlan | None:
    """`voice:`, when given: calls_per_s (required, > 0), the queue, and the callers' talk and
    the phones' ring (durations: every caller hangs up, or the agents would stay on their
    first call for good)."""
    if data.get("voice") is None:
        return None
    voice = section(data, "voice", VOICE)
    if "calls_per_s" not in voice:
        raise ScenarioError("voice.calls_per_s", "missing: inbound calls a second on the voice queue")
    calls_per_s = positive("voice.calls_per_s", voice["calls_per_s"], 0, inclusive=False)
    if calls_per_s > MAX_CALLS_PER_S:   # as the GC refuses a queue's rate
        raise ScenarioError("voice.calls_per_s", f"must be at most {MAX_CALLS_PER_S:g} calls a second, "
                                                 f"not {voice['calls_per_s']!r}")
    plan = VoicePlan(calls_per_s)
    if "queue" in voice:
        if not isinstance(voice["queue"], str) or not voice["queue"]:
            raise ScenarioError("voice.queue", f"must be the name of a voice queue of the GC, not {voice['queue']!r}")
        plan = replace(plan, queue=voice["queue"])
    for name in ("talk", "ring"):
        if name in voice:
            plan = replace(plan, **{name: parsed(f"voice.{name}", dist.parse, voice[name])})
    return plan


def read(path: str | Path) -> Scenario:
    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError("(file)", f"not YAML: {exc}") from None
    return parse(data, Path(path).absolute().parent)


def check_queues(scenario: Scenario, queues: dict[str, dict[str, Any]], mrd: str) -> None:
    """The queues customers choose are the topology's, on the MRD the Chat Servers route on."""
    for name in scenario.behaviour.queues:
        if name not in queues:
            raise ScenarioError(f"customers.queues.{name}", f"not a queue of the topology "
                                                            f"(it has: {', '.join(queues) or 'none'})")
        if queues[name].get("mrd") != mrd:
            raise ScenarioError(f"customers.queues.{name}", f"on MRD {queues[name].get('mrd')!r}, not the Chat "
                                                            f"Servers' {mrd!r}")


def voice_queue(scenario: Scenario, actors: dict[str, dict[str, Any]], mrds: dict[str, Any],
                desked: list[dict[str, Any]]) -> VoicePlan | None:
    """The scenario's voice plan with the GC's voice queue its calls go to (None: no voice),
    refused unless the topology has a GC with that queue and a voice MRD, and the agents the
    fleet desks (`desked`) include one with an extension (only those are on voice: protocol.md 2.5)."""
    voice = scenario.voice
    if voice is None:
        return None
    gc = next((spec for spec in actors.values() if spec.get("role") == "gc" and spec.get("count", 1) > 0), None)
    if gc is None:
        raise ScenarioError("voice", "the topology has no gc actor (the voice side): add one under actors:")
    queues = list(gc.get("queues") or {}) or ["default"]   # a GC without queues has one (actors/gc/centre.py)
    queue = voice.queue or queues[0]
    if queue not in queues:
        raise ScenarioError("voice.queue", f"{queue!r} is not a voice queue of the gc actor "
                                           f"(it has: {', '.join(queues)})")
    if "voice" not in mrds:
        raise ScenarioError("voice", "the topology has no voice MRD: Comm logs no agent into voice")
    if not any(agent.get("extension") for agent in desked):
        raise ScenarioError("voice", f"none of the {len(desked)} agents the Chat Servers desk has an extension "
                                     "(only those take calls): give some in the topology's agents, first")
    return replace(voice, queue=queue)
