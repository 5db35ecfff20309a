"""Issue 29: the image built with podman, and the compose export run in it, for real.

Where podman can run here (root, Debian's podman with runc), the test
- makes a Debian base with debootstrap (Debian's python3 and its venv module: no python
  image can be had here, Debian's archive and PyPI are the only registries reachable),
  cached as a tarball for the next run, and `podman import`s it;
- builds the image from Containerfile on it (`--build-arg BASE`, `--format docker`);
- exports the compose project of a small topology and runs it with podman-compose;
- checks that every service is healthy (its healthcheck, run by podman, and /readyz on its
  published port) and never root, that the Chat Servers' tasks are routed and closed with
  nothing lost, and that Comm, SIGKILLed and restarted by podman (`restart: unless-stopped`),
  carries on from the journal on its volume;
- tears it all down, also when the test fails: no container, process, network, storage or
  firewall rule of podman's is left.

Elsewhere it is skipped, saying what is missing.

podman's state is the test's own (storage, networks, events: a directory removed at the
end), so a run leaves nothing behind and never meets images or containers of anyone else.
Only the base is kept between runs, under /var/cache/mroute-test (MROUTE_TEST_CACHE):
debootstrap takes most of a minute, `podman import` of the tarball two seconds. Delete the
tarball to take Debian's newer packages.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from wire.kernel.rundir import journal_path

from ..helpers import MROUTE, base_topology, metric_sum, pid_alive, wait_until

# measured alone on a 2-core machine: 46 to 64 s with the base cached, 97 s when debootstrap
# runs too (50 s of it)
pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MROUTE_TEST_CACHE", "/var/cache/mroute-test"))
SUITE = "bookworm"                         # python 3.11, as pyproject.toml asks
BASE_TAR = CACHE / f"debian-{SUITE}-python3.tar"
BASE_IMAGE = f"localhost/debian-python:{SUITE}"
IMAGE = "localhost/mroute:test"
# Debian's pip (the image's venv has it) trusts the system's bundle: the host's is lent to
# the build, for a network whose TLS is inspected by a CA only the host knows
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HELPERS = Path("/usr/lib/podman")          # where Debian puts netavark and aardvark-dns

# Debian's podman 4.3 with crun fails here ("setrlimit RLIMIT_NOFILE: Operation not
# permitted", then "cgroups in hybrid mode not supported"): runc with limits it may set
# does not. No systemd here: cgroupfs, events in a file, healthchecks run on demand.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{home}/events.log"
tmp_dir = "{home}/tmp"
[network]
network_config_dir = "{home}/networks"
"""
STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{home}/root"
runroot = "{home}/run"
"""
# podman also keeps some state in fixed places; whatever of it was not there before goes
HOST_PATHS = (Path("/run/containers"), Path("/var/lib/containers"))
EMPTY_DIRS = (Path("/run/netns"), Path("/run/runc"))
PREFIX = "mroute-podman-"                  # the test's podman directory, in /tmp

DRAIN = ("import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8080/drain', data=b'{}', "
         "headers={'Content-Type': 'application/json'}), timeout=30)")
CHAT_FAILURES = ("abandoned", "expired", "lost", "refused", "errors", "gave_up")


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=15):
            return True
    except (urllib.error.URLError, OSError):
        return False


def debian_mirror(sources: Path = Path("/etc/apt")) -> str | None:
    """The archive this machine's apt reads SUITE from (deb822 `*.sources` or a
    `sources.list` line): debootstrap is pointed at the same."""
    for path in sorted((sources / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#"))
            if "deb" in fields.get("Types", "").split() and SUITE in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    for path in [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.list"))]:
        for line in path.read_text().splitlines() if path.exists() else []:
            words = line.split()
            if words[:1] == ["deb"] and len(words) >= 3 and SUITE in words[2:3]:
                return words[1]
    return None


def pypi_index() -> str:
    """Where the image's `pip install .` fetches mroute's dependencies: this machine's pip's
    index (its configuration, else pip's own default)."""
    configured = os.environ.get("PIP_INDEX_URL")
    if not configured:
        done = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"], capture_output=True,
                              text=True, timeout=30)
        configured = done.stdout.strip() if done.returncode == 0 else ""
    if not configured:
        from pip._internal.models.index import PyPI   # pip's default, not restated here
        configured = PyPI.simple_url
    return configured.rstrip("/") + "/pyzmq/"


