"""`mroute export compose`: a docker compose project, from the same plan as Kubernetes.

A service per actor instance (`chat-1`, `chat-2`: compose's replicas have no number, and a
Chat Server desks its agents by its number); the topology, the directory and the keys are
files beside compose.yaml, mounted read-only where the pods of Kubernetes find them, and
each service's state (Comm's journal) is a directory beside them, `state/NAME`. The
services run as the user who exported (`user:`): the files stay readable by that user
only. Services reach each other by name on the project's network."""

from __future__ import annotations

from typing import Any

from .plan import CONFIG_DIR, HEALTH_PORT, RUN_DIR, Plan, Workload, dump

READY_CHECK = ("import sys, urllib.request; "
               f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{HEALTH_PORT}/readyz').status != 200)")


def services(plan: Plan) -> list[tuple[Workload, str, str]]:
    """(workload, instance, service name) of each service: `comm`, `chat-2`."""
    return [(w, instance, f"{w.actor}-{instance.rpartition('.')[2]}" if w.desks else w.actor)
            for w in plan.workloads for instance in w.instances()]


def files(plan: Plan, image: str, user: str) -> dict[str, str]:
    """Every file of the project, by path relative to its directory (the directories of
    the services' state are `state/NAME` for each name of services())."""
    services_: dict[str, Any] = {}
    grace = plan.topology.supervisor["stop_grace"] + 5
    for workload, instance, name in services(plan):
        agents = "desk-agents.yaml" if workload.desks else "agents.yaml"
        volumes = [f"./topology:{CONFIG_DIR}/topology:ro", f"./agents/{agents}:{CONFIG_DIR}/agents/agents.yaml:ro"]
        volumes += [f"./curve/{path}:{CONFIG_DIR}/curve/{path}:ro" for path in workload.keys(plan.curve_files)]
        volumes.append(f"./state/{name}:{RUN_DIR}")   # Comm's journal among them
        services_[name] = {
            "image": image, "restart": "unless-stopped", "user": user,
            "command": ["actor", instance, "-f", f"{CONFIG_DIR}/topology/topology.yaml", "--run-dir", RUN_DIR,
                        "--health-port", str(HEALTH_PORT), "--bind-any", "--log-json"],
            "volumes": volumes, "stop_grace_period": f"{grace:g}s",
            "healthcheck": {"test": ["CMD", "python", "-c", READY_CHECK], "interval": "5s", "timeout": "2s",
                            "retries": 3, "start_period": f"{plan.topology.supervisor['ready_timeout']:g}s"}}
    project = {"name": plan.name, "services": services_}
    out = {"compose.yaml": f"# docker compose project of topology {plan.topology.name!r}, written by `mroute export "
                           f"compose`.\n# docker compose up -d   (the image: docker build -t {image} .)\n" + dump(project),
           "topology/topology.yaml": plan.topology_text, "agents/agents.yaml": plan.agents_hashed}
    if any(w.desks for w in plan.workloads):
        out["agents/desk-agents.yaml"] = plan.agents_plain
    out.update({f"curve/{path}": data.decode() for path, data in plan.curve_files.items()})
    return out
