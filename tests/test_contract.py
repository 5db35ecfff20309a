"""The contract as others read it: docs/asyncapi.yaml and wire/messages.py are what the
catalogue makes, the document names every message of the Media Routing API with what a
client needs (answer, error codes, envelope, numbering), @asyncapi/cli finds it valid, and a
desk written in another language from the document alone (tests/node_desk/desk.mjs) logs in,
takes a chat and follows the numbering."""

from __future__ import annotations

import fcntl
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from wire.catalogue import SPECS

from .helpers import ChatClient, base_topology

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
NODE_DESK = ROOT / "tests" / "node_desk"
# What the tests install with npm (gitignored, as all of .mroute): .ci/run puts @asyncapi/cli
# here; the node desk's zeromq goes to node_desk/ beside it.
NPM_DIR = ROOT / ".mroute" / "npm"

# protocol.md 1.1: what Chat Servers push to General; and ours (1.2): the beat and Resync.
GENERAL_REQUESTS = {"Connect", "Login", "AgentState", "Conference", "Transfer", "TaskState", "Task",
                    "GetAgentState", "GetTaskState", "Heartbeat", "Resync"}

# npm's words when the registry cannot be reached.
NO_NETWORK = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|"
                        r"network|proxy|offline", re.I)


def test_generated_files_are_what_the_catalogue_makes() -> None:
    done = subprocess.run([sys.executable, "-m", "wire.generate", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"stale generated files (run `python -m wire.generate`):\n{done.stderr}{done.stdout}"


def load_document() -> dict[str, Any]:
    document = yaml.safe_load(ASYNCAPI.read_text())
    assert isinstance(document, dict)
    return document


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def channel_messages(document: dict[str, Any], channel: str) -> dict[str, dict[str, Any]]:
    """A channel's messages by name, each resolved to its components.messages entry."""
    return {name: resolve(document, entry["$ref"])
            for name, entry in document["channels"][channel]["messages"].items()}


def test_asyncapi_document_names_every_message_of_the_media_routing_api() -> None:
    document = load_document()
    messages = document["components"]["messages"]
    missing = [f"{spec.queue}.{spec.type}" for spec in SPECS if f"{spec.queue}.{spec.type}" not in messages]
    assert not missing, f"the catalogue's messages missing from components.messages: {missing}"

    general = channel_messages(document, "General")
    assert set(general) == GENERAL_REQUESTS, (
        f"General lists {sorted(general)}; protocol.md 1.1 (+ Heartbeat, Resync) has {sorted(GENERAL_REQUESTS)}")
    for name, message in general.items():
        assert message.get("x-answer"), f"General.{name} has no x-answer"
        assert f"ChatEvents.{message['x-answer']}" in messages, f"General.{name}'s answer {message['x-answer']} " \
                                                               f"is not a ChatEvents message"
        assert message.get("x-error-codes"), f"General.{name} has no x-error-codes"
        payload = message["payload"]
        for envelope in ("MsgId", "ReplyTo"):
            assert envelope in payload["properties"], f"General.{name} has no {envelope} in its payload"
        assert "ReplyTo" in payload["required"], f"General.{name} does not require ReplyTo"

    chat_events = channel_messages(document, "ChatEvents")
    assert chat_events, "the ChatEvents channel lists no messages"
    for name, message in chat_events.items():
        for numbering in ("Seq", "Stream"):
            assert numbering in message["payload"]["properties"], f"ChatEvents.{name} has no {numbering}"


def asyncapi_cli() -> str | None:
    found = shutil.which("asyncapi")
    if found:
        return found
    local = NPM_DIR / "node_modules" / ".bin" / "asyncapi"
    return str(local) if local.exists() else None


def test_asyncapi_validate(tmp_path: Path) -> None:
    cli = asyncapi_cli()
    if cli is None:
        pytest.skip(f"no asyncapi CLI on PATH nor in {NPM_DIR.relative_to(ROOT)}/node_modules/.bin "
                    "(.ci/run installs @asyncapi/cli there when npm is present)")
    # No analytics, no first-run notice, nothing written to the real HOME: the CLI reads its
    # analytics setting from ASYNCAPI_METRICS_CONFIG_PATH and sends nothing when it is off.
    metrics = tmp_path / "asyncapi-analytics.json"
    metrics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true",
                                   "userID": "mroute-tests"}))
    env = dict(os.environ, HOME=str(tmp_path), ASYNCAPI_METRICS_CONFIG_PATH=str(metrics), CI="true",
               NO_COLOR="1", FORCE_COLOR="0")
    done = subprocess.run([cli, "validate", str(ASYNCAPI.relative_to(ROOT))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"asyncapi validate exited {done.returncode}:\n{output}"
    errors = [line for line in output.splitlines() if re.search(r"\berror\b", line, re.I)]
    assert not errors, f"asyncapi validate reported errors:\n{output}"
    assert "is valid" in output, output


def install_node_desk() -> Path:
    """The node desk's dependencies (zeromq) in .mroute/npm/node_desk, installed once: under a
    file lock, so that xdist workers do not run npm in the same folder at once."""
    target = NPM_DIR / "node_desk"
    target.mkdir(parents=True, exist_ok=True)
    wanted = (NODE_DESK / "package.json").read_text()
    with open(NPM_DIR / "node_desk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = target / "node_modules" / "zeromq" / "package.json"
        manifest = target / "package.json"
        if installed.exists() and manifest.exists() and manifest.read_text() == wanted:
            return target
        manifest.write_text(wanted)
        try:  # about a second (zeromq's prebuilt binaries come in its package); within the test's 120 s
            done = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=target,
                                  capture_output=True, text=True, timeout=90)
        except subprocess.TimeoutExpired:
            manifest.unlink(missing_ok=True)  # the next run tries again
            pytest.skip("npm install of the node desk's zeromq took over 90 s (no network?)")
        if done.returncode != 0 or not installed.exists():
            output = done.stdout + done.stderr
            manifest.unlink(missing_ok=True)  # the next run tries again
            said = [line for line in output.splitlines() if NO_NETWORK.search(line)]
            if said:
                pytest.skip(f"npm could not install the node desk's zeromq (no network?): {said[0].strip()}")
            pytest.fail(f"npm install of the node desk's zeromq failed (exit {done.returncode}):\n{output}")
    return target


class LineReader:
    """A child's stdout, line by line, each read bounded by a deadline (no sleeps, and no
    line left waiting in a buffer that select() cannot see)."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.buffer = b""
        self.eof = False
        self.lines: list[str] = []

    def close(self) -> None:
        self.sel.close()

    def line(self, deadline: float) -> str | None:
        """The next line, or None at end of file or at the deadline."""
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if self.eof or left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
                if not self.buffer:
                    return None
                self.buffer += b"\n"
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        line = raw.decode(errors="replace")
        self.lines.append(line)
        return line


def test_a_node_desk_written_from_the_document_logs_in_takes_a_chat_and_checks_seq(start_topology, tmp_path):
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("needs node and npm (the node desk is written in JavaScript)")
    deps = install_node_desk()
    running = start_topology(base_topology("nodedesk"))
    endpoints = running.endpoints()
    customer = ChatClient(endpoints, "cust")
    stderr_file = tmp_path / "node-desk.stderr"
    proc: subprocess.Popen[bytes] | None = None
    reader: LineReader | None = None
    try:
        with open(stderr_file, "wb") as stderr:
            proc = subprocess.Popen(
                [node, str(NODE_DESK / "desk.mjs"), "--general", endpoints["General"],
                 "--events", endpoints["ChatEvents"], "--destination", "desk-node", "--agent", "alice",
                 "--password", "pw-alice", "--mrd", "chat", "--deps", str(deps)],
                stdout=subprocess.PIPE, stderr=stderr, cwd=tmp_path)
        reader = LineReader(proc)
        customer.handshake("alice")

        def told() -> str:
            assert reader is not None
            out = "\n".join(reader.lines)
            return f"node desk stdout:\n{out}\nstderr:\n{stderr_file.read_text(errors='replace')}"

        deadline = time.monotonic() + 20
        while (line := reader.line(deadline)) is not None and line.strip() != "READY":
            pass
        assert line is not None, f"the node desk never said READY\n{told()}"

        msg_id = customer.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
        queued = customer.expect("TaskState", 5, MsgId=msg_id)
        assert queued["State"] == "QUEUED", queued
        task_id = queued["TaskId"]

        deadline = time.monotonic() + 35  # the desk gives up after 30 s by itself
        while reader.line(deadline) is not None:
            pass
        assert reader.eof, f"the node desk did not end within 35 s\n{told()}"
        code = proc.wait(timeout=5)
        assert code == 0, f"the node desk exited {code}\n{told()}"
        result = json.loads(reader.lines[-1])
        assert result["ok"] is True, told()
        assert result["task"] == task_id, f"the desk closed {result['task']}, Comm gave the Task {task_id}"
        assert len(result["streams"]) == 1, f"the numbering restarted: {result['streams']}"
        seqs = result["seqs"]
        assert len(seqs) == result["messages"] >= 6, told()
        assert all(b == a + 1 for a, b in zip(seqs, seqs[1:])), f"Seq not consecutive: {seqs}"
        # What the desk did, Comm applied: the customer's Chat Server hears the task closed.
        customer.expect("TaskState", 5, TaskId=task_id, State="CLOSED", Code="DONE")
    finally:
        if reader is not None:
            reader.close()
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        customer.close()


def test_the_readmes_desk_logs_in_takes_a_chat_and_closes_it(start_topology):
    """examples/desk.py, shown whole in the README, against a real topology: a customer's
    Task reaches it, it accepts and closes it, and the customer hears the close."""
    readme = (ROOT / "README.md").read_text()
    code = (ROOT / "examples" / "desk.py").read_text()
    assert code.strip() in readme, "the README does not show examples/desk.py as it is"
    running = start_topology(base_topology("readme-desk"))
    desk = subprocess.Popen([sys.executable, str(ROOT / "examples" / "desk.py"), str(running.file), "alice",
                             "pw-alice"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert desk.stdout is not None
        assert desk.stdout.readline().strip() == "alice is READY", desk.stderr.read() if desk.poll() else ""
        with ChatClient(running.endpoints(), "readme-customer") as customer:
            customer.handshake()
            asked = customer.send("Task", {"Mrd": "chat", "ClientUniqueId": "c-readme"})
            task_id = customer.expect("TaskState", MsgId=asked, State="QUEUED")["TaskId"]
            out, err = desk.communicate(timeout=30)
            assert desk.returncode == 0, err
            assert f"alice took and closed {task_id}" in out
            assert customer.expect("TaskState", TaskId=task_id, State="CLOSED", timeout=10)["Code"] == "DONE"
    finally:
        if desk.poll() is None:
            desk.kill()
        desk.wait()