MIRROR = debian_mirror()


def missing() -> str | None:
    """Why podman cannot run the test here, or None."""
    if os.geteuid() != 0:
        return ("not root: rootless podman maps the services' user onto another, who cannot read the files only "
                "that user may read (the compose export's 0600 files)")
    for tool, package in (("podman", "podman"), ("runc", "runc"), ("podman-compose", "podman-compose"),
                          ("iptables", "iptables"), (HELPERS / "netavark", "netavark"),
                          (HELPERS / "aardvark-dns", "aardvark-dns: the services find each other by name")):
        if not (Path(tool).exists() if isinstance(tool, Path) else shutil.which(tool)):
            return f"no {tool} (Debian's {package}; .ci/run installs it)"
    if not BASE_TAR.exists():
        if not shutil.which("debootstrap"):
            return f"no debootstrap (Debian's debootstrap) to make the base image, and no {BASE_TAR}"
        if MIRROR is None:
            return f"no Debian archive for {SUITE} in this machine's apt sources: the base image is made by debootstrap"
        if not reachable(f"{MIRROR}/dists/{SUITE}/Release"):
            return f"no network to Debian's archive ({MIRROR}): the base image is made by debootstrap"
    if not reachable(pypi_index()):
        return "no network to PyPI: the image's `pip install .` fetches mroute's dependencies"
    return None


def tail(done: subprocess.CompletedProcess[str], lines: int = 30) -> str:
    return "\n".join((done.stdout + done.stderr).splitlines()[-lines:])


def mounts_under(root: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(f"{root}/")]


