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

from wire.catalogue import ENDPOINT_NAMES
from wire import passwords

from wire.kernel.roles import SINGLETONS

from .topocheck import NAME, TopologyError, Checker as _Checker, check_actors as _actors, check_agents as _agents
from .topocheck import check_mrds as _mrds, check_queues as _queues

TOP_KEYS = ("name", "transport", "endpoints", "run_dir", "mrds", "queues", "agents", "actors", "supervisor",
            "security", "hosts", "port_base", "metrics")
# Which role binds each documented endpoint: on a topology spread over hosts, the endpoint
# is on that role's host.
BINDERS = {"General": "comm", "CommunicationServer": "comm", "ChatEvents": "comm", "RoutingEngine": "mre",
           "GC": "gc", "GCEvents": "gc"}
# Seconds, but ping_misses: how many pings in a row an actor may leave unanswered before it
# is UNRESPONSIVE; still so after unresponsive_grace, it is killed and restarted. And an
# actor's log file: rotated past log_max_bytes, log_keep rotated files kept, so that the
# logs of an instance take at most (log_keep + 1) x log_max_bytes: 20 MB by default, which a
# small disk holds for a handful of actors.
SUPERVISOR_DEFAULTS = {"stop_grace": 3.0, "ready_timeout": 15.0, "ping_interval": 1.0, "ping_misses": 3,
                       "unresponsive_grace": 10.0, "log_max_bytes": 5 * 1024 * 1024, "log_keep": 3}
# The integer keys, with their least value (a log smaller than 4 KB would rotate every few lines).
SUPERVISOR_INTEGERS = {"ping_misses": 1, "log_max_bytes": 4096, "log_keep": 0}
IPC_PATH_MAX = 107  # bytes in a unix socket path (zeromq-rules 5)


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
    metrics: dict[str, Any] = field(default_factory=lambda: {"host": "127.0.0.1", "port": 0})  # the scrape target

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

    def served_endpoints(self) -> dict[str, str]:
        """The documented endpoints some actor of the topology binds (no GC ones without a gc)."""
        roles = {spec["role"] for spec in self.actors.values()}
        return {name: url for name, url in self.endpoints.items() if BINDERS.get(name) in roles}

    def control_endpoint(self, what: str) -> str:
        return f"ipc://{self.sock_dir}/{what}.ipc"

    def resolved(self) -> dict[str, Any]:
        """What actors read at start (run_dir/topology.json)."""
        agents = [passwords.hashed_entry(agent) for agent in self.agents]  # a password is never written down
        return {"name": self.name, "transport": self.transport, "endpoints": self.endpoints, "mrds": self.mrds,
                "queues": self.queues, "agents": agents, "actors": self.actors, "security": self.security,
                "tap_dir": str(self.sock_dir)}

    def tap_endpoint(self, instance: str) -> str:
        """Where an actor mirrors the queue messages it takes, while someone taps them."""
        from wire.control import tap_file
        return f"ipc://{self.sock_dir}/{tap_file(instance)}"

    def chat_keys(self) -> list[str]:
        """Under CURVE, make what the key directory lacks: the MRE's key (a directory made
        before it had one), and the client key of each simulated Chat Server actor (wire/
        curve.py: a Chat Server never gets our actors' key); returns the names of the client
        keys made. Called where a topology starts or is exported; writes nothing when all
        are there (a pod's keys are mounted read-only)."""
        from wire.curve import MRE, ensure_clients, from_security, make_keys
        curve = from_security(self.security)
        if curve is None:
            return []
        if not (curve.directory / f"{MRE}.key_secret").exists() and (curve.directory / "actors.key_secret").exists():
            make_keys(curve.directory)
        return ensure_clients(curve.directory, sorted(n for n, s in self.actors.items() if s["role"] == "chat"))

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
    # Relative paths are from where the file is named, not where a link to it points: a
    # Kubernetes ConfigMap's file is a link into a hidden directory (..data/) beside it.
    base = path.absolute().parent
    run_dir = Path(data["run_dir"]) if "run_dir" in data else Path(".mroute") / name
    run_dir = run_dir if run_dir.is_absolute() else base / run_dir
    sock_dir = short_socket_dir(run_dir)

    mrds = _mrds(c, data.get("mrds"))
    queues = _queues(c, data.get("queues", {}), mrds)
    agents = _agents(c, data.get("agents"), base)
    security = _security(c, data.get("security"), base)
    actors = _actors(c, data.get("actors"), len(agents), curve=bool(security), base=base)
    hosts = _hosts(c, data.get("hosts"), transport, actors)   # before port_base: hosts need tcp, said first
    port_base = _port_base(c, data, transport)
    endpoints = _endpoints(c, data.get("endpoints", {}), transport, sock_dir, port_base)
    supervisor = c.mapping(data.get("supervisor") or {}, "supervisor")
    c.known_keys(supervisor, tuple(SUPERVISOR_DEFAULTS), "supervisor")
    timings = {key: c.integer(supervisor.get(key, default), f"supervisor.{key}", SUPERVISOR_INTEGERS[key])
               if key in SUPERVISOR_INTEGERS else c.number(supervisor.get(key, default), f"supervisor.{key}")
               for key, default in SUPERVISOR_DEFAULTS.items()}
    if hosts:  # an endpoint not given is on the host of the actor that binds it
        given = c.mapping(data.get("endpoints") or {}, "endpoints")
        for i, endpoint in enumerate(endpoints):
            binder = next((s for s in actors.values() if s["role"] == BINDERS[endpoint]), None)
            if endpoint not in given and binder is not None:
                endpoints[endpoint] = f"tcp://{hosts[binder['host']]}:{port_base + i}"
    metrics = c.mapping(data.get("metrics") or {}, "metrics")
    c.known_keys(metrics, ("port", "host", "names"), "metrics")
    names = metrics.get("names", [])   # what a scrape's Host may say besides the address (launch/httpguard.py)
    if not isinstance(names, list):
        raise c.fail("metrics.names", f"must be a list of names (host or host:port), not {names!r}")
    scrape = {"host": c.string(metrics.get("host", "127.0.0.1"), "metrics.host"),
              "port": c.integer(metrics.get("port", 0), "metrics.port", 0, 65535),
              "names": [c.string(name, f"metrics.names[{i}]") for i, name in enumerate(names)]}
    return Topology(path, name, transport, run_dir, sock_dir, endpoints, mrds, queues, agents, actors, timings,
                    security, hosts, metrics=scrape)


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
    # what every actor needs: the server's public key. The rest each actor reads where it
    # needs it (wire/curve.py), so that a pod is given its own key only: never the server's
    # secret one where nothing binds, nor our actors' key to a Chat Server.
    for needed in ("server.key",):
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


def _port_base(c: _Checker, data: dict[str, Any], transport: str) -> int:
    """The first port of the tcp endpoints not given (each endpoint its index above it). On
    ipc it would mean nothing: refused rather than silently ignored (issue 25)."""
    if "port_base" in data and transport != "tcp":
        raise c.fail("port_base", f"sets the ports of tcp endpoints, but transport is {transport} (unix sockets in "
                                  "the run directory): set transport: tcp, or remove port_base")
    return c.integer(data.get("port_base", 5550), "port_base", 1, 65535 - (len(ENDPOINT_NAMES) - 1))


def _endpoints(c: _Checker, raw: Any, transport: str, sock_dir: Path, port_base: int) -> dict[str, str]:
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
            endpoints[name] = f"tcp://127.0.0.1:{port_base + i}"
    return endpoints
