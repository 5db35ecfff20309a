"""`mroute export compose`: a docker compose project, from the same plan as Kubernetes.

A service per actor instance (`chat-1`, `chat-2`: compose's replicas have no number, and a
Chat Server desks its agents by its number); the topology, the directory and the keys are
files beside compose.yaml, mounted read-only where the pods of Kubernetes find them, and
each service's state (Comm's journal) is a directory beside them, `state/NAME`. Services
reach each other by name on the project's network.

The services run as the user who exported (`user:`), who owns the files, readable by that
user only; never as root: exported by root, they run as the image's user, who is then given
the files (the command chowns them). Each service's health port (/metrics among its paths)
is published on the host's 127.0.0.1, one host port each, counted up from a base in the
order of services(). A control token (`control/token`, made at export) lets a client on the
host read a service's /stats and set a Chat Server's load through its published port
(`mroute load --attach-pods 127.0.0.1:PORT --control-token-file control/token`): such a
client reaches the service from the project network's gateway, not from the service's own
host, and the port serves strangers nothing else."""

from __future__ import annotations

import secrets
from typing import Any

from .plan import CONFIG_DIR, HEALTH_PORT, IMAGE_UID, RUN_DIR, Plan, Workload, dump

READY_CHECK = ("import sys, urllib.request; "
               f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{HEALTH_PORT}/readyz').status != 200)")
# A shell's string, not an exec form's list: podman-compose 1.0.3 joins a `CMD` list into
# one `/bin/sh -c` word, which splits an argument with spaces (`python -c import`), while a
# `CMD-SHELL` string is quoted whole; docker compose runs either. READY_CHECK holds no
# double quote, `$`, backquote or backslash: nothing the shell would read in it.
HEALTHCHECK = ["CMD-SHELL", f'python -c "{READY_CHECK}"']


def services(plan: Plan) -> list[tuple[Workload, str, str]]:
    """(workload, instance, service name) of each service: `comm`, `chat-2`."""
    return [(w, instance, f"{w.actor}-{instance.rpartition('.')[2]}" if w.desks else w.actor)
            for w in plan.workloads for instance in w.instances()]


TOKEN = "control/token"   # private: the export writes it readable by the services' user only


def random_token() -> str:
    return secrets.token_hex(24) + "\n"


def service_user(uid: int, gid: int) -> tuple[int, int]:
    """Who the services run as, exported by uid:gid: that user, unless root."""
    return (uid, gid) if uid != 0 else (IMAGE_UID, IMAGE_UID)


def health_ports(plan: Plan, base: int) -> dict[str, int]:
    """The host port of each service's health port, by service name."""
    return {name: base + i for i, (_w, _instance, name) in enumerate(services(plan))}


def files(plan: Plan, image: str, user: tuple[int, int], health_port_base: int = 9100) -> dict[str, str]:
    """Every file of the project, by path relative to its directory (the directories of
    the services' state are `state/NAME` for each name of services())."""
    services_: dict[str, Any] = {}
    grace = plan.topology.supervisor["stop_grace"] + 5
    ports = health_ports(plan, health_port_base)
    for workload, instance, name in services(plan):
        agents = "desk-agents.yaml" if workload.desks else "agents.yaml"
        volumes = [f"./topology:{CONFIG_DIR}/topology:ro", f"./agents/{agents}:{CONFIG_DIR}/agents/agents.yaml:ro"]
        volumes += [f"./curve/{path}:{CONFIG_DIR}/curve/{path}:ro" for path in workload.keys(plan.curve_files)]
        volumes.append(f"./{TOKEN}:{CONFIG_DIR}/{TOKEN}:ro")
        volumes.append(f"./state/{name}:{RUN_DIR}")   # Comm's journal among them
        # Published, the port is reached through the container's own address, by a Host
        # that names the host's: both said, so that the health port's guard lets them in
        host_names = [arg for host in ("127.0.0.1", "localhost") for arg in ("--health-name", f"{host}:{ports[name]}")]
        services_[name] = {
            "image": image, "restart": "unless-stopped", "user": f"{user[0]}:{user[1]}",
            "command": ["actor", instance, "-f", f"{CONFIG_DIR}/topology/topology.yaml", "--run-dir", RUN_DIR,
                        "--health-port", str(HEALTH_PORT), "--health-host", "0.0.0.0", *host_names,
                        "--control-token-file", f"{CONFIG_DIR}/{TOKEN}", "--bind-any", "--log-json"],
            "ports": [f"127.0.0.1:{ports[name]}:{HEALTH_PORT}"],
            "volumes": volumes, "stop_grace_period": f"{grace:g}s",
            "healthcheck": {"test": HEALTHCHECK, "interval": "5s", "timeout": "2s", "retries": 3,
                            "start_period": f"{plan.topology.supervisor['ready_timeout']:g}s"}}
    project = {"name": plan.name, "services": services_}
    published = "\n".join(f"#   {name:<12} http://127.0.0.1:{port}/metrics" for name, port in ports.items())
    header = (f"# docker compose project of topology {plan.topology.name!r}, written by `mroute export compose`.\n"
              f"# docker compose up -d   (the image: docker build -t {image} .)\n"
              f"# Each service's health port ({HEALTH_PORT}: /healthz /readyz /metrics), on the host:\n{published}\n"
              f"# /stats and a Chat Server's POST /load take the token in {TOKEN}, e.g.\n"
              f"#   mroute load {' '.join(f'--attach-pods 127.0.0.1:{port}' for port in ports.values())} "
              f"--control-token-file {TOKEN}\n")
    out = {"compose.yaml": header + dump(project),
           "topology/topology.yaml": plan.topology_text, "agents/agents.yaml": plan.agents_hashed,
           TOKEN: random_token()}
    if any(w.desks for w in plan.workloads):
        out["agents/desk-agents.yaml"] = plan.agents_plain
    out.update({f"curve/{path}": data.decode() for path, data in plan.curve_files.items()})
    return out