def base_tarball(took: dict[str, float]) -> Path:
    """Debian with python3 and its venv module as a tarball, made once (debootstrap) and
    kept; a lock keeps two runs from making it at once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if BASE_TAR.exists():
            return BASE_TAR
        start = time.monotonic()
        root = Path(tempfile.mkdtemp(prefix=f"debootstrap-{SUITE}-", dir=CACHE))
        partial = BASE_TAR.with_suffix(".partial")
        try:
            done = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv", SUITE,
                                   str(root), MIRROR], capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"debootstrap failed:\n{tail(done)}"
            for cache in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):   # 95 MB of apt's
                for path in cache.glob("*"):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True,
                           timeout=300)
            partial.rename(BASE_TAR)
            took["debootstrap"] = time.monotonic() - start
        finally:
            for mount in reversed(mounts_under(root)):   # debootstrap's /proc, should it have failed midway
                subprocess.run(["umount", "-l", mount], check=False)
            shutil.rmtree(root, ignore_errors=True)
            partial.unlink(missing_ok=True)
    return BASE_TAR


class HostTraces:
    """What podman changes on the host outside its own directories: ip forwarding (netavark
    turns it on), netavark's iptables chains, its state under /run and /var/lib. What was
    not so before the test is undone after it."""

    def __init__(self, saved: dict[str, Any] | None = None) -> None:
        saved = saved or {"forwarding": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
                          "paths": [str(path) for path in (*HOST_PATHS, *EMPTY_DIRS) if not path.exists()],
                          "chains": {tool: "NETAVARK" in self.rules(tool) for tool in ("iptables", "ip6tables")}}
        self.forwarding: str = saved["forwarding"]
        self.paths = [Path(path) for path in saved["paths"]]
        self.chains: dict[str, bool] = saved["chains"]

    def save(self, file: Path) -> None:
        file.write_text(json.dumps({"forwarding": self.forwarding, "paths": [str(p) for p in self.paths],
                                    "chains": self.chains}))

    @staticmethod
    def rules(tool: str) -> str:
        done = subprocess.run([f"{tool}-save"], capture_output=True, text=True, timeout=30)
        return done.stdout if done.returncode == 0 else ""

    def undo(self) -> None:
        Path("/proc/sys/net/ipv4/ip_forward").write_text(self.forwarding)
        for tool, had in self.chains.items():
            rules = self.rules(tool)
            if not had and "NETAVARK" in rules:
                kept = "".join(line for line in rules.splitlines(keepends=True) if "NETAVARK" not in line)
                subprocess.run([f"{tool}-restore"], input=kept, text=True, check=True, timeout=30)
        for path in self.paths:
            if path in HOST_PATHS:
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


class Podman:
    """podman and podman-compose on state of their own, under `home`."""

    def __init__(self, home: Path):
        self.home = home
        (home / "containers.conf").write_text(CONTAINERS_CONF.format(home=home))
        (home / "storage.conf").write_text(STORAGE_CONF.format(home=home))
        (home / "owner").write_text(str(os.getpid()))
        self.env = {**os.environ, "CONTAINERS_CONF": str(home / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(home / "storage.conf")}
        self.projects: list[tuple[str, Path]] = []
        self.pids: set[int] = set()   # the containers' processes seen: none may outlive the test

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0 or not check, f"{' '.join(args[:4])} ... exited {done.returncode}:\n{tail(done)}"
        return done

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *args, timeout=timeout, check=check)

    def inspect(self, name: str) -> dict[str, Any]:
        state = json.loads(self("inspect", name).stdout)[0]
        if state["State"]["Pid"]:
            self.pids.add(state["State"]["Pid"])
        return state

    def compose(self, project: str, directory: Path, *args: str, timeout: float = 180) -> None:
        if (project, directory) not in self.projects:
            self.projects.append((project, directory))
        self.run("podman-compose", "-p", project, "-f", str(directory / "compose.yaml"), *args, timeout=timeout)

    def close(self) -> None:
        """Everything down and away: the projects, then whatever else is in the storage."""
        for project, directory in self.projects:
            self.run("podman-compose", "-p", project, "-f", str(directory / "compose.yaml"), "down", "-t", "5",
                     timeout=180, check=False)
        self("rm", "--all", "--force", "--time", "0", check=False)
        self("system", "reset", "--force", timeout=180, check=False)   # images, networks, the storage
        for mount in reversed(mounts_under(self.home)):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(self.home, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """Processes still about: a container's, or podman's for this storage (conmon, a
        cleanup) whose command line names it."""
        ours = [f"{pid}: a container's process" for pid in sorted(self.pids) if pid_alive(pid)]
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and proc.name != str(os.getpid()) and pid_alive(int(proc.name)):
                try:
                    line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if str(self.home) in line:
                    ours.append(f"{proc.name}: {line[:200]}")
        return ours


def sweep() -> None:
    """Whatever a run killed before its teardown left (its containers would go on running,
    restarted by podman): down and away."""
    for home in Path("/tmp").glob(f"{PREFIX}*"):
        owner, host = home / "owner", home / "host.json"
        if owner.exists() and not pid_alive(int(owner.read_text() or 0)):
            traces = HostTraces(json.loads(host.read_text())) if host.exists() else None
            Podman(home).close()
            if traces is not None:
                traces.undo()


@pytest.fixture
def podman() -> Any:
    reason = missing()
    if reason:
        pytest.skip(reason)
    sweep()
    traces = HostTraces()
    engine = Podman(Path(tempfile.mkdtemp(prefix=PREFIX, dir="/tmp")))   # short, for conmon's socket paths
    traces.save(engine.home / "host.json")
    try:
        yield engine
    finally:
        try:
            engine.close()
        finally:
            traces.undo()
    try:
        wait_until(lambda: not engine.leftovers(), timeout=30, interval=0.5, what="podman's processes to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {engine.leftovers()}") from None


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1, below the kernel's range of
    ephemeral ports: one picked from that range was taken by another test's connection
    before podman could publish it (the service stayed "Created", never started)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10_000, low - count)
        if all(port_free(base + i) for i in range(count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports below {low}")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as exc:
        return 0, str(exc)


def series(port: int, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`, on a service's /metrics."""
    status, text = get(port, "/metrics")
    assert status == 200, f"/metrics on {port}: {status} {text[:200]}"
    return metric_sum(text, name, **labels)


