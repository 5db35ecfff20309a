"""Issue 29: the Kubernetes export, as a cluster that guards itself takes it: every pod
meets the "restricted" Pod Security Standard, no pod holds a service-account token, each
workload has a disruption budget that fits its replicas, the network lets through the
flows of design.md section 3 and nothing else, and a kustomization lists every manifest
of the namespace's. (Strict schema validation and `kubectl kustomize`:
tests/processes/test_export.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from launch.commands.export import export
from launch.export.kubernetes import manifests
from launch.export.kubernetes_policy import FLOWS
from launch.export.plan import make_plan
from wire import catalogue

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "topology.yaml"
NAMESPACE = "contact-centre"

# The restricted standard (kubernetes.io/docs/concepts/security/pod-security-standards),
# the baseline's checks included, as far as a pod spec can fail them.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


def restricted_faults(spec: dict[str, Any]) -> list[str]:
    """What keeps a pod spec out of a namespace enforcing "restricted"."""
    pod = spec.get("securityContext", {})
    faults = [f"host namespace {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    faults += [f"volume {v['name']} of a kind not allowed" for v in spec.get("volumes", [])
               if not set(v) - {"name"} <= RESTRICTED_VOLUMES]
    faults += ["sysctls" for _ in pod.get("sysctls", [])]
    containers = spec["containers"] + spec.get("initContainers", []) + spec.get("ephemeralContainers", [])
    for container in containers:
        context, name = container.get("securityContext", {}), container["name"]
        if context.get("privileged"):
            faults.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            faults.append(f"{name}: allowPrivilegeEscalation not false")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            faults.append(f"{name}: capabilities not dropped")
        if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
            faults.append(f"{name}: runAsNonRoot not true")
        if 0 in (context.get("runAsUser"), pod.get("runAsUser")):
            faults.append(f"{name}: runs as uid 0")
        seccomp = context.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            faults.append(f"{name}: seccompProfile {seccomp}")
        faults += [f"{name}: hostPort" for port in container.get("ports", []) if port.get("hostPort")]
        if context.get("procMount", "Default") != "Default":
            faults.append(f"{name}: procMount")
    return faults


def exported(file: Path = DEFAULT) -> list[dict[str, Any]]:
    return manifests(make_plan(file), "mroute:test", NAMESPACE)


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("StatefulSet", "Deployment")]


def test_every_pod_meets_the_restricted_standard_and_has_no_token():
    objects = exported()
    assert len(workloads(objects)) == 4
    for workload in workloads(objects):
        spec = workload["spec"]["template"]["spec"]
        assert restricted_faults(spec) == [], workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, workload["metadata"]["name"]
        assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    # the check itself finds what the export once lacked
    spec = workloads(objects)[0]["spec"]["template"]["spec"]
    del spec["securityContext"]["seccompProfile"]
    assert restricted_faults(spec) == ["comm: seccompProfile None"]


def test_each_workload_has_a_budget_that_fits_its_replicas():
    objects = exported()
    budgets = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "PodDisruptionBudget"}
    for workload in workloads(objects):
        budget = budgets.pop(workload["metadata"]["name"])
        assert budget["selector"] == workload["spec"]["selector"]
        replicas = workload["spec"]["replicas"]
        # a drain is never blocked for good (a singleton may go), and a fleet keeps serving
        assert 0 < budget["maxUnavailable"] and (replicas == 1 or budget["maxUnavailable"] < replicas)
    assert not budgets


# --- the network: what the policies let through, worked out as a cluster would ---------------

Pod = tuple[str, dict[str, str]]   # namespace, labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector   # what this evaluator understands
    return selector.get("matchLabels", {}).items() <= labels.items()


def peer_matches(peer: dict[str, Any], policy_namespace: str, pod: Pod) -> bool:
    assert set(peer) <= {"podSelector", "namespaceSelector"}, peer
    namespace, labels = pod
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
    else:
        in_namespace = namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), labels)


def rule_allows(rule: dict[str, Any], side: str, policy_namespace: str, pod: Pod, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    port_ok = ports is None or any(p.get("protocol", "TCP") == protocol and p["port"] == port for p in ports)
    peers = rule.get(side)
    return port_ok and (peers is None or any(peer_matches(peer, policy_namespace, pod) for peer in peers))


def admitted(policies: list[dict[str, Any]], pod: Pod, direction: str, other: Pod, port: int, protocol: str) -> bool:
    """Whether `pod`'s policies let through, in `direction`, traffic with `other`."""
    side = "from" if direction == "Ingress" else "to"
    governing = [p for p in policies if p["metadata"]["namespace"] == pod[0]
                 and selects(p["spec"]["podSelector"], pod[1]) and direction in p["spec"]["policyTypes"]]
    return not governing or any(rule_allows(rule, side, p["metadata"]["namespace"], other, port, protocol)
                                for p in governing for rule in p["spec"].get(direction.lower(), []))


