"""The CLI's side of the supervisor's control socket: one request, one deadline."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable

import zmq

from wire import control

from .supervisor import is_locked, read_state
from .topology import Topology


class NotRunning(Exception):
    pass


class NoAnswer(Exception):
    pass


class Refused(NoAnswer):
    """The supervisor answered no; `answer` says why (and `confirm`: a person may insist)."""

    def __init__(self, answer: dict[str, Any]):
        super().__init__(answer.get("reason", "the supervisor refused"))
        self.answer = answer


def ask(topology: Topology, verb: str, body: dict[str, Any] | None = None, timeout: float = 3.0, *,
        command: str | None = None, waiting: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Send `verb` to the topology's supervisor and return its answer. Raises NotRunning at
    once when no supervisor holds the run directory, NoAnswer after `timeout` seconds: the
    request is sent once, and a supervisor that stalls answers it when it comes back.
    `command`: the CLI verb asking, named in the message (`mroute stats` asks `status`);
    `waiting(seconds)`: called every NOTICE_EVERY seconds without an answer, to say so."""
    if not is_locked(topology.run_dir):
        raise NotRunning(f"topology {topology.name!r} is not running (run directory {topology.run_dir})")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(topology.control_endpoint("control"))
        request_id = uuid.uuid4().hex[:12]
        sock.send_multipart(control.frames(request_id, verb, body))
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        began = time.monotonic()
        deadline, notice = began + timeout, began + NOTICE_EVERY
        while (now := time.monotonic()) < deadline:
            until = min(deadline, notice) if waiting is not None else deadline
            if poller.poll(max(0.0, until - now) * 1000):
                got_id, got_verb, reply = control.parse(sock.recv_multipart())
                if got_id == request_id:
                    if got_verb != control.OK:
                        raise Refused(reply)
                    return reply
            elif waiting is not None and time.monotonic() >= notice:
                waiting(time.monotonic() - began)
                notice += NOTICE_EVERY
        asked = f"mroute {command}: the supervisor of {topology.name!r}" if command else \
            f"the supervisor of {topology.name!r}"
        raise NoAnswer(f"{asked}{condition(topology)} did not answer " + (f"{verb!r} " if not command else "")
                       + f"within {timeout:.0f} s")
    finally:
        sock.close(0)
        ctx.term()


NOTICE_EVERY = 2.0   # seconds between two words about a supervisor that has not answered yet


def condition(topology: Topology) -> str:
    """` (pid N, stopped)`: the supervisor's pid, and what /proc says of a process that is
    not running or sleeping ("" when there is nothing to say)."""
    pid = read_state(topology.run_dir).get("supervisor", {}).get("pid")
    if not isinstance(pid, int):
        return ""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return f" (pid {pid})"
    said = {"T": f"stopped: kill -CONT {pid} resumes it", "t": "stopped by a debugger",
            "D": "waiting for a disk", "Z": "exited"}.get(state)
    return f" (pid {pid}, {said})" if said else f" (pid {pid})"
