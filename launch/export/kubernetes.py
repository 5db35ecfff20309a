"""`mroute export kubernetes`: a topology's manifests (issue 16).

- Comm: a StatefulSet of 1 with a volume claim for its journal, and a headless Service
  that governs it and carries its queues (its DNS name resolves to the pod; libzmq
  resolves a name again on each reconnect, so a restarted Comm is found at its new IP).
- The MRE and the GC: Deployments of 1 replica, `strategy: Recreate` (never two at once:
  each binds the queue of its role), each behind a Service for its queues.
- Each chat actor: a StatefulSet with `replicas` = its count, scaled by `kubectl scale`.
  Not a Deployment: a Chat Server desks the N-th block of the directory by its number,
  and a Deployment's pods have none (two would desk the same agents). The pod's ordinal
  is that number (`chat-0` is chat.1), and `podManagementPolicy: Parallel` starts and
  scales them together, as a Deployment would.
- A ConfigMap with the topology, a Secret with the directory (hashes for Comm, the MRE
  and the GC; the simulated desks' passwords only for Chat Servers), one with the CURVE
  keys and one with the control token (what lets `mroute load --attach-pods` read /stats
  and set a Chat Server's load from another pod); probes on the health port, a preStop
  that drains, resources, and the Prometheus scrape annotations.
- The Namespace, the NetworkPolicies and a PodDisruptionBudget per workload
  (kubernetes_policy.py); every pod meets the "restricted" Pod Security Standard and is
  given no service-account token (it never talks to the API server).
"""

from __future__ import annotations

import base64
import secrets as random_secrets
from typing import Any

from .kubernetes_policy import disruption_budget, labels, namespace, network_policies
from .plan import CONFIG_DIR, DRAIN_TIMEOUT, HEALTH_PORT, IMAGE_UID, PORT_NAMES, RUN_DIR, Plan, Workload

# CPU and memory requests by role: measured at the demo's scale (issue 15: Comm ~1 KB per
# agent); Comm's memory grows with the directory. A pod holds the actor and its runner
# (`mroute actor`), whose health port on aiohttp took the runner from 37 to 49 MB (issue 27).
REQUESTS = {"comm": ("500m", 144), "mre": ("250m", 112), "gc": ("100m", 112), "chat": ("100m", 112)}
JOURNAL_SIZE = "1Gi"
# A POST of JSON: the health port takes a change only so (no other site's page can send one)
DRAIN_HOOK = ("import urllib.request; urllib.request.urlopen(urllib.request.Request("
              f"'http://127.0.0.1:{HEALTH_PORT}/drain', data=b'{{}}', headers={{'Content-Type': 'application/json'}}), "
              f"timeout={DRAIN_TIMEOUT + 5:g})")


def manifests(plan: Plan, image: str, namespace_name: str) -> list[dict[str, Any]]:
    """Every object, in the order `kubectl apply` wants them: the namespace, what is mounted,
    the policies before the pods they let talk."""
    objects = [config_map(plan), agents_secret(plan),
               secret(plan, f"{plan.name}-control", {"token": random_secrets.token_hex(24).encode()})]
    if plan.curve_files:
        objects.append(secret(plan, f"{plan.name}-curve", {path.replace("/", "-"): data
                                                           for path, data in plan.curve_files.items()}))
    objects += network_policies(plan)
    for workload in plan.workloads:
        objects.append(service(plan, workload))
        objects.append(statefulset(plan, workload, image) if workload.stateful else deployment(plan, workload, image))
        objects.append(disruption_budget(plan, workload))
    for obj in objects:
        obj["metadata"]["labels"] = labels(plan)
        obj["metadata"]["namespace"] = namespace_name
    return [namespace(namespace_name), *objects]


def kustomization(files: list[str]) -> dict[str, Any]:
    """What `kubectl apply -k` and `kubectl kustomize` read: every manifest, in apply order."""
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": files}


def config_map(plan: Plan) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{plan.name}-topology"},
            "data": {"topology.yaml": plan.topology_text}}


