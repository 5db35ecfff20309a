"""What every export writes from (honcho's export, for a topology): the workloads of a
topology, their ports and the files they read, worked out once.

The topology an orchestrator's pods read is the user's file with what a pod cannot share
taken out of it: its endpoints name Services (`tcp://local-comm:5550`), the directory of
agents is a file of its own (`agents: [{file: ../agents/agents.yaml}]`, a Secret, never
in the ConfigMap), CURVE keys are a Secret too, and run_dir, hosts and port_base go (each
pod has its own disk; `mroute actor --run-dir` says where)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from wire import passwords
from wire.catalogue import ENDPOINT_NAMES

from ..topology import BINDERS, Topology, TopologyError, load

PORT_BASE = 5550
HEALTH_PORT = 8080
DRAIN_TIMEOUT = 20.0          # seconds a Chat Server's preStop drain may take
CONFIG_DIR = "/etc/mroute"    # where a pod finds the topology, its agents and its keys
RUN_DIR = "/var/lib/mroute"   # where it keeps its state (Comm: the journal's volume)
IMAGE_UID = 10001             # the image's user (Containerfile): never root
# Port names a Service and a probe refer to (IANA service names: at most 15 characters).
PORT_NAMES = {"General": "general", "RoutingEngine": "routing-engine", "CommunicationServer": "comm-server",
              "ChatEvents": "chat-events", "GC": "gc", "GCEvents": "gc-events"}


@dataclass
class Workload:
    actor: str                       # the topology's actor name
    role: str
    count: int
    object_name: str                 # its Kubernetes objects' and Service's name
    ports: dict[str, int] = field(default_factory=dict)   # endpoint it binds -> port

    @property
    def stateful(self) -> bool:
        """Comm keeps a journal; a Chat Server is numbered (it desks the N-th block of
        agents): both need a stable identity, a StatefulSet's ordinal."""
        return self.role in ("comm", "chat")

    @property
    def desks(self) -> bool:
        """It logs agents in as their desks would: it reads their passwords, not hashes."""
        return self.role == "chat"

    def instances(self) -> list[str]:
        return [f"{self.actor}.{i}" for i in range(1, self.count + 1)]

    def keys(self, curve_files: dict[str, bytes]) -> list[str]:
        """The key files its pods are given (wire/curve.py says who holds which): the
        server's public key; where it binds, the server's secret and the allow-list; and
        its own key: the MRE's, a Chat Server actor's client key, or our actors' (never to
        a Chat Server)."""
        own = {"mre": ("mre.key", "mre.key_secret"),
               "chat": (f"clients/{self.actor}.key", f"clients/{self.actor}.key_secret")}.get(
            self.role, ("actors.key", "actors.key_secret"))
        return [path for path in curve_files if path == "server.key" or path in own
                or (self.ports and (path == "server.key_secret" or path.startswith("allowed/")))]


@dataclass
class Plan:
    topology: Topology
    name: str                             # the topology's name, every object's prefix
    workloads: list[Workload]
    endpoints: dict[str, str]             # what the exported topology says
    topology_text: str                    # the exported topology (ConfigMap)
    agents_hashed: str                    # the directory, password hashes only
    agents_plain: str                     # the directory as given (the simulated desks' passwords)
    curve_files: dict[str, bytes]         # relative path in the key directory -> content

    def workload(self, actor: str) -> Workload:
        return next(w for w in self.workloads if w.actor == actor)


def dns_label(text: str) -> str:
    """A name Kubernetes takes (RFC 1035 label): lower case, digits and '-'."""
    label = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")
    return label if label[:1].isalpha() else f"m-{label}"