def journal_summary(path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "actors", "journal", "summary", str(path)], capture_output=True,
                          text=True, timeout=30, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def build_image(podman: Podman, took: dict[str, float]) -> None:
    tarball = base_tarball(took)
    start = time.monotonic()
    podman("import", str(tarball), BASE_IMAGE)
    took["import"] = time.monotonic() - start
    probe = podman("run", "--rm", BASE_IMAGE, "python3", "-c", "import venv", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {tail(probe, 3)}")
    lend = ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.exists() else []
    start = time.monotonic()
    podman("build", "--format", "docker", "--build-arg", f"BASE={BASE_IMAGE}", *lend, "-t", IMAGE,
           "-f", str(REPO / "Containerfile"), str(REPO), timeout=600)
    took["build"] = time.monotonic() - start
    (image,) = json.loads(podman("image", "inspect", IMAGE).stdout)
    took["image MB"] = image["Size"] / 1e6
    assert image["Config"]["User"] == "10001:10001"
    assert "/readyz" in " ".join(image["Healthcheck"]["Test"])   # kept: the docker format


def test_the_compose_export_runs_in_podman_and_comm_carries_on_from_its_volume(podman, tmp_path):
    took: dict[str, float] = {}
    build_image(podman, took)
    project = "mrbox"
    spec = base_topology(name=project, chat={"count": 2, "agents": 3, "rate": 6.0, "handle": "uniform:0.2,0.6"},
                         agents=4)
    spec["actors"]["gc"] = {"role": "gc"}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "compose"
    base = free_ports(5)
    done = subprocess.run([*MROUTE, "export", "compose", "-f", str(tmp_path / "topology.yaml"), "-o", str(out),
                           "--image", IMAGE, "--health-port-base", str(base)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    published = yaml.safe_load((out / "compose.yaml").read_text())["services"]
    assert sorted(published) == ["chat-1", "chat-2", "comm", "gc", "mre"]
    services = list(published)
    port = {service: int(published[service]["ports"][0].split(":")[1]) for service in services}   # 127.0.0.1:P:8080
    assert sorted(port.values()) == list(range(base, base + 5))
    name = {service: f"{project}_{service}_1" for service in services}   # podman-compose 1.0.3's names

    start = time.monotonic()
    podman.compose(project, out, "up", "-d")
    try:
        for service in services:   # each started, or why not (podman-compose goes on past a failed run)
            if podman.inspect(name[service])["State"]["Status"] == "created":
                again = podman("start", name[service], check=False)
                raise AssertionError(f"{service} was created, never started: {tail(again, 5)}")
        for service in services:   # podman runs each service's healthcheck (no systemd timer here: on demand)
            wait_until(lambda: podman("healthcheck", "run", name[service], check=False).returncode == 0,
                       timeout=90, interval=1, what=f"{service} healthy")
            assert get(port[service], "/readyz")[0] == 200, service
            state = podman.inspect(name[service])
            assert state["Config"]["User"] == "10001:10001"
            status = Path(f"/proc/{state['State']['Pid']}/status").read_text()
            assert re.search(r"^Uid:\s+10001\s", status, re.M), f"{service} runs as another user:\n{status}"
        took["up, all healthy"] = time.monotonic() - start

        comm = port["comm"]
        chats = [port["chat-1"], port["chat-2"]]

        def chat_total(outcome: str) -> float:
            return sum(series(p, "mroute_chat_tasks_total", outcome=outcome) for p in chats)

        wait_until(lambda: series(comm, "mroute_tasks_total", event="closed") >= 30, timeout=60, interval=0.5,
                   what="30 tasks closed")
        assert series(comm, "mroute_agents", mrd="chat") == 6   # both Chat Servers desked their 3

        # Comm killed as the kernel's OOM killer would: podman restarts it, on the same volume
        before = journal_summary(journal_path(out / "state" / "comm"))
        assert before["epoch"] and before["agents_logged_in"] == 6, before
        created = series(comm, "mroute_tasks_total", event="created")
        killed = podman.inspect(name["comm"])["State"]["Pid"]
        start = time.monotonic()
        os.kill(killed, signal.SIGKILL)

        def restarted() -> bool:
            state = podman.inspect(name["comm"])
            return state["RestartCount"] >= 1 and state["State"]["Running"] and state["State"]["Pid"] != killed
        wait_until(restarted, timeout=60, interval=0.5, what="podman restarting Comm")
        wait_until(lambda: get(comm, "/readyz")[0] == 200, timeout=60, interval=0.5, what="Comm ready again")
        took["Comm killed to ready"] = time.monotonic() - start
        logs = podman("logs", name["comm"])
        carried = [json.loads(line)["message"] for line in (logs.stdout + logs.stderr).splitlines()
                   if "carried on from the journal" in line]
        assert len(carried) == 1, carried   # the second start only
        assert re.search(rf": 6 agents, \d+ tasks \(epoch {before['epoch']}\)$", carried[0]), carried[0]
        # its counters came back from the journal: a Comm starting afresh counts from 0
        assert series(comm, "mroute_tasks_total", event="created") >= created
        closed = chat_total("closed")
        wait_until(lambda: chat_total("closed") >= closed + 20, timeout=60, interval=0.5,
                   what="routing again after Comm's restart")

        # a load driven from the host through the published ports, as a tester would: the
        # export's control token lets it past the health port's guard
        report = tmp_path / "attached.json"
        attach = [arg for service in services for arg in ("--attach-pods", f"127.0.0.1:{port[service]}")]
        done = subprocess.run([*MROUTE, "load", *attach, "--control-token-file", str(out / "control" / "token"),
                               "--rate", "10", "--duration", "2", "--quiet", "--json", str(report)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr + done.stdout
        attached = json.loads(report.read_text())
        ends = sum(attached[k] for k in ("refused", "closed", "abandoned", "expired", "closed_other", "unfinished",
                                         "unacknowledged"))
        assert attached["created"] > 0 and attached["lost"] == 0 and ends == attached["created"], attached

        # no new customers; each Chat Server answers once its chats have ended (the preStop's
        # /drain: served to the container itself only)
        for service in ("chat-1", "chat-2"):
            podman("exec", name[service], "python", "-c", DRAIN, timeout=60)

        counts: dict[str, float] = {}

        def all_closed(p: int) -> bool:
            counts.update({o: series(p, "mroute_chat_tasks_total", outcome=o)
                           for o in ("created", "routed", "closed", *CHAT_FAILURES)})
            return counts["created"] == counts["closed"]
        for p in chats:   # /metrics shows the actor's stats of up to a second ago
            try:
                wait_until(lambda: all_closed(p), timeout=10, interval=0.5, what="every task closed")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {counts}") from None
            assert counts["created"] == counts["routed"] == counts["closed"] > 0, counts
            assert not any(counts[o] for o in CHAT_FAILURES), counts
        wait_until(lambda: series(comm, "mroute_tasks_live") == 0, timeout=10, interval=0.5,
                   what="no task left live at Comm")
        print(f"routed and closed {chat_total('closed'):.0f} tasks; Comm carried on: {carried[0]}")
    except BaseException:
        for service in services:
            logs = podman("logs", "--tail", "15", name[service], check=False)
            print(f"--- {service}\n{logs.stdout}{logs.stderr}")
        print(podman("ps", "-a", check=False).stdout)
        raise

    start = time.monotonic()
    podman.compose(project, out, "down", "-t", "10")
    took["down"] = time.monotonic() - start
    assert podman("ps", "-aq").stdout.strip() == ""
    print(", ".join(f"{what} {value:.1f}" for what, value in took.items()))
