"""Issue 16: `mroute actor NAME`, one actor in the foreground for an orchestrator: the
health port's answers through a start, a hang and a stop, and its exit status (0 when
stopped, 1 with the reason when the actor fails). Which instance a name stands for:
tests/inprocess/test_actor_command.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from launch.topology import load

from ..cluster import free_port, http_get
from ..helpers import MROUTE, tagged_processes, wait_until
from ..inprocess.test_actor_command import tcp_topology

pytestmark = pytest.mark.timeout(90)


class ActorProcess:
    def __init__(self, file: Path, name: str, tag: str, *extra: str):
        self.port = free_port()
        self.log = file.parent / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([*MROUTE, "actor", name, "-f", str(file), "--run-dir",
                                          str(file.parent / name), "--health-port", str(self.port), *extra],
                                         stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, MROUTE_TEST_TAG=tag))

    def get(self, path: str) -> tuple[int, str]:
        return http_get(self.port, path, timeout=20)

    def post(self, path: str, body: dict[str, object]) -> tuple[int, str]:
        """A POST of JSON: the only way the health port takes a change (/drain, /load)."""
        import urllib.error
        import urllib.request
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture
def run(tmp_path):
    tag = f"actor-{os.getpid()}-{os.urandom(3).hex()}"
    started: list[ActorProcess] = []

    def start(file: Path, name: str, *extra: str) -> ActorProcess:
        started.append(ActorProcess(file, name, tag, *extra))
        return started[-1]
    yield start
    for actor in started:
        if actor.proc.poll() is None:
            actor.proc.send_signal(signal.SIGTERM)
            try:
                actor.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                actor.proc.kill()
    left = tagged_processes(tag)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left behind: {left}"


def test_ready_only_once_its_state_is_loaded_and_stopped_cleanly(tmp_path, run):
    file = tcp_topology(tmp_path)
    mre = run(file, "mre")
    wait_until(lambda: mre.get("/healthz")[0] == 200, timeout=20, what="the MRE's health port")
    code, body = mre.get("/readyz")
    assert code == 503 and "not READY" in body     # no snapshot from Comm yet: not ready
    comm = run(file, "comm.1")
    wait_until(lambda: comm.get("/readyz")[0] == 200, timeout=20, what="Comm ready")
    wait_until(lambda: mre.get("/readyz")[0] == 200, timeout=20, what="the MRE ready once Comm's snapshot came")
    status, metrics = comm.get("/metrics")
    assert status == 200 and 'mroute_actor_up{actor="comm.1",role="comm"} 1.0' in metrics
    assert 'mroute_tasks_waiting{queue="chat-default"}' in metrics
    for actor in (mre, comm):
        actor.proc.send_signal(signal.SIGTERM)
        assert actor.proc.wait(timeout=15) == 0, actor.text()


def test_a_start_failure_exits_1_with_the_reason(tmp_path, run):
    file = tcp_topology(tmp_path)
    topology = load(file)
    host, port = topology.endpoints["General"].removeprefix("tcp://").split(":")
    import socket
    with socket.socket() as taken:   # Comm's port is someone else's
        taken.bind((host, int(port)))
        taken.listen()
        comm = run(file, "comm.1")
        assert comm.proc.wait(timeout=30) == 1
    assert "Address already in use" in comm.text()
    chat = run(file, "chat.2")          # past the directory: refused before it starts
    assert chat.proc.wait(timeout=30) == 1
    assert "would desk 1 of its 3 agents" in chat.text()


def test_a_hung_actor_is_unhealthy_then_killed(tmp_path, run):
    file = tcp_topology(tmp_path, ping_interval=0.2, ping_misses=2, unresponsive_grace=1.5)
    comm = run(file, "comm.1")
    wait_until(lambda: comm.get("/readyz")[0] == 200, timeout=20, what="Comm ready")
    child = int(Path(f"/proc/{comm.proc.pid}/task/{comm.proc.pid}/children").read_text().split()[0])
    os.kill(child, signal.SIGSTOP)
    status, why = wait_until(lambda: (answer := comm.get("/healthz"))[0] == 503 and answer, timeout=10,
                             what="/healthz failing for a hung actor")
    assert "UNRESPONSIVE" in why
    assert comm.proc.wait(timeout=20) == 1       # killed after the grace: the orchestrator restarts it
    assert "did not answer for 1.5 s" in comm.text()


def test_drain_ends_new_chats_and_waits_for_those_under_way(tmp_path, run):
    file = tcp_topology(tmp_path)
    comm, mre, chat = run(file, "comm"), run(file, "mre"), run(file, "chat-0")
    for actor in (comm, mre, chat):
        wait_until(lambda a=actor: a.get("/readyz")[0] == 200, timeout=30, what="ready")

    def created() -> int:   # asked of the actor now (/metrics is refreshed every 2 s)
        status, body = chat.get("/stats")
        assert status == 200, body
        return json.loads(body)["answer"]["created"]
    wait_until(lambda: created() >= 5, timeout=20, what="chats under way")
    started = time.monotonic()
    code, body = chat.post("/drain", {})
    assert code == 200 and "drained" in body, body
    assert time.monotonic() - started < 20
    assert chat.get("/readyz")[0] == 503            # draining: no longer ready
    before = created()
    time.sleep(1.0)   # a second in which a rate of 20/s would have made ~20 more
    assert created() == before
    chat.proc.send_signal(signal.SIGTERM)
    assert chat.proc.wait(timeout=15) == 0


def this_hosts_address() -> str | None:
    """An address of this machine that is not loopback: a client from 'another host'."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))   # TEST-NET: nothing is sent, the route picks our address
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_control_paths_need_this_host_or_the_token(tmp_path, run):
    import urllib.error
    import urllib.request
    address = this_hosts_address()
    if address is None:
        pytest.skip("this machine has no address but loopback: no other host to be")
    (tmp_path / "token").write_text("s3cret-token\n")
    file = tcp_topology(tmp_path)
    chat = run(file, "chat.1", "--health-host", "0.0.0.0", "--control-token-file", str(tmp_path / "token"))
    wait_until(lambda: chat.get("/stats")[0] == 200, timeout=20, what="the chat server answering /stats here")

    def call(path: str, token: str | None = None, body: bytes | None = None, host: str = address) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:   # a change: JSON only
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"http://{host}:{chat.port}{path}", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as err:
            return err.code
    assert call("/healthz") == 200 and call("/metrics") == 200           # probes and scrapes: anyone
    assert call("/stats") == 403 and call("/stats", "wrong") == 403
    assert call("/load", body=b'{"rate": 1e300}') == 403                  # nobody else sets a load
    assert call("/drain", "s3cret-token", b"{}") == 403                   # the preStop hook's, from here only
    assert call("/stats", "s3cret-token") == 200
    assert call("/load", "s3cret-token", b'{"rate": "fast"}') == 400      # the actor's refusal, with its reason
    assert call("/load", "s3cret-token", b'{"rate": 0}') == 200
    assert call("/stats", host="127.0.0.1") == 200                        # this host needs no token
