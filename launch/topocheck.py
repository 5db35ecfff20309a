"""The checks of a topology file's sections (design.md section 4): each value's type and
range, the MRDs, queues, agents and actors, every refusal naming the file, the key and the
reason. topology.py parses the file and assembles what these return."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from wire import hook, passwords
from wire.expr import ExprError, compile_expr
from wire.kernel import settings
from wire.kernel.roles import ROLES, SINGLETONS

NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class TopologyError(Exception):
    def __init__(self, file: str, key: str, reason: str):
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file, self.key, self.reason = file, key, reason

POLICIES = ("LONGEST_AVAILABLE", "LEAST_BUSY", "ROUND_ROBIN", "MOST_SKILLED", "LEAST_SKILLED")


class Checker:
    def __init__(self, file: str):
        self.file = file

    def fail(self, key: str, reason: str) -> TopologyError:
        return TopologyError(self.file, key, reason)

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, not {type(value).__name__}")
        return value

    def integer(self, value: Any, key: str, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise self.fail(key, f"must be an integer {bounds}, not {value!r}")
        return value

    def number(self, value: Any, key: str, positive: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
            raise self.fail(key, f"must be a number {'> 0' if positive else '>= 0'}, not {value!r}")
        return float(value)

    def string(self, value: Any, key: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} may hold only letters, digits, '_' and '-'")
        return value

    def known_keys(self, data: dict[str, Any], allowed: tuple[str, ...], key: str) -> None:
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, f"unknown key (expected one of: {', '.join(allowed)})")


def check_mrds(c: Checker, raw: Any) -> dict[str, dict[str, Any]]:
    if raw is None:
        raise c.fail("mrds", "is required: at least one media routing domain")
    raw = c.mapping(raw, "mrds")
    if not raw:
        raise c.fail("mrds", "needs at least one MRD")
    mrds = {}
    for name, spec in raw.items():
        key = f"mrds.{name}"
        c.string(name, key, NAME)
        spec = c.mapping(spec if spec is not None else {}, key)
        c.known_keys(spec, ("max_tasks", "interruptible"), key)
        interruptible = spec.get("interruptible", True)
        if not isinstance(interruptible, bool):
            raise c.fail(f"{key}.interruptible", f"must be true or false, not {interruptible!r}")
        mrds[name] = {"max_tasks": c.integer(spec.get("max_tasks", 1), f"{key}.max_tasks", 1, 10),
                      "interruptible": interruptible}
    return mrds


def check_queues(c: Checker, raw: Any, mrds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = c.mapping(raw if raw is not None else {}, "queues")
    queues = {}
    for name, spec in raw.items():
        key = f"queues.{name}"
        c.string(name, key, NAME)
        spec = c.mapping(spec, key)
        c.known_keys(spec, ("mrd", "policy", "offer_timeout", "ttl", "steps", "ageing"), key)
        mrd = spec.get("mrd")
        if mrd not in mrds:
            raise c.fail(f"{key}.mrd", f"{mrd!r} is not one of the mrds ({', '.join(mrds)})")
        policy = spec.get("policy", "LONGEST_AVAILABLE")
        if policy not in POLICIES:
            raise c.fail(f"{key}.policy", f"{policy!r} is not one of {', '.join(POLICIES)}")
        steps = spec.get("steps", [{"expr": "true", "timeout": 0}])
        if not isinstance(steps, list) or not steps:
            raise c.fail(f"{key}.steps", "must be a non-empty list of {expr, timeout}")
        checked_steps = []
        for i, step in enumerate(steps):
            step_key = f"{key}.steps[{i}]"
            step = c.mapping(step, step_key)
            c.known_keys(step, ("expr", "timeout"), step_key)
            expr = c.string(step.get("expr", "true"), f"{step_key}.expr")
            try:
                compile_expr(expr)
            except ExprError as exc:
                raise c.fail(f"{step_key}.expr", str(exc))
            checked_steps.append({"expr": expr,
                                  "timeout": c.number(step.get("timeout", 0), f"{step_key}.timeout", positive=False)})
        queues[name] = {"mrd": mrd, "policy": policy,
                        "offer_timeout": c.number(spec.get("offer_timeout", 15), f"{key}.offer_timeout"),
                        "ttl": c.number(spec.get("ttl", 300), f"{key}.ttl"), "steps": checked_steps,
                        "ageing": c.number(spec.get("ageing", 60), f"{key}.ageing")}
    # Every MRD has a default queue: the first of its queues, else one that takes any agent.
    for mrd, spec in mrds.items():
        own = [name for name, q in queues.items() if q["mrd"] == mrd]
        if not own:
            name = f"{mrd}-default"
            queues[name] = {"mrd": mrd, "policy": "LONGEST_AVAILABLE", "offer_timeout": 15.0, "ttl": 300.0,
                            "steps": [{"expr": "true", "timeout": 0.0}], "ageing": 60.0}
            own = [name]
        spec["default_queue"] = own[0]
    return queues


AGENT_KEYS = ("id", "password", "password_hash", "name", "extension", "team", "supervisor", "attributes")


def check_secret(c: Checker, entry: dict[str, Any], key: str) -> dict[str, str]:
    """An agent's `password` or `password_hash`, checked."""
    if "password_hash" in entry:
        if not passwords.is_hash(c.string(entry["password_hash"], f"{key}.password_hash")):
            raise c.fail(f"{key}.password_hash", "must be pbkdf2_sha256$<iterations>$<salt>$<hash>")
        return {"password_hash": entry["password_hash"]}
    password = c.string(entry.get("password"), f"{key}.password")
    if "," in password:
        raise c.fail(f"{key}.password", "must not contain a comma (it would split a voice command)")
    return {"password": password}