def make_plan(path: str | Path, host_of: Callable[[Workload], str] | None = None) -> Plan:
    """The plan for the topology in `path`. `host_of(workload)` names the host its clients
    reach a binder at (default: its Service's name)."""
    topology = load(path)   # checked first: a bad file is refused before anything is written
    raw = yaml.safe_load(Path(path).read_text()) or {}
    name = dns_label(topology.name)
    workloads = [Workload(actor, spec["role"], spec["count"], object_name(topology.name, actor))
                 for actor, spec in topology.actors.items()]
    endpoints = {}
    for i, endpoint in enumerate(ENDPOINT_NAMES):
        binder = next((w for w in workloads if w.role == BINDERS[endpoint]), None)
        if binder is not None:
            binder.ports[endpoint] = PORT_BASE + i
            endpoints[endpoint] = f"tcp://{host_of(binder) if host_of else binder.object_name}:{PORT_BASE + i}"
    exported = {key: value for key, value in raw.items() if key not in ("run_dir", "hosts", "port_base", "endpoints",
                                                                         "transport", "agents", "security")}
    exported["transport"] = "tcp"
    exported["endpoints"] = endpoints
    exported["agents"] = [{"file": "../agents/agents.yaml"}]
    exported["actors"] = {actor: {k: v for k, v in spec.items() if k != "host"}
                          for actor, spec in (raw.get("actors") or {}).items()}
    for actor, spec in topology.actors.items():
        if str(spec.get("hook") or "").partition(":")[0].endswith(".py"):
            raise TopologyError(str(path), f"actors.{actor}.hook", "a hook's file is on this machine, not in the "
                                "image: name a module the image holds (MODULE:CLASS), or run it with mroute up")
    curve_files = {}
    if topology.security.get("curve"):
        exported["security"] = {"curve": "../curve"}
        topology.chat_keys()   # a simulated Chat Server actor's client key, made if it has none yet
        curve_files = key_files(Path(topology.security["curve"]),
                                [w.actor for w in workloads if w.role == "chat"])
    entries = agent_entries(raw.get("agents") or [], Path(path).absolute().parent)
    header = (f"# The topology {topology.name!r} as its pods read it: written by `mroute export` from "
              f"{Path(path).name}.\n# Endpoints name Services; the agents are in a Secret (../agents).\n")
    return Plan(topology, name, workloads, endpoints, header + dump(exported),
                dump([passwords.hashed_entry(entry) for entry in entries]), dump(entries), curve_files)


def agent_entries(entries: list[Any], base: Path) -> list[dict[str, Any]]:
    """The directory's entries as written (generate blocks stay blocks: 100,000 agents stay
    a line, well within a Secret's 1 MB), with `file:` entries read in."""
    out = []
    for entry in entries:
        if isinstance(entry, dict) and "file" in entry:
            included = Path(entry["file"]) if Path(entry["file"]).is_absolute() else base / entry["file"]
            out += yaml.safe_load(included.read_text())
        else:
            out.append(entry)
    return out


def key_files(directory: Path, chat_actors: list[str]) -> dict[str, bytes]:
    """The CURVE key directory's files some actor reads (other clients' secret keys stay
    out); each pod is given its own share (Workload.keys)."""
    names = ["server.key", "server.key_secret", "actors.key", "actors.key_secret", "mre.key", "mre.key_secret",
             *(f"clients/{actor}.{ext}" for actor in chat_actors for ext in ("key", "key_secret"))]
    files = {name: (directory / name).read_bytes() for name in names}
    files.update({f"allowed/{p.name}": p.read_bytes() for p in sorted((directory / "allowed").glob("*.key"))})
    return files


class _Dumper(yaml.SafeDumper):
    """Block style, text of several lines as a literal block (a topology in a ConfigMap
    reads as a file), and no anchors: a manifest says each thing where it is used."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _text)


def dump(data: Any, flow: bool | None = None) -> str:
    """YAML as people write it: `flow` None puts short leaf lists and mappings on a line."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=flow, width=120)


def object_name(topology_name: str, actor: str) -> str:
    """The name of an actor's Kubernetes objects: `local-comm`; its pods `local-comm-0`."""
    return f"{dns_label(topology_name)}-{dns_label(actor)}"
