"""Issue 16: the exported Kubernetes manifests run as they are written, on a simulated node
(tests/cluster.py): every workload's container command, with its env and volumes, started
as local processes; tasks routed end to end through the pods; the Comm pod SIGKILLed and
started again on the same journal volume: nothing lost."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from ..cluster import SimulatedNode
from ..helpers import MROUTE, base_topology, metric_sum, wait_until

pytestmark = pytest.mark.timeout(150)


def series(pod, name: str, **labels: str) -> float:
    """The sum of a metric's samples on a pod's /metrics whose labels include `labels`."""
    status, text = pod.get("/metrics")
    assert status == 200, text
    return metric_sum(text, name, **labels)


def chat_total(node: SimulatedNode, outcome: str) -> float:
    return sum(series(pod, "mroute_chat_tasks_total", outcome=outcome)
               for name, pod in node.pods.items() if "-chat-" in name and pod.proc and pod.proc.poll() is None)


def export(tmp_path, curve: bool = False) -> str:
    spec = base_topology(name="kube", chat={"count": 2, "agents": 3, "rate": 6.0, "handle": "uniform:0.2,0.6"},
                         agents=4)
    if curve:
        subprocess.run([*MROUTE, "keys", str(tmp_path / "keys")], check=True, capture_output=True, timeout=30)
        spec["security"] = {"curve": "keys"}
    file = tmp_path / "topology.yaml"
    file.write_text(yaml.safe_dump(spec))
    done = subprocess.run([*MROUTE, "export", "kubernetes", "-f", str(file)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def exported(tmp_path):
    return export(tmp_path)


def test_the_exported_topology_routes_and_survives_a_killed_comm_pod(exported, tmp_path):
    node = SimulatedNode(exported, tmp_path / "node", MROUTE)
    try:
        pods = node.start_all()
        assert sorted(node.pods) == ["kube-chat-0", "kube-chat-1", "kube-comm-0", *sorted(
            n for n in node.pods if n.startswith("kube-mre-"))]
        node.wait_ready(pods)
        comm = node.pods["kube-comm-0"]
        # tasks routed end to end: created by the Chat Server pods, closed by their agents
        wait_until(lambda: series(comm, "mroute_tasks_total", event="closed") >= 10, timeout=40,
                   what="10 tasks closed through the pods")
        assert series(comm, "mroute_agents", mrd="chat") == 6   # both chat pods desked their 3 agents

        node.kill(comm)
        assert comm.get("/healthz")[0] == 0          # gone with its runner: nobody answers
        comm = node.start(comm.workload, "kube-comm-0")   # the same claim: the same journal
        node.wait_ready([comm])
        assert "carried on from the journal" in comm.log.read_text()
        closed_before = chat_total(node, "closed")
        wait_until(lambda: chat_total(node, "closed") >= closed_before + 10, timeout=40,
                   what="routing again after the Comm pod's restart")
        assert chat_total(node, "lost") == 0, "acknowledged tasks lost with the Comm pod"
        assert chat_total(node, "errors") == 0

        for name in sorted(node.pods):
            assert node.stop(node.pods[name]) == 0, f"{name} did not stop cleanly:\n{node.pods[name].log.read_text()[-2000:]}"
    finally:
        leftovers = node.shutdown()
    assert not leftovers, f"processes left behind: {leftovers}"


def test_mroute_load_drives_the_chat_server_pods_through_their_health_ports(tmp_path):
    # with CURVE: a Chat Server's pod has the server's public key only, and that is enough
    node = SimulatedNode(export(tmp_path, curve=True), tmp_path / "node", MROUTE)
    try:
        node.wait_ready(node.start_all())
        pods = [f"127.0.0.1:{pod.health_port}" for name, pod in sorted(node.pods.items())
                if "-chat-" in name or "-comm-" in name]
        report = tmp_path / "load.json"
        done = subprocess.run([*MROUTE, "load", *(a for p in pods for a in ("--attach-pods", p)), "--rate", "12",
                               "--duration", "3", "--handle", "uniform:0.2,0.5", "--drain", "15", "--quiet",
                               "--json", str(report)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        result = yaml.safe_load(report.read_text())
        assert result["created"] >= 10 and result["lost"] == 0, result
        assert result["closed"] == result["created"], result      # drained: every task ended
        # the servers got back what they were doing before the run
        for name in ("kube-chat-0", "kube-chat-1"):
            status, text = node.pods[name].get("/stats")
            assert status == 200 and yaml.safe_load(text)["answer"]["rate"] == 6.0, text
    finally:
        leftovers = node.shutdown()
    assert not leftovers, f"processes left behind: {leftovers}"
