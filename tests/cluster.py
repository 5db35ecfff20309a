"""A simulated Kubernetes node for exported manifests (issue 16): no cluster here, so each
pod's container is started as a local process, the way a kubelet would start it.

What the kubelet does and this does too:
- the container's args as written, `$(VAR)` expanded from its env (`fieldRef
  metadata.name` is the pod's name: a StatefulSet's `NAME-ORDINAL`);
- its volumes: a ConfigMap's or Secret's keys as files (honouring `items`), laid out as
  the kubelet's atomic writer does (each file a link into `..data/`, itself a link to a
  dated directory); an emptyDir per pod; a volume claim per StatefulSet pod that outlives
  the pod (a restarted `comm-0` finds its journal);
- each pod has its own network: the Services' names are pointed at 127.0.0.1 through the
  ConfigMap's topology, and each pod's health port is given a free local port;
- deleting a pod runs its preStop hook, then TERM, then KILL after the grace period.
The one thing changed in a path: a container path under a mount is the mount's local
directory (there is no chroot here). What it does not model: a Service's name resolves
here whether its pods are ready or not (the manifests ask for that:
publishNotReadyAddresses, checked by test_export), the user and the read-only root
filesystem the pod's securityContext asks for, and a DNS name's TTL.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .helpers import tagged_processes

VAR = re.compile(r"\$\((\w+)\)")
ENDPOINT = re.compile(r"^tcp://([^:]+):(\d+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    """(status, body) of a GET on 127.0.0.1; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as exc:
        return 0, str(exc)


@dataclass
class Pod:
    name: str
    workload: dict[str, Any]
    args: list[str]
    env: dict[str, str]
    health_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    exits: list[int] = field(default_factory=list)

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        return http_get(self.health_port, path, timeout)

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200


