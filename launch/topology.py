"""Load and check a topology file (design.md section 4).

A bad file is refused before anything starts, with the file, the key and the reason:
`topology.yaml: actors.chat.count: must be an integer >= 0, not 'two'`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from actors import ROLES
from wire.catalogue import ENDPOINT_NAMES
from wire import dist as durations, passwords
from wire.expr import ExprError, compile_expr

POLICIES = ("LONGEST_AVAILABLE", "LEAST_BUSY", "ROUND_ROBIN", "MOST_SKILLED", "LEAST_SKILLED")
TOP_KEYS = ("name", "transport", "endpoints", "run_dir", "mrds", "queues", "agents", "actors", "supervisor",
            "security", "hosts", "port_base")
# Which role binds each documented endpoint: on a topology spread over hosts, the endpoint
# is on that role's host.
BINDERS = {"General": "comm", "CommunicationServer": "comm", "ChatEvents": "comm", "RoutingEngine": "mre",
           "GC": "gc", "GCEvents": "gc"}
# Seconds, but ping_misses: how many pings in a row an actor may leave unanswered before it
# is UNRESPONSIVE; still so after unresponsive_grace, it is killed and restarted.
SUPERVISOR_DEFAULTS = {"stop_grace": 3.0, "ready_timeout": 15.0, "ping_interval": 1.0, "ping_misses": 3,
                       "unresponsive_grace": 10.0}
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
IPC_PATH_MAX = 107  # bytes in a unix socket path (zeromq-rules 5)
SINGLETONS = ("comm", "mre", "gc")  # roles that bind the documented queues: one instance each


class TopologyError(Exception):
    def __init__(self, file: str, key: str, reason: str):
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file, self.key, self.reason = file, key, reason


@dataclass
class Topology:
    path: Path
    name: str
    transport: str
    run_dir: Path
    sock_dir: Path            # where ipc sockets live: run_dir, or a short path when it is too long
    endpoints: dict[str, str]
    mrds: dict[str, dict[str, Any]]
    queues: dict[str, dict[str, Any]]
    agents: list[dict[str, Any]]
    actors: dict[str, dict[str, Any]] = field(default_factory=dict)
    supervisor: dict[str, float] = field(default_factory=lambda: dict(SUPERVISOR_DEFAULTS))
    security: dict[str, Any] = field(default_factory=dict)   # {curve: absolute key directory}, if any
    hosts: dict[str, str] = field(default_factory=dict)      # host name -> address, when spread over hosts
    host: str | None = None                                  # the host this supervisor runs (for_host)

    def for_host(self, host: str | None) -> "Topology":
        """The share of one host: its actors only, run state in a directory of its own."""
        if host is None:
            return self
        if host not in self.hosts:
            known = ", ".join(self.hosts) or "none: the topology has no hosts"
            raise TopologyError(str(self.path), "hosts", f"no host named {host!r} (known: {known})")
        run_dir = self.run_dir / host
        return replace(self, host=host, run_dir=run_dir, sock_dir=short_socket_dir(run_dir))

    def instances(self) -> list[tuple[str, str]]:
        """(instance name, role) of every process, binders first so clients find them up."""
        order = {"comm": 0, "mre": 1, "gc": 2}
        out = []
        mine = {n: s for n, s in self.actors.items() if self.host is None or s.get("host") == self.host}
        for name, spec in sorted(mine.items(), key=lambda kv: (order.get(kv[1]["role"], 9), kv[0])):
            out += [(f"{name}.{i}", spec["role"]) for i in range(1, spec["count"] + 1)]
        return out

    def control_endpoint(self, what: str) -> str:
        return f"ipc://{self.sock_dir}/{what}.ipc"

    def resolved(self) -> dict[str, Any]:
        """What actors read at start (run_dir/topology.json)."""
        agents = []
        for agent in self.agents:
            entry = {k: v for k, v in agent.items() if k != "password"}  # never written down
            if "password" in agent:
                entry["password_hash"] = passwords.shared_hash(agent["password"])
            agents.append(entry)
        return {"name": self.name, "transport": self.transport, "endpoints": self.endpoints, "mrds": self.mrds,
                "queues": self.queues, "agents": agents, "actors": self.actors, "security": self.security,
                "tap_dir": str(self.sock_dir)}

    def tap_endpoint(self, instance: str) -> str:
        """Where an actor mirrors the queue messages it takes, while someone taps them."""
        from wire.control import tap_file
        return f"ipc://{self.sock_dir}/{tap_file(instance)}"

    def data_socket(self, ctx: Any, kind: int, endpoint: str) -> Any:
        """A socket connected to one of the documented queues or streams, as a client the
        topology lets in (CURVE with our actors' key when it asks for CURVE)."""
        from wire.curve import from_security
        sock = ctx.socket(kind)
        sock.linger = 500
        curve = from_security(self.security)
        if curve is not None:
            curve.connect_as(sock)
        sock.connect(self.endpoints[endpoint])
        return sock


class _Checker:
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


def load(path: str | os.PathLike[str]) -> Topology:
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(file, "", f"cannot read: {exc.strerror}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise TopologyError(file, "", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")
    return parse(data, path)


def parse(data: Any, path: Path) -> Topology:
    c = _Checker(str(path))
    data = c.mapping(data if data is not None else {}, "")
    c.known_keys(data, TOP_KEYS, "")
    name = c.string(data.get("name", "local"), "name", NAME)
    transport = data.get("transport", "ipc")
    if transport not in ("ipc", "tcp"):
        raise c.fail("transport", f"must be ipc or tcp, not {transport!r}")
    base = path.resolve().parent
    run_dir = Path(data["run_dir"]) if "run_dir" in data else Path(".mroute") / name
    run_dir = run_dir if run_dir.is_absolute() else base / run_dir
    sock_dir = short_socket_dir(run_dir)

    mrds = _mrds(c, data.get("mrds"))
    queues = _queues(c, data.get("queues", {}), mrds)
    agents = _agents(c, data.get("agents"))
    actors = _actors(c, data.get("actors"), len(agents))
    endpoints = _endpoints(c, data.get("endpoints", {}), transport, sock_dir)
    supervisor = c.mapping(data.get("supervisor") or {}, "supervisor")
    c.known_keys(supervisor, tuple(SUPERVISOR_DEFAULTS), "supervisor")
    timings = {key: c.integer(supervisor.get(key, default), f"supervisor.{key}", 1) if key == "ping_misses"
               else c.number(supervisor.get(key, default), f"supervisor.{key}")
               for key, default in SUPERVISOR_DEFAULTS.items()}
    security = _security(c, data.get("security"), base)
    hosts = _hosts(c, data.get("hosts"), transport, actors)
    if hosts:  # an endpoint not given is on the host of the actor that binds it
        port_base = c.integer(data.get("port_base", 5550), "port_base", 1)
        given = c.mapping(data.get("endpoints") or {}, "endpoints")
        for i, endpoint in enumerate(endpoints):
            binder = next((s for s in actors.values() if s["role"] == BINDERS[endpoint]), None)
            if endpoint not in given and binder is not None:
                endpoints[endpoint] = f"tcp://{hosts[binder['host']]}:{port_base + i}"
    return Topology(path, name, transport, run_dir, sock_dir, endpoints, mrds, queues, agents, actors, timings,
                    security, hosts)


def _hosts(c: _Checker, raw: Any, transport: str, actors: dict[str, dict[str, Any]]) -> dict[str, str]:
    """`hosts: {name: address}`; each actor's `host` (default: the first host)."""
    hosts = {str(k): c.string(v, f"hosts.{k}") for k, v in c.mapping(raw if raw is not None else {}, "hosts").items()}
    for name, spec in actors.items():
        if not hosts:
            if spec.get("host"):
                raise c.fail(f"actors.{name}.host", "names a host, but the topology has no hosts")
            continue
        spec["host"] = spec.get("host") or next(iter(hosts))
        if spec["host"] not in hosts:
            raise c.fail(f"actors.{name}.host", f"{spec['host']!r} is not one of the hosts ({', '.join(hosts)})")
    if hosts and transport != "tcp":
        raise c.fail("transport", "must be tcp when actors are placed on hosts")
    return hosts


def _security(c: _Checker, raw: Any, base: Path) -> dict[str, Any]:
    raw = c.mapping(raw if raw is not None else {}, "security")
    c.known_keys(raw, ("curve",), "security")
    if not raw.get("curve"):
        return {}
    directory = Path(c.string(raw["curve"], "security.curve"))
    directory = directory if directory.is_absolute() else base / directory
    for needed in ("server.key_secret", "actors.key_secret", "allowed"):
        if not (directory / needed).exists():
            raise c.fail("security.curve", f"{directory} has no {needed}: make the keys with `mroute keys {directory}`")
    return {"curve": str(directory)}


def short_socket_dir(run_dir: Path) -> Path:
    """ipc paths are limited to 107 bytes: when the run directory is too deep, sockets go
    to a short directory under /tmp named after it."""
    longest = f"{run_dir}/CommunicationServer.ipc"
    if len(longest.encode()) <= IPC_PATH_MAX:
        return run_dir
    digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:12]
    return Path(f"/tmp/mroute-{os.getuid()}-{digest}")


