"""Test helpers: condition waits (never sleeps), a started topology that kills everything
it started, a desk on the one client, and a Generic Connector client."""

from __future__ import annotations

import itertools
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import orjson
import yaml
import zmq

from launch import client as control_client
from launch.topology import load
from wire.client import Client, NoAnswer, connector

MROUTE = [sys.executable, "-m", "launch.cli"]


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment holds MROUTE_TEST_TAG=tag: what a command started
    with that tag in its environment left behind (children inherit it)."""
    needle = f"MROUTE_TEST_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0") and pid_alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def base_topology(name: str = "t", chat: dict[str, Any] | None = None, agents: int = 6) -> dict[str, Any]:
    actors: dict[str, Any] = {"comm": {"role": "comm"}, "mre": {"role": "mre"}}
    if chat is not None:
        actors["chat"] = {"role": "chat", **chat}
    return {
        "name": name,
        "mrds": {"chat": {"max_tasks": 2, "interruptible": True}, "voice": {"max_tasks": 1, "interruptible": False}},
        "agents": [{"id": "alice", "password": "pw-alice", "name": "Alice Smith", "extension": "1001"},
                   {"id": "bob", "password": "pw-bob", "name": "Bob Jones"},
                   {"generate": {"count": agents, "prefix": "agent", "password": "secret"}}],
        "actors": actors,
    }


class Running:
    """A topology started in the foreground (`mroute up`) as a child of the test, so that
    it dies with the test run (parent-death signal) even when pytest is killed."""

    def __init__(self, directory: Path, spec: dict[str, Any], host: str | None = None):
        self.directory = directory
        self.file = directory / "topology.yaml"
        self.file.write_text(yaml.safe_dump(spec))
        self.host = host
        self.topology = load(self.file).for_host(host)
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: set[int] = set()

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MROUTE, *args], cwd=self.directory, capture_output=True, text=True, timeout=timeout)

    def cli_input(self, *args: str, stdin: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, HOME=str(self.directory))  # the shell keeps its history in HOME
        return subprocess.run([*MROUTE, *args], cwd=self.directory, capture_output=True, text=True,
                              timeout=timeout, input=stdin, env=env)

    def start(self, timeout: float = 20) -> "Running":
        self.proc = subprocess.Popen([*MROUTE, "up", "-f", str(self.file), "--quiet",
                                      *(["--host", self.host] if self.host else [])], cwd=self.directory,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        lines = read_until(self.proc, lambda line: " is up " in line, timeout)
        assert any(" is up " in line for line in lines), f"topology did not start:\n{''.join(lines)}"
        self.remember_pids()
        return self

    def status(self) -> dict[str, Any]:
        return control_client.ask(self.topology, "status")

    def remember_pids(self) -> None:
        status = self.status()
        self.pids |= {a["pid"] for a in status["actors"] if a["pid"]} | {status["supervisor"]["pid"]}

    def endpoints(self) -> dict[str, str]:
        return self.topology.endpoints

    def stop(self) -> None:
        """Stop everything started; KILL whatever does not stop; reap the supervisor."""
        if self.proc is not None:
            end(self.proc, signal.SIGINT)
        for pid in self.pids:
            if pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def leftovers(self) -> list[int]:
        return [pid for pid in self.pids if pid_alive(pid)]


def at_a_terminal() -> None:
    """For Popen's preexec_fn: the process takes Ctrl-C (SIGINT) as it does at a terminal. A
    suite started in the background (`make test &`, a CI runner's job) hands its children
    SIGINT ignored, and Python then never raises KeyboardInterrupt: a test that stops a
    verb with SIGINT would wait on it for nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def end(proc: subprocess.Popen[Any], signum: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Ask a process to stop with `signum`; KILL it if it has not within `timeout`; reap it."""
    if proc.poll() is None:
        proc.send_signal(signum)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def read_until(proc: subprocess.Popen[bytes], done: Callable[[str], bool], timeout: float) -> list[str]:
    """Lines of proc's stderr until `done(line)`, the process exits, or the deadline."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(deadline - time.monotonic()):
                break
            raw = proc.stderr.readline()
            if not raw:
                break
            line = raw.decode(errors="replace")
            lines.append(line)
            if done(line):
                break
    return lines


class ChatClient(Client):
    """A desk for the tests, on the one client (wire/client.py): what it sends goes once, as
    the test wrote it (the test decides what is retried), with a MsgId of the test's."""

    _ids = itertools.count(1)

    def __init__(self, endpoints: dict[str, str], destination: str = "desk",
                 curve: tuple[bytes, bytes, bytes] | None = None):
        """`curve`: (server public key, our public key, our secret key) for a CURVE topology."""
        super().__init__(connector(endpoints, curve), destination, probe=("alice", "chat"))

    def send(self, type: str, body: dict[str, Any], reply_to: bool = True) -> str:  # type: ignore[override]
        msg_id = body.setdefault("MsgId", f"{self.destination}-t{next(self._ids)}")
        if reply_to:
            body.setdefault("ReplyTo", self.destination)
        self.send_raw(type.encode(), orjson.dumps(body))
        return msg_id

    def handshake(self, agent_id: str = "alice", timeout: float = 10) -> None:
        """Probe (a GetAgentState about `agent_id`) until the answer comes on our topic."""
        self.session.probe_about["AgentId"] = agent_id
        self.session.probe_again()
        try:
            self.connect(timeout)
        except NoAnswer:
            raise AssertionError("no answer on our topic: subscription never went live") from None
        self.inbox.clear()

    def expect(self, type: str | None, timeout: float = 5, **fields: Any) -> dict[str, Any]:  # type: ignore[override]
        """The body of the first message of `type` whose body has `fields`."""
        try:
            return super().expect(type, timeout, **fields).body
        except NoAnswer as exc:
            raise AssertionError(str(exc)) from None

    @property
    def sub(self) -> Any:
        return self.sockets.sub

    def answer(self, msg_id: str, timeout: float) -> tuple[str, dict[str, Any]] | None:
        """(type, body) of the message that answers `msg_id`, whatever its type, or None."""
        try:
            found = Client.expect(self, None, timeout, MsgId=msg_id)
        except NoAnswer:
            return None
        return found.type, found.body

    def agent_state(self, agent_id: str, mrd: str = "chat") -> str:
        """Ask Comm (GetAgentState) and return the answer's State."""
        msg_id = self.send("GetAgentState", {"AgentId": agent_id, "Mrd": mrd})
        return self.expect("AgentState", MsgId=msg_id)["State"]

    def login(self, agent_id: str, password: str, mrd: str = "chat", ready: bool = True) -> None:
        self.send("Connect", {"AgentId": agent_id, "Password": password, "Extension": "",
                              "Destination": self.destination})
        self.send("Login", {"AgentId": agent_id, "Password": password, "Mrd": mrd})
        self.expect("AgentState", AgentId=agent_id, State="NOT_READY", Mrd=mrd)
        if ready:
            self.send("AgentState", {"AgentId": agent_id, "State": "READY", "Mrd": mrd})
            self.expect("AgentState", AgentId=agent_id, State="READY", Mrd=mrd)


class GcClient:
    """A Generic Connector client written from protocol.md section 2 alone."""

    def __init__(self, endpoints: dict[str, str], destination: str):
        self.destination = destination
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.sub = self.ctx.socket(zmq.SUB)
        for sock in (self.push, self.sub):
            sock.linger = 0
        self.push.connect(endpoints["GC"])
        self.sub.connect(endpoints["GCEvents"])
        self.sub.setsockopt(zmq.SUBSCRIBE, destination.encode() + b"\x00")
        self.inbox: list[dict[str, Any]] = []

    def close(self) -> None:
        self.push.close()
        self.sub.close()
        self.ctx.term()

    def cmd(self, name: str, who: str, *params: str) -> None:
        self.push.send_multipart([f"{name}#{who}".encode(), ",".join(params).encode()])

    def handshake(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.cmd("Hello", self.destination)
            if self.sub.poll(50):
                self.expect("System")
                self.inbox.clear()
                return
        raise AssertionError("the GC never answered Hello")

    def expect(self, type: str, timeout: float = 5, **fields: Any) -> dict[str, Any]:
        def match(event: dict[str, Any]) -> bool:
            return event.get("type") == type and all(
                (event.get("dialog") or {}).get(k[7:]) == v if k.startswith("dialog_") else event.get(k) == v
                for k, v in fields.items())
        for i, event in enumerate(self.inbox):
            if match(event):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and self.sub.poll(left * 1000):
            event = orjson.loads(self.sub.recv_multipart()[-1])
            if match(event):
                return event
            self.inbox.append(event)
        raise AssertionError(f"no {type} with {fields} within {timeout} s; got: {self.inbox[-10:]}")

    def login(self, agent: str, password: str, extension: str) -> None:
        self.cmd("Connect", agent, self.destination, password)
        self.cmd("Login", agent, password, extension)
        self.expect("State", agentId=agent, state="NOT_READY")


def metric_sum(exposition: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus text exposition's samples of `name` whose labels include
    `labels`."""
    total = 0.0
    for line in exposition.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match[1] or "") for k, v in labels.items()):
            total += float(match[2])
    return total
