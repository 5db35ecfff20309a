"""What the Kubernetes export guards its pods with (issue 29): the Namespace, enforcing the
"restricted" Pod Security Standard; NetworkPolicies that let through only the flows of
design.md section 3; and a PodDisruptionBudget per workload.

- Every pod of the topology is denied all traffic (`NAME-default-deny`), then let:
  each client reach the queues it connects to, on their ports only (FLOWS); anyone ask DNS
  (port 53: where the cluster's resolver runs differs from cluster to cluster, a node-local
  cache included); Prometheus (a pod labelled `app.kubernetes.io/name: prometheus`, in any
  namespace) and our own tools (`app.kubernetes.io/name: mroute-client`, in this namespace:
  `mroute load --attach-pods`, a voice client) reach the health port; those tools reach the
  GC's queues too. The kubelet's probes come from the node, which no policy blocks.
- The policies select the topology's pods only, not the whole namespace: another
  topology or a tool run there (README) is governed by its own.
- A budget allows one pod of a workload down at a time (`maxUnavailable: 1`): Chat Servers
  are drained one by one, each ending its chats first (preStop); a singleton (Comm, the
  MRE, the GC) may be evicted, since `maxUnavailable: 0` would block every node drain until
  someone deleted the pod by hand. Comm comes back on its journal's volume.
"""

from __future__ import annotations

from typing import Any

from .plan import HEALTH_PORT, Plan, Workload

# Which documented queues each role connects to (design.md section 3; the actors' sockets,
# `connect=endpoints[...]`, checked by a test): the other side binds them.
FLOWS = {"chat": ("General", "ChatEvents"), "comm": ("RoutingEngine", "GC", "GCEvents"),
         "mre": ("CommunicationServer",)}
CLIENT = {"app.kubernetes.io/name": "mroute-client"}
PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
# A drain may take one pod of a workload at a time (module docstring)
MAX_UNAVAILABLE = 1


def labels(plan: Plan, workload: Workload | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/name": "mroute", "app.kubernetes.io/instance": plan.name}
    if workload is not None:
        out["app.kubernetes.io/component"] = workload.object_name
    return out


def namespace(name: str) -> dict[str, Any]:
    """The namespace, refusing any pod that breaks the restricted standard (ours meet it)."""
    enforce = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": enforce}}


def network_policies(plan: Plan) -> list[dict[str, Any]]:
    ours = {"matchLabels": labels(plan)}
    health_clients = [{"namespaceSelector": {}, "podSelector": {"matchLabels": PROMETHEUS}},
                      {"podSelector": {"matchLabels": CLIENT}}]
    policies = [
        policy(f"{plan.name}-default-deny", ours, ingress=[], egress=[]),
        policy(f"{plan.name}-dns", ours, egress=[{"ports": [{"protocol": proto, "port": 53}
                                                            for proto in ("UDP", "TCP")]}]),
        policy(f"{plan.name}-health", ours, ingress=[{"from": health_clients, "ports": [tcp(HEALTH_PORT)]}])]
    links = flows(plan)
    for workload in plan.workloads:
        ingress = rules(plan, "from", [(client, port) for client, server, port in links if server is workload])
        if workload.role == "gc":   # a voice client places calls and hears their events
            ingress.append({"from": [{"podSelector": {"matchLabels": CLIENT}}],
                            "ports": [tcp(port) for port in workload.ports.values()]})
        egress = rules(plan, "to", [(server, port) for client, server, port in links if client is workload])
        policies.append(policy(workload.object_name, {"matchLabels": labels(plan, workload)}, ingress, egress))
    return policies


def flows(plan: Plan) -> list[tuple[Workload, Workload, int]]:
    """(client, server, port) of each queue a workload of the topology connects to."""
    binder = {endpoint: w for w in plan.workloads for endpoint in w.ports}
    return [(client, binder[endpoint], binder[endpoint].ports[endpoint]) for client in plan.workloads
            for endpoint in FLOWS.get(client.role, ()) if endpoint in binder]


def rules(plan: Plan, side: str, peers: list[tuple[Workload, int]]) -> list[dict[str, Any]]:
    """A rule per peer workload (`side`: "from" or "to"), with the ports of its flows."""
    ports: dict[str, list[int]] = {}
    for peer, port in peers:
        ports.setdefault(peer.object_name, []).append(port)
    workload = {peer.object_name: peer for peer, _ in peers}
    return [{side: [{"podSelector": {"matchLabels": labels(plan, workload[name])}}], "ports": [tcp(p) for p in listed]}
            for name, listed in ports.items()]


def tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


def policy(name: str, selector: dict[str, Any], ingress: list[Any] | None = None,
           egress: list[Any] | None = None) -> dict[str, Any]:
    """A NetworkPolicy; a direction given (even empty) is one it governs."""
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": []}
    for kind, rules in (("Ingress", ingress), ("Egress", egress)):
        if rules is not None:
            spec["policyTypes"].append(kind)
            if rules:
                spec[kind.lower()] = rules
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


def disruption_budget(plan: Plan, workload: Workload) -> dict[str, Any]:
    # AlwaysAllow: a pod that is not ready (crash-looping, still loading) serves no one, so
    # evicting it costs nothing; the default would let it block a drain
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": workload.object_name},
            "spec": {"maxUnavailable": MAX_UNAVAILABLE, "selector": {"matchLabels": labels(plan, workload)},
                     "unhealthyPodEvictionPolicy": "AlwaysAllow"}}
