"""Issue 16: `mroute export kubernetes|compose|systemd` writes what an orchestrator can run
as it is: manifests valid against the Kubernetes API schemas (strictly), the structure the
topology asks for, no password outside a Secret, and systemd units systemd accepts."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..helpers import MROUTE, base_topology

DEFAULT = Path(__file__).resolve().parents[2] / "topology.yaml"


def export(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*MROUTE, "export", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def objects_of(text: str) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(text) if o}


@pytest.fixture
def curve_topology(tmp_path):
    subprocess.run([*MROUTE, "keys", str(tmp_path / "keys"), "--client", "ops"], check=True, capture_output=True,
                   timeout=30)
    spec = base_topology(name="secure", chat={"count": 3, "agents": 2}, agents=6)
    spec["security"] = {"curve": "keys"}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "topology.yaml"


def manifest_files(directory: Path) -> list[Path]:
    """The objects' files (kustomization.yaml is kubectl's, not the API's)."""
    return sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")


# the oldest Kubernetes still served when issue 29 was written, and the newest schemas the
# validator has (its default)
@pytest.mark.parametrize("which, version", [("default", "1.28.0"), ("default", None), ("curve", None)])
def test_manifests_validate_strictly_against_the_kubernetes_schemas(which, version, tmp_path, curve_topology):
    file = DEFAULT if which == "default" else curve_topology
    export("kubernetes", "-f", str(file), "-o", str(tmp_path / "out"), "--namespace", "contact-centre")
    files = manifest_files(tmp_path / "out")
    assert len(files) >= 20
    validator = Path(sys.executable).with_name("kubernetes-validate")
    done = subprocess.run([str(validator), "--strict", *(["-k", version] if version else []), *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(files), done.stdout


def test_kubectl_kustomize_builds_the_directory(tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on this machine: the kustomization was checked only for the files it lists")
    export("kubernetes", "-f", str(DEFAULT), "-o", str(tmp_path / "out"))
    done = subprocess.run([kubectl, "kustomize", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    built = objects_of(done.stdout)
    assert set(built) == set(objects_of("---\n".join(p.read_text() for p in manifest_files(tmp_path / "out"))))
    assert {o["metadata"].get("namespace") for (kind, _), o in built.items() if kind != "Namespace"} == {"mroute"}


def test_manifests_have_the_shape_the_topology_asks_for(curve_topology):
    objects = objects_of(export("kubernetes", "-f", str(curve_topology), "--image", "reg.example/mroute:7").stdout)
    comm = objects[("StatefulSet", "secure-comm")]
    assert comm["spec"]["replicas"] == 1
    assert comm["spec"]["serviceName"] == "secure-comm"
    assert objects[("Service", "secure-comm")]["spec"]["clusterIP"] == "None"          # headless
    (claim,) = comm["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in comm["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/mroute"                      # the journal on the claim
    for role in ("mre", "gc") if ("Deployment", "secure-gc") in objects else ("mre",):
        deployment = objects[("Deployment", f"secure-{role}")]
        assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    chat = objects[("StatefulSet", "secure-chat")]
    assert chat["spec"]["replicas"] == 3 and chat["spec"]["podManagementPolicy"] == "Parallel"

    workloads = [o for o in objects.values() if o["kind"] in ("StatefulSet", "Deployment")]
    for workload in workloads:
        pod = workload["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "reg.example/mroute:7"
        assert container["args"][0] == "actor"
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert container[probe]["httpGet"] == {"path": path, "port": "health"}, (workload["metadata"], probe)
        hook = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])   # /drain answers loopback only
        assert "http://127.0.0.1:8080/drain" in hook
        assert pod["spec"]["terminationGracePeriodSeconds"] > 3
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        # a client holds the server's public key, never its secret one; each pod its own key:
        # the MRE's, a Chat Server actor's client key, or our actors' (never to a Chat Server)
        curve = next(v for v in pod["spec"]["volumes"] if v["name"] == "curve")
        paths = {item["path"] for item in curve["secret"]["items"]}
        binds = any(p["name"] != "health" for p in container["ports"])
        assert ("server.key_secret" in paths) == binds, workload["metadata"]["name"]
        assert ("allowed/actors.key" in paths and "allowed/ops.key" in paths) == binds
        own = {"mre": "mre.key_secret", "chat": "clients/chat.key_secret"}.get(container["name"], "actors.key_secret")
        assert {p for p in paths if p.endswith(".key_secret") and p != "server.key_secret"} == {own}

    # every port a Service offers is one its pods serve, and every endpoint names a Service
    topology = yaml.safe_load(objects[("ConfigMap", "secure-topology")]["data"]["topology.yaml"])
    services = {name: o for (kind, name), o in objects.items() if kind == "Service"}
    for endpoint, url in topology["endpoints"].items():
        host, port = url.removeprefix("tcp://").split(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, endpoint
        # reachable before ready: the MRE is ready only once Comm has reached it
        assert services[host]["spec"]["publishNotReadyAddresses"] is True, host


def test_no_password_outside_a_secret(curve_topology):
    text = export("kubernetes", "-f", str(curve_topology)).stdout
    objects = objects_of(text)
    keys = curve_topology.parent / "keys"
    secret_keys = [line.split('"')[1] for path in keys.rglob("*.key_secret") for line in path.read_text().splitlines()
                   if line.strip().startswith("secret-key")]
    assert len(secret_keys) == 5   # the server's, our actors', the MRE's, the client ops's, the actor chat's
    for (kind, name), obj in objects.items():
        if kind != "Secret":
            text = yaml.safe_dump(obj)
            for secret in ("pw-alice", "pw-bob", "password: secret", "password:", *secret_keys):
                assert secret not in text, f"{kind} {name} holds {secret!r}"
    agents = objects[("Secret", "secure-agents")]["data"]
    hashed = base64.b64decode(agents["agents.yaml"]).decode()
    assert "password_hash" in hashed and "pw-alice" not in hashed
    assert "pw-alice" in base64.b64decode(agents["desk-agents.yaml"]).decode()   # the simulated desks log in
    # only the Chat Servers' pods read the passwords
    for obj in objects.values():
        if obj["kind"] in ("StatefulSet", "Deployment"):
            spec = obj["spec"]["template"]["spec"]
            (volume,) = [v for v in spec["volumes"] if v["name"] == "agents"]
            (item,) = volume["secret"]["items"]
            assert (item["key"] == "desk-agents.yaml") == (spec["containers"][0]["name"] == "chat")


def test_compose_project_has_a_service_per_instance(tmp_path, curve_topology):
    export("compose", "-f", str(curve_topology), "-o", str(tmp_path / "c"))
    project = yaml.safe_load((tmp_path / "c" / "compose.yaml").read_text())
    assert sorted(project["services"]) == ["chat-1", "chat-2", "chat-3", "comm", "mre"]
    assert project["services"]["chat-2"]["command"][:2] == ["actor", "chat.2"]
    assert "./state/comm:/var/lib/mroute" in project["services"]["comm"]["volumes"]
    assert (tmp_path / "c" / "state" / "comm").is_dir()
    # the services run as the user who exported, or the image's if that was root: the files
    # only that user reads are theirs
    user = f"{os.getuid()}:{os.getgid()}" if os.getuid() else "10001:10001"
    assert {s["user"] for s in project["services"].values()} == {user}
    topology = yaml.safe_load((tmp_path / "c" / "topology" / "topology.yaml").read_text())
    assert topology["endpoints"]["General"] == "tcp://comm:5550"
    assert (tmp_path / "c" / "agents" / "desk-agents.yaml").stat().st_mode & 0o077 == 0
    assert (tmp_path / "c" / "curve" / "server.key").exists()
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        done = subprocess.run(["docker", "compose", "-f", str(tmp_path / "c" / "compose.yaml"), "config", "-q"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("user", [None, "mroute"])   # exported by root: a dynamic user
def test_systemd_units_pass_systemd_analyze_verify_and_security(tmp_path, user):
    """verify wants ExecStart's program to exist: the units run this venv's mroute."""
    export("systemd", "-f", str(DEFAULT), "-o", str(tmp_path / "units"), "--exec", str(Path(sys.executable).with_name("mroute")),
           *(["--user", user] if user else []))
    units = sorted(p for p in (tmp_path / "units").iterdir() if p.suffix in (".service", ".target"))
    names = [u.name for u in units]
    assert "local.target" in names and "local-comm-1.service" in names and "local-chat-2.service" in names
    target = (tmp_path / "units" / "local.target").read_text()
    assert all(name in target for name in names if name.endswith(".service"))
    ports = [line.split("--health-port ")[1].split()[0] for u in units for line in u.read_text().splitlines()
             if line.startswith("ExecStart=")]
    assert len(ports) == len(set(ports)) == len(names) - 1
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine: the units were checked only for their shape")
    done = subprocess.run([analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if str(tmp_path) in line or "local" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
    for unit in (u for u in units if u.suffix == ".service"):   # the target runs nothing
        done = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True,
                              timeout=60)
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
        assert found, done.stdout + done.stderr
        assert float(found[1]) <= 4.0, done.stdout   # issue 29: 9.6 UNSAFE before