def secret(plan: Plan, name: str, files: dict[str, bytes]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": {key: base64.b64encode(data).decode() for key, data in files.items()}}


def agents_secret(plan: Plan) -> dict[str, Any]:
    files = {"agents.yaml": plan.agents_hashed.encode()}
    if any(w.desks for w in plan.workloads):
        files["desk-agents.yaml"] = plan.agents_plain.encode()
    return secret(plan, f"{plan.name}-agents", files)


def service(plan: Plan, workload: Workload) -> dict[str, Any]:
    ports = [{"name": PORT_NAMES[e], "port": p, "targetPort": PORT_NAMES[e]} for e, p in workload.ports.items()]
    spec: dict[str, Any] = {"selector": labels(plan, workload), "ports": ports or [
        {"name": "health", "port": HEALTH_PORT, "targetPort": "health"}]}
    if workload.stateful:   # headless: it governs the StatefulSet, its name resolves to the pods
        spec["clusterIP"] = "None"
    if workload.ports:
        # Who may reach a queue is not for readiness to say: the MRE is ready once Comm's
        # snapshot came, and Comm reaches it through this Service to send it
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": workload.object_name}, "spec": spec}


def statefulset(plan: Plan, workload: Workload, image: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"serviceName": workload.object_name, "replicas": workload.count,
                            "podManagementPolicy": "Parallel", "selector": {"matchLabels": labels(plan, workload)},
                            "template": pod(plan, workload, image)}
    if workload.role == "comm":
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "journal"},
                                         "spec": {"accessModes": ["ReadWriteOnce"],
                                                  "resources": {"requests": {"storage": JOURNAL_SIZE}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": workload.object_name}, "spec": spec}


def deployment(plan: Plan, workload: Workload, image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": workload.object_name},
            "spec": {"replicas": workload.count, "strategy": {"type": "Recreate"},
                     "selector": {"matchLabels": labels(plan, workload)}, "template": pod(plan, workload, image)}}


def pod(plan: Plan, workload: Workload, image: str) -> dict[str, Any]:
    grace = plan.topology.supervisor["stop_grace"] + (DRAIN_TIMEOUT if workload.desks else 0) + 5
    volumes: list[dict[str, Any]] = [
        {"name": "topology", "configMap": {"name": f"{plan.name}-topology"}},
        {"name": "agents", "secret": {"secretName": f"{plan.name}-agents", "items": [
            {"key": "desk-agents.yaml" if workload.desks else "agents.yaml", "path": "agents.yaml"}]}},
        {"name": "control", "secret": {"secretName": f"{plan.name}-control", "defaultMode": 0o400}},
        {"name": "tmp", "emptyDir": {}}]
    mounts = [{"name": "topology", "mountPath": f"{CONFIG_DIR}/topology", "readOnly": True},
              {"name": "agents", "mountPath": f"{CONFIG_DIR}/agents", "readOnly": True},
              {"name": "control", "mountPath": f"{CONFIG_DIR}/control", "readOnly": True},
              {"name": "tmp", "mountPath": "/tmp"},
              {"name": "journal" if workload.role == "comm" else "state", "mountPath": RUN_DIR}]
    if workload.role != "comm":
        volumes.append({"name": "state", "emptyDir": {}})
    if plan.curve_files:   # each pod its own key and the server's public one (Workload.keys)
        keys = workload.keys(plan.curve_files)
        volumes.append({"name": "curve", "secret": {"secretName": f"{plan.name}-curve", "defaultMode": 0o400, "items": [
            {"key": path.replace("/", "-"), "path": path} for path in keys]}})
        mounts.append({"name": "curve", "mountPath": f"{CONFIG_DIR}/curve", "readOnly": True})
    cpu, memory = REQUESTS.get(workload.role, ("100m", 96))
    if workload.role == "comm":
        memory += len(plan.topology.agents) * 2 // 1024   # twice the measured KB per agent
    probe = {"httpGet": {"path": "/healthz", "port": "health"}}
    container = {
        "name": workload.role, "image": image, "imagePullPolicy": "IfNotPresent",
        "args": ["actor", "$(POD_NAME)" if workload.stateful else f"{workload.actor}.1",
                 "-f", f"{CONFIG_DIR}/topology/topology.yaml", "--run-dir", RUN_DIR,
                 "--health-port", str(HEALTH_PORT), "--health-host", "0.0.0.0", "--bind-any",
                 "--control-token-file", f"{CONFIG_DIR}/control/token", "--drain-timeout", f"{DRAIN_TIMEOUT:g}",
                 "--log-json"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": PORT_NAMES[e], "containerPort": p} for e, p in workload.ports.items()]
        + [{"name": "health", "containerPort": HEALTH_PORT}],
        "startupProbe": {**probe, "periodSeconds": 1,
                         "failureThreshold": int(plan.topology.supervisor["ready_timeout"]) + 5},
        "livenessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "health"}, "periodSeconds": 2},
        # /drain answers this host only (a POST of JSON): the hook runs in the container
        "lifecycle": {"preStop": {"exec": {"command": ["python", "-c", DRAIN_HOOK]}}},
        "resources": {"requests": {"cpu": cpu, "memory": f"{memory}Mi"}, "limits": {"memory": f"{memory * 4}Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts}
    return {"metadata": {"labels": labels(plan, workload),
                         "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(HEALTH_PORT),
                                         "prometheus.io/path": "/metrics"}},
            "spec": {"terminationGracePeriodSeconds": int(grace), "containers": [container],
                     "automountServiceAccountToken": False,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID,
                                         "fsGroup": IMAGE_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                     "volumes": volumes}}