def check_agents(c: Checker, raw: Any, base: Path) -> list[dict[str, Any]]:
    """The directory: agents, `{generate: ...}` blocks, and `{file: PATH}` entries that take
    a list of either from a file (relative to the topology's directory), so that passwords
    can live apart from the topology: a Kubernetes Secret beside its ConfigMap."""
    if not isinstance(raw, list) or not raw:
        raise c.fail("agents", "must be a non-empty list of agents or {generate: ...} entries")
    agents: list[dict[str, Any]] = []
    for i, entry in enumerate(raw):
        key = f"agents[{i}]"
        entry = c.mapping(entry, key)
        if "file" in entry:
            c.known_keys(entry, ("file",), key)
            agents += _agents_file(c, Path(c.string(entry["file"], f"{key}.file")), base, key)
        else:
            agents += _agent_entry(c, entry, key)
    seen: set[str] = set()
    for agent in agents:
        if agent["id"] in seen:
            raise c.fail("agents", f"agent id {agent['id']!r} appears twice")
        seen.add(agent["id"])
    return agents


def _agent_entry(c: Checker, entry: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """One entry of the directory: an agent, or the agents a `generate` block makes."""
    if "generate" not in entry:
        c.known_keys(entry, AGENT_KEYS, key)
        extension = entry.get("extension", "")
        return [{"id": c.string(entry.get("id"), f"{key}.id"), **check_secret(c, entry, key),
                 "name": entry.get("name", entry.get("id")), "extension": str(extension or ""),
                 "team": entry.get("team", ""), "supervisor": bool(entry.get("supervisor", False)),
                 "attributes": c.mapping(entry.get("attributes", {}), f"{key}.attributes")}]
    c.known_keys(entry, ("generate",), key)
    gen = c.mapping(entry["generate"], f"{key}.generate")
    c.known_keys(gen, ("count", "prefix", "password", "password_hash", "attributes", "start", "team"),
                 f"{key}.generate")
    count = c.integer(gen.get("count"), f"{key}.generate.count", 1)
    prefix = c.string(gen.get("prefix", "agent"), f"{key}.generate.prefix")
    secret = check_secret(c, gen, f"{key}.generate")
    attributes = c.mapping(gen.get("attributes", {}), f"{key}.generate.attributes")
    start = c.integer(gen.get("start", 1), f"{key}.generate.start", 0)
    return [{"id": f"{prefix}{n}", **secret, "name": f"{prefix} {n}", "extension": "", "team": gen.get("team", ""),
             "supervisor": False, "attributes": dict(attributes)} for n in range(start, start + count)]


def _agents_file(c: Checker, path: Path, base: Path, key: str) -> list[dict[str, Any]]:
    """The agents a `{file: PATH}` entry names: a YAML list of agents and generate blocks
    (not of files again), refused with that file's name and the entry's place in it."""
    path = path if path.is_absolute() else base / path
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise c.fail(f"{key}.file", f"cannot read {path}: {exc.strerror}")
    except yaml.YAMLError as exc:
        raise c.fail(f"{key}.file", f"{path} is not valid YAML: {getattr(exc, 'problem', exc)}")
    inner = Checker(str(path))
    if not isinstance(raw, list) or not raw:
        raise inner.fail("", "must be a non-empty list of agents or {generate: ...} entries")
    agents = []
    for i, entry in enumerate(raw):
        entry = inner.mapping(entry, f"[{i}]")
        if "file" in entry:
            raise inner.fail(f"[{i}].file", "a file of agents may not name another file")
        agents += _agent_entry(inner, entry, f"[{i}]")
    return agents


# With CURVE, Comm binds the queues every client reaches, so a storm of handshakes (a
# wrong-key storm: `mroute bench curve`) lands on its I/O threads. With two, the storm's
# connections spread over both and an established client's messages wait behind half of it:
# the honest p50 under 1,500 wrong-key sockets went from 1.9x to 1.4x its rest value.
# Without CURVE a handshake costs next to nothing, and one thread is woken once a turn
# instead of two: routing p50 at 1,000 tasks/s 0.88 ms with one, 0.91-1.01 ms with two.
CURVE_IO_THREADS = {"comm": 2}


def check_actors(c: Checker, raw: Any, directory_size: int, curve: bool = False,
                 base: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """Each entry validated into its role's settings (wire/kernel/settings.py), kept as the
    JSON the actors read back; a chat actor's hook file named from `base` (the topology's
    directory), checked to be there (the Chat Server imports it, not this process)."""
    raw = c.mapping(raw, "actors") if raw is not None else None
    if not raw:
        raise c.fail("actors", "is required: which processes to run")
    actors = {}
    desked = 0
    for name, spec in raw.items():
        key = f"actors.{name}"
        c.string(name, key, NAME)
        spec = c.mapping(spec, key)
        role = spec.get("role")
        if role not in ROLES:
            raise c.fail(f"{key}.role", f"{role!r} is not a role (known: {', '.join(sorted(ROLES))})")
        defaults = {"io_threads": CURVE_IO_THREADS.get(role, 1)} if curve else None
        entry = settings.validate(role, {k: v for k, v in spec.items() if k != "role"},
                                  lambda at, reason, key=key: c.fail(f"{key}.{at}", reason), defaults)
        if role in SINGLETONS and entry.count > 1:
            raise c.fail(f"{key}.count", f"a {role} binds the documented queues: run at most one")
        if isinstance(entry, settings.ChatSettings):
            desked += entry.count * entry.agents
            if entry.hook is not None:
                try:
                    entry = replace(entry, hook=hook.resolve(entry.hook, base))
                except hook.HookError as exc:
                    raise c.fail(f"{key}.hook", str(exc)) from None
        actors[name] = settings.as_json(entry)
    roles = [spec["role"] for spec in actors.values()]
    for role in ("comm", "mre"):
        if roles.count(role) > 1:
            raise c.fail("actors", f"more than one actor has role {role}")
    if desked > directory_size:
        raise c.fail("actors", f"the chat actors desk {desked} agents but the directory (agents) has only "
                               f"{directory_size}")
    return actors
