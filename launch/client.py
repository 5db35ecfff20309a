"""The CLI's side of the supervisor's control socket: one request, one deadline."""

from __future__ import annotations

import uuid
from typing import Any

import zmq

from wire import control

from .supervisor import is_locked
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


def ask(topology: Topology, verb: str, body: dict[str, Any] | None = None, timeout: float = 3.0) -> dict[str, Any]:
    """Send `verb` to the topology's supervisor and return its answer. Raises NotRunning at
    once when no supervisor holds the run directory, NoAnswer after `timeout` seconds."""
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
        remaining_ms = timeout * 1000
        while poller.poll(remaining_ms):
            got_id, got_verb, reply = control.parse(sock.recv_multipart())
            if got_id == request_id:
                if got_verb != control.OK:
                    raise Refused(reply)
                return reply
        raise NoAnswer(f"the supervisor of {topology.name!r} did not answer {verb!r} within {timeout:.0f} s")
    finally:
        sock.close(0)
        ctx.term()
