"""The control channel between the supervisor, its actors and the CLI.

Every control message is three frames `[request_id, verb, body]` (body: JSON object).
Actors connect a DEALER (identity = instance name) to the supervisor's ROUTER and send
`READY` or `FAILED` unprompted (request id empty); the supervisor asks `ping`, `stats`
and `stop`, and the actor answers with the same request id and verb `ok` or `error`.
The CLI speaks the same frames to the supervisor's control ROUTER.
"""

from __future__ import annotations

import hashlib

from typing import Any

import orjson

READY = "READY"
FAILED = "FAILED"
OK = "ok"
ERROR = "error"


def frames(request_id: str, verb: str, body: dict[str, Any] | None = None) -> list[bytes]:
    return [request_id.encode(), verb.encode(), orjson.dumps(body or {})]


def parse(raw: list[bytes]) -> tuple[str, str, dict[str, Any]]:
    """(request_id, verb, body); raises ValueError on a malformed control message."""
    if len(raw) != 3:
        raise ValueError(f"control message needs 3 frames, got {len(raw)}")
    body = orjson.loads(raw[2])
    if not isinstance(body, dict):
        raise ValueError("control body must be a JSON object")
    return raw[0].decode(), raw[1].decode(), body


def tap_file(instance: str) -> str:
    """The file name of an actor's tap socket: short whatever the actor's name, so that it
    fits an ipc path wherever the socket directory's own names fit."""
    return f"tap-{hashlib.sha1(instance.encode()).hexdigest()[:8]}.ipc"