def _mrds(c: _Checker, raw: Any) -> dict[str, dict[str, Any]]:
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


def _queues(c: _Checker, raw: Any, mrds: dict[str, Any]) -> dict[str, dict[str, Any]]:
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


def _secret(c: _Checker, entry: dict[str, Any], key: str) -> dict[str, str]:
    """An agent's `password` or `password_hash`, checked."""
    if "password_hash" in entry:
        if not passwords.is_hash(c.string(entry["password_hash"], f"{key}.password_hash")):
            raise c.fail(f"{key}.password_hash", "must be pbkdf2_sha256$<iterations>$<salt>$<hash>")
        return {"password_hash": entry["password_hash"]}
    password = c.string(entry.get("password"), f"{key}.password")
    if "," in password:
        raise c.fail(f"{key}.password", "must not contain a comma (it would split a voice command)")
    return {"password": password}


def _agents(c: _Checker, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise c.fail("agents", "must be a non-empty list of agents or {generate: ...} entries")
    agents: list[dict[str, Any]] = []
    for i, entry in enumerate(raw):
        key = f"agents[{i}]"
        entry = c.mapping(entry, key)
        if "generate" in entry:
            c.known_keys(entry, ("generate",), key)
            gen = c.mapping(entry["generate"], f"{key}.generate")
            c.known_keys(gen, ("count", "prefix", "password", "password_hash", "attributes", "start", "team"),
                         f"{key}.generate")
            count = c.integer(gen.get("count"), f"{key}.generate.count", 1)
            prefix = c.string(gen.get("prefix", "agent"), f"{key}.generate.prefix")
            secret = _secret(c, gen, f"{key}.generate")
            attributes = c.mapping(gen.get("attributes", {}), f"{key}.generate.attributes")
            start = c.integer(gen.get("start", 1), f"{key}.generate.start", 0)
            for n in range(start, start + count):
                agents.append({"id": f"{prefix}{n}", **secret, "name": f"{prefix} {n}",
                               "extension": "", "team": gen.get("team", ""), "supervisor": False,
                               "attributes": dict(attributes)})
        else:
            c.known_keys(entry, AGENT_KEYS, key)
            extension = entry.get("extension", "")
            agents.append({"id": c.string(entry.get("id"), f"{key}.id"), **_secret(c, entry, key),
                           "name": entry.get("name", entry.get("id")), "extension": str(extension or ""),
                           "team": entry.get("team", ""), "supervisor": bool(entry.get("supervisor", False)),
                           "attributes": c.mapping(entry.get("attributes", {}), f"{key}.attributes")})
    seen: set[str] = set()
    for agent in agents:
        if agent["id"] in seen:
            raise c.fail("agents", f"agent id {agent['id']!r} appears twice")
        seen.add(agent["id"])
    return agents


CHAT_KEYS = ("role", "count", "host", "agents", "rate", "handle", "think", "patience", "mrd")
GC_KEYS = ("role", "count", "host", "queues", "wrap_up", "answer_delay", "licenses", "reason_codes", "phonebooks")


def _actors(c: _Checker, raw: Any, directory_size: int) -> dict[str, dict[str, Any]]:
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
        count = c.integer(spec.get("count", 1), f"{key}.count", 0)
        if role in SINGLETONS and count > 1:
            raise c.fail(f"{key}.count", f"a {role} binds the documented queues: run at most one")
        entry = {"role": role, "count": count}
        if spec.get("host") is not None:
            entry["host"] = c.string(spec["host"], f"{key}.host")
        if role == "chat":
            c.known_keys(spec, CHAT_KEYS, key)
            entry["agents"] = c.integer(spec.get("agents", 0), f"{key}.agents", 0)
            entry["rate"] = c.number(spec.get("rate", 0), f"{key}.rate", positive=False)
            for dist_key, default in (("handle", "uniform:2,6"), ("think", "uniform:0.05,0.3"), ("patience", None)):
                try:
                    reader = durations.parse_optional if dist_key == "patience" else durations.parse
                    dist = reader(spec.get(dist_key, default))
                except ValueError as exc:
                    raise c.fail(f"{key}.{dist_key}", str(exc)) from None
                entry[dist_key] = str(dist) if dist is not None else None
            entry["mrd"] = spec.get("mrd", "chat")
            desked += count * entry["agents"]
        elif role == "gc":
            c.known_keys(spec, GC_KEYS, key)
            entry.update({k: spec[k] for k in GC_KEYS[3:] if k in spec})
            queues = c.mapping(spec.get("queues") or {}, f"{key}.queues")
            for qname, qspec in queues.items():
                c.number(c.mapping(qspec or {}, f"{key}.queues.{qname}").get("rate", 0),
                         f"{key}.queues.{qname}.rate", positive=False)
            for number_key in ("wrap_up", "answer_delay"):
                if number_key in spec:
                    c.number(spec[number_key], f"{key}.{number_key}", positive=False)
        elif role == "comm":
            c.known_keys(spec, ("role", "count", "host", "journal", "logout_grace", "max_live_tasks", "events_hwm"), key)
            entry["max_live_tasks"] = c.integer(spec.get("max_live_tasks", 100_000), f"{key}.max_live_tasks", 1)
            entry["events_hwm"] = c.integer(spec.get("events_hwm", 100_000), f"{key}.events_hwm", 1)
            journal = spec.get("journal", True)
            if not isinstance(journal, bool):
                raise c.fail(f"{key}.journal", f"must be true or false, not {journal!r}")
            entry["journal"] = journal
            entry["logout_grace"] = c.number(spec.get("logout_grace", 10), f"{key}.logout_grace", positive=False)
        else:
            c.known_keys(spec, ("role", "count", "host"), key)
        actors[name] = entry
    roles = [spec["role"] for spec in actors.values()]
    for role in ("comm", "mre"):
        if roles.count(role) > 1:
            raise c.fail("actors", f"more than one actor has role {role}")
    if desked > directory_size:
        raise c.fail("actors", f"the chat actors desk {desked} agents but the directory (agents) has only "
                               f"{directory_size}")
    return actors


def _endpoints(c: _Checker, raw: Any, transport: str, sock_dir: Path) -> dict[str, str]:
    raw = c.mapping(raw if raw is not None else {}, "endpoints")
    c.known_keys(raw, ENDPOINT_NAMES, "endpoints")
    endpoints = {}
    for i, name in enumerate(ENDPOINT_NAMES):
        if name in raw:
            value = c.string(raw[name], f"endpoints.{name}")
            if not value.startswith(("ipc://", "tcp://")):
                raise c.fail(f"endpoints.{name}", f"{value!r} must start with ipc:// or tcp://")
            endpoints[name] = value
        elif transport == "ipc":
            endpoints[name] = f"ipc://{sock_dir}/{name}.ipc"
        else:
            endpoints[name] = f"tcp://127.0.0.1:{5550 + i}"
    return endpoints