class SimulatedNode:
    def __init__(self, manifests: str, root: Path, mroute: list[str]):
        self.tag = f"node-{os.getpid()}-{os.urandom(4).hex()}"   # in every pod's environment, and its children's
        self.objects = [o for o in yaml.safe_load_all(manifests) if o]
        self.root = root
        self.mroute = mroute
        self.config_maps = {o["metadata"]["name"]: o for o in self.objects if o["kind"] == "ConfigMap"}
        self.secrets = {o["metadata"]["name"]: o for o in self.objects if o["kind"] == "Secret"}
        self.services = {o["metadata"]["name"] for o in self.objects if o["kind"] == "Service"}
        self.ports: dict[tuple[str, str], int] = {}   # (service, port) -> the local port standing for it
        self.pods: dict[str, Pod] = {}
        for config in self.config_maps.values():
            config["data"] = {key: self.point_services_here(text) for key, text in config["data"].items()}

    def point_services_here(self, text: str) -> str:
        """What the cluster's DNS would do for a Service's name: here, 127.0.0.1."""
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or "endpoints" not in data:
            return text
        for endpoint, url in data["endpoints"].items():
            host, port = ENDPOINT.match(url).groups()  # type: ignore[union-attr]
            assert host in self.services, f"{endpoint} names {host}, which no Service is"
            local = self.ports.setdefault((host, port), free_port())
            data["endpoints"][endpoint] = f"tcp://127.0.0.1:{local}"
        return yaml.safe_dump(data)

    def workloads(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] in ("StatefulSet", "Deployment")]

    def pod_names(self, workload: dict[str, Any], replicas: int | None = None) -> list[str]:
        name = workload["metadata"]["name"]
        count = workload["spec"]["replicas"] if replicas is None else replicas
        if workload["kind"] == "StatefulSet":
            return [f"{name}-{i}" for i in range(count)]
        return [f"{name}-{os.urandom(3).hex()}" for _ in range(count)]

    # a pod ----------------------------------------------------------------------------
    def start(self, workload: dict[str, Any], pod_name: str) -> Pod:
        spec = workload["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        pod_dir = self.root / "pods" / pod_name
        mounts = {m["mountPath"]: self.volume(workload, spec, m["name"], pod_name) for m in container["volumeMounts"]
                  if m["mountPath"] != "/tmp"}   # /tmp: the host's (an ipc path must stay short)
        env = {}
        for var in container.get("env", []):
            if var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[var["name"]] = pod_name
            else:
                env[var["name"]] = str(var.get("value", ""))
        args = [VAR.sub(lambda m: env.get(m[1], m[0]), arg) for arg in container["args"]]
        args = [self.local_path(arg, mounts) for arg in args]
        health_port = free_port()
        args[args.index("--health-port") + 1] = str(health_port)
        pod_dir.mkdir(parents=True, exist_ok=True)
        pod = self.pods.get(pod_name) or Pod(pod_name, workload, args, env, health_port, pod_dir / "log")
        pod.args, pod.health_port = args, health_port
        with open(pod.log, "ab") as log:
            pod.proc = subprocess.Popen([*self.mroute, *args], stdout=log, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, **env, MROUTE_TEST_TAG=self.tag), cwd=pod_dir)
        self.pods[pod_name] = pod
        return pod

    def volume(self, workload: dict[str, Any], spec: dict[str, Any], name: str, pod_name: str) -> Path:
        claims = [c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])]
        if name in claims:   # the claim outlives the pod: named after both, as Kubernetes does
            path = self.root / "claims" / f"{name}-{pod_name}"
            path.mkdir(parents=True, exist_ok=True)
            return path
        (volume,) = [v for v in spec["volumes"] if v["name"] == name]
        path = self.root / "pods" / pod_name / "volumes" / name
        if "emptyDir" in volume:
            path.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volume:
            data = self.config_maps[volume["configMap"]["name"]]["data"]
            self.project(path, {k: v.encode() for k, v in data.items()}, volume["configMap"].get("items"))
        elif "secret" in volume:
            data = self.secrets[volume["secret"]["secretName"]]["data"]
            self.project(path, {k: base64.b64decode(v) for k, v in data.items()}, volume["secret"].get("items"))
        else:
            raise AssertionError(f"volume {name}: a kind this node does not simulate: {volume}")
        return path

    @staticmethod
    def project(path: Path, data: dict[str, bytes], items: list[dict[str, str]] | None) -> None:
        """The kubelet's atomic writer: files in a dated directory, `..data` a link to it,
        and each top-level name a link through `..data`."""
        files = {item["path"]: data[item["key"]] for item in items} if items else dict(data)
        dated = path / "..2026_11_30_00_00_00.000000001"
        for relative, content in files.items():
            (dated / relative).parent.mkdir(parents=True, exist_ok=True)
            (dated / relative).write_bytes(content)
        if not (path / "..data").exists():
            (path / "..data").symlink_to(dated.name)
            for top in {relative.split("/")[0] for relative in files}:
                (path / top).symlink_to(f"..data/{top}")

    @staticmethod
    def local_path(arg: str, mounts: dict[str, Path]) -> str:
        for mount_path, local in mounts.items():
            if arg == mount_path or arg.startswith(mount_path + "/"):
                return str(local) + arg[len(mount_path):]
        return arg

    # the node -------------------------------------------------------------------------
    def start_all(self) -> list[Pod]:
        return [self.start(w, name) for w in self.workloads() for name in self.pod_names(w)]

    def wait_ready(self, pods: list[Pod], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for pod in pods:
            while not pod.ready():
                assert pod.proc is not None and pod.proc.poll() is None, \
                    f"pod {pod.name} exited {pod.proc.returncode if pod.proc else '?'}:\n{pod.log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"pod {pod.name} not ready: {pod.get('/readyz')}\n" \
                                                    f"{pod.log.read_text()[-3000:]}"
                time.sleep(0.1)

    def kill(self, pod: Pod) -> None:
        """What a node's failure does to a pod: its runner SIGKILLed, nothing said."""
        assert pod.proc is not None
        pod.proc.send_signal(signal.SIGKILL)
        pod.exits.append(pod.proc.wait())

    def stop(self, pod: Pod, grace: float = 30.0) -> int:
        """What `kubectl delete pod` does: the preStop hook (in the container: python is
        this one, port 8080 the pod's), then SIGTERM, KILL after the grace period."""
        assert pod.proc is not None
        (container,) = pod.workload["spec"]["template"]["spec"]["containers"]
        hook = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        if hook and pod.proc.poll() is None:
            command = [sys.executable if part == "python" else part.replace(":8080/", f":{pod.health_port}/")
                       for part in hook]
            subprocess.run(command, capture_output=True, timeout=grace)
        pod.proc.send_signal(signal.SIGTERM)
        try:
            code = pod.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pod.proc.kill()
            code = pod.proc.wait()
        pod.exits.append(code)
        return code

    def shutdown(self) -> list[int]:
        """Every pod stopped as `kubectl delete` would; returns the processes of ours still
        alive after that (none, or a bug), KILLed on the way out."""
        for pod in self.pods.values():
            if pod.proc is not None and pod.proc.poll() is None:
                self.stop(pod, grace=15.0)
        left = tagged_processes(self.tag)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left
