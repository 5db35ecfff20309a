"""The contract as others read it: a desk written in another language from the document
alone (tests/browser/node_desk/desk.mjs, Node.js) logs in, takes a chat and follows the
numbering. The document itself: tests/inprocess/test_contract.py and
tests/processes/test_contract.py."""

from __future__ import annotations

import fcntl
import json
import os
import re
import selectors
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ..helpers import ChatClient, base_topology

ROOT = Path(__file__).resolve().parents[2]
NODE_DESK = Path(__file__).resolve().parent / "node_desk"
# What the tests install with npm (gitignored, as all of .mroute): the node desk's zeromq
# goes to .mroute/npm/node_desk.
NPM_DIR = ROOT / ".mroute" / "npm"


# npm's words when the registry cannot be reached.
NO_NETWORK = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|"
                        r"network|proxy|offline", re.I)


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