def allowed(policies: list[dict[str, Any]], source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    return (admitted(policies, source, "Egress", target, port, protocol)
            and admitted(policies, target, "Ingress", source, port, protocol))


def test_the_network_lets_through_the_documented_flows_only():
    objects = exported()
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    pods: dict[str, Pod] = {}
    ports: dict[str, list[int]] = {}
    for workload in workloads(objects):
        template = workload["spec"]["template"]
        (container,) = template["spec"]["containers"]
        pods[container["name"]] = (NAMESPACE, template["metadata"]["labels"])
        ports[container["name"]] = [port["containerPort"] for port in container["ports"]]
    flows = {(source, target, port) for source in pods for target in pods for port in ports[target]
             if source != target and allowed(policies, pods[source], pods[target], port)}
    assert flows == {("chat", "comm", 5550), ("chat", "comm", 5553),   # General, ChatEvents
                     ("comm", "mre", 5551), ("mre", "comm", 5552),     # RoutingEngine, CommunicationServer
                     ("comm", "gc", 5554), ("comm", "gc", 5555)}       # GC, GCEvents

    prometheus = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
    client = (NAMESPACE, {"app.kubernetes.io/name": "mroute-client"})
    stranger = (NAMESPACE, {"app": "something-else"})
    dns = ("kube-system", {"k8s-app": "kube-dns"})
    for role, pod in pods.items():
        assert allowed(policies, prometheus, pod, 8080) and allowed(policies, client, pod, 8080), role
        assert not allowed(policies, stranger, pod, 8080), role
        assert not any(allowed(policies, prometheus, pod, port) for port in ports[role] if port != 8080), role
        assert allowed(policies, pod, dns, 53, "UDP") and allowed(policies, pod, dns, 53, "TCP"), role
        assert not allowed(policies, pod, stranger, 443), role
    assert allowed(policies, client, pods["gc"], 5554) and allowed(policies, client, pods["gc"], 5555)
    assert not allowed(policies, client, pods["comm"], 5550)
    assert not allowed(policies, client, pods["mre"], 5551)


def test_the_flows_are_the_queues_each_role_connects_to():
    """FLOWS says what the actors' code does: `connect=endpoints[NAME]` in actors/ROLE/."""
    found: dict[str, set[str]] = {}
    for role in ("chat", "comm", "mre", "gc"):
        for path in (ROOT / "actors" / role).rglob("*.py"):
            for constant in re.findall(r"connect=(?:self\.config\.)?endpoints\[(\w+)\]", path.read_text()):
                found.setdefault(role, set()).add(getattr(catalogue, constant))
    assert found == {role: set(endpoints) for role, endpoints in FLOWS.items()}


def test_the_directory_has_a_namespace_and_a_kustomization_of_every_manifest(tmp_path):
    done = CliRunner().invoke(export, ["kubernetes", "-f", str(DEFAULT), "-o", str(tmp_path), "--namespace", NAMESPACE])
    assert done.exit_code == 0, done.output
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    manifests_ = sorted(p.name for p in tmp_path.glob("*.yaml") if p.name != "kustomization.yaml")
    assert kustomization["resources"] == manifests_   # in apply order: the namespace first
    objects = [yaml.safe_load((tmp_path / name).read_text()) for name in manifests_]
    namespace = objects[0]
    assert (namespace["kind"], namespace["metadata"]["name"]) == ("Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(o["metadata"]["namespace"] == NAMESPACE for o in objects[1:])
    kinds = [o["kind"] for o in objects]
    assert kinds.index("NetworkPolicy") < kinds.index("StatefulSet")   # no pod runs unguarded
    assert (tmp_path / [n for n, o in zip(manifests_, objects) if o["kind"] == "Secret"][0]).stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("namespace", [None, "other"])
def test_every_object_has_the_namespace_also_on_stdout(namespace):
    args = ["kubernetes", "-f", str(DEFAULT)] + (["--namespace", namespace] if namespace else [])
    done = CliRunner().invoke(export, args)
    assert done.exit_code == 0, done.output
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    expected = namespace or "mroute"
    assert objects[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": expected, "labels": {f"pod-security.kubernetes.io/{mode}": "restricted"
                                     for mode in ("enforce", "audit", "warn")}}}
    assert {o["metadata"].get("namespace") for o in objects[1:]} == {expected}
