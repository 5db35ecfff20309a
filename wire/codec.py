"""Frames on the wire, and validation at the edge (zeromq-rules 12, 13, 16).

Queue frames are `[type, body]`; published frames are `[topic, type, body]`. `type` is the
JMS type in ASCII, `body` a JSON object encoded with orjson. A topic is the receiver's
destination followed by one NUL byte, so that a subscription to `chat.1` does not also
match `chat.10` (ZeroMQ filters by prefix): subscribe with `topic(destination)`.

A batch is several messages for one receiver in one ZeroMQ message: `[Batch, type1,
body1, type2, body2, ...]` on a queue, `[topic, Batch, type1, body1, ...]` published.
Comm and the MRE send one when a wake-up has more than one message for the same receiver
(ChatEvents, RoutingEngine, CommunicationServer); a receiver handles each inner message,
in order, as if it had come alone (`unbatch`).
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from . import states
from .catalogue import BOOL, BY_QUEUE, ENVELOPE, INT, LIST, MRD_SPELLINGS, OBJECT, PARAMS, STR, Spec

TOPIC_END = b"\x00"
# A receiver that asks for batches subscribes to its destination followed by this byte
# instead: what Comm has for it in one turn then comes as one ZeroMQ message (`batch`). One
# that never asked gets one message per ZeroMQ message, always (protocol.md's frames).
BATCHES_END = b"\x01"
# Errors whose sender cannot be told from the message (not JSON, no ReplyTo, unknown agent)
# are published on this topic, so a developer's probe or a tap still sees them.
UNROUTED_ERRORS = "mroute.errors"
MAX_BODY = 1 << 20  # bytes; larger bodies are refused with BAD_MESSAGE

_type_names: dict[bytes, str] = {}


class WireError(Exception):
    """A message that cannot be accepted: becomes an `Error` to its sender."""

    def __init__(self, code: str, reason: str, type: str = "", field: str | None = None,
                 msg_id: str | None = None, reply_to: str | None = None):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.type = type
        self.field = field
        self.msg_id = msg_id
        self.reply_to = reply_to

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Code": self.code, "Reason": self.reason, "Type": self.type,
                                "MsgId": self.msg_id}
        if self.field:
            body["Field"] = self.field
        return body


def topic(destination: str) -> bytes:
    return destination.encode() + TOPIC_END


def batch_topic(destination: str) -> bytes:
    """The subscription (and topic) of a receiver that asks for batches."""
    return destination.encode() + BATCHES_END


@functools.lru_cache(maxsize=4096)
def _cached_topic(destination: str) -> bytes:
    return topic(destination)


@functools.lru_cache(maxsize=256)
def _type_frame(type: str) -> bytes:
    return type.encode("ascii")


def encode(type: str, body: dict[str, Any]) -> list[bytes]:
    return [_type_frame(type), orjson.dumps(body)]


def encode_raw(type: str, raw: bytes) -> list[bytes]:
    """A message around a body encoded already."""
    return [_type_frame(type), raw]


def encode_pub(destination: str, type: str, body: dict[str, Any]) -> list[bytes]:
    return [_cached_topic(destination), _type_frame(type), orjson.dumps(body)]


def encode_raw_pub(destination: str, type: str, raw: bytes) -> list[bytes]:
    """A published frame around a body encoded already (encoded once for many receivers)."""
    return [_cached_topic(destination), _type_frame(type), raw]


BATCH = b"Batch"
BATCH_MAX = 256  # messages in one batch


def batch(messages: list[list[bytes]], topic: bool, as_topic: bytes | None = None) -> list[bytes]:
    """Several messages to one receiver (the same topic, when `topic`: theirs, or `as_topic`)
    as one."""
    if topic:
        frames = [as_topic or messages[0][0], BATCH]
        for message in messages:
            frames += message[1:]
    else:
        frames = [BATCH]
        for message in messages:
            frames += message
    return frames


def unbatch(frames: list[bytes]) -> list[list[bytes]]:
    """The messages `frames` carries: itself, or each message of a batch (either layout)."""
    if frames[0] == BATCH:
        return [frames[i:i + 2] for i in range(1, len(frames) - 1, 2)]
    if len(frames) > 3 and frames[1] == BATCH:
        head = frames[0]
        return [[head, frames[i], frames[i + 1]] for i in range(2, len(frames) - 1, 2)]
    return [frames]


def decode_event(frames: list[bytes]) -> tuple[str, str, dict[str, Any]]:
    """A published frame as (destination, type, body), for subscribers."""
    dest, type, body = frames
    return dest.rstrip(TOPIC_END).decode(), type.decode("ascii"), orjson.loads(body)


def decode_stream(frames: list[bytes]) -> tuple[str, dict[str, Any]]:
    """A published frame `[topic, type, body]` as (type, body), for a subscriber's receive
    path; raises WireError (BAD_MESSAGE) for anything else."""
    if len(frames) != 3:
        raise WireError(states.BAD_MESSAGE, f"expected 3 frames [topic, type, body], got {len(frames)}")
    type = _type_name(frames[1])
    try:
        body = orjson.loads(frames[2])
    except orjson.JSONDecodeError as exc:
        raise WireError(states.BAD_MESSAGE, f"body is not JSON: {exc}", type=type)
    if body.__class__ is not dict:
        raise WireError(states.BAD_MESSAGE, "body is not a JSON object", type=type)
    return type, body


def _type_name(raw: bytes) -> str:
    name = _type_names.get(raw)
    if name is None:
        try:
            name = raw.decode("ascii")
        except UnicodeDecodeError:
            raise WireError(states.BAD_MESSAGE, "message type is not ASCII", type=repr(raw)[:60])
        if not name.isidentifier():
            raise WireError(states.BAD_MESSAGE, f"message type {name[:60]!r} is not a name", type=name[:60])
        if len(_type_names) < 1024:
            _type_names[raw] = name
    return name


def decode(frames: list[bytes], queue: str) -> tuple[str, dict[str, Any]]:
    """Decode and validate one `[type, body]` frame received on `queue`.

    Returns (type, body) with the MRD key spelt as the catalogue spells it for this
    message; raises WireError with the code, field and reason otherwise."""
    if len(frames) != 2:
        raise WireError(states.BAD_MESSAGE, f"expected 2 frames [type, body], got {len(frames)}")
    type = _type_name(frames[0])
    raw = frames[1]
    if len(raw) > MAX_BODY:
        raise WireError(states.BAD_MESSAGE, f"body of {len(raw)} bytes is over the {MAX_BODY} byte limit",
                        type=type)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError(states.BAD_MESSAGE, f"body is not JSON: {exc}", type=type)
    if not isinstance(body, dict):
        raise WireError(states.BAD_MESSAGE, "body is not a JSON object", type=type)
    msg_id = body.get("MsgId")
    reply_to = body.get("ReplyTo")
    salvage = {"type": type, "msg_id": msg_id if isinstance(msg_id, str) else None,
               "reply_to": reply_to if is_destination(reply_to) else None}
    spec = BY_QUEUE.get(queue, {}).get(type)
    if spec is None:
        raise WireError(states.BAD_MESSAGE, f"unknown message type {type!r} on queue {queue}", **salvage)
    _validate(spec, body, salvage)
    return type, body


def check(spec: Spec, body: dict[str, Any]) -> None:
    """`body` has what `spec` requires, each field of its kind (the MRD key spelt as the spec
    spells it); WireError says what is wrong. For what a client receives (wire/session.py)."""
    msg_id = body.get("MsgId")
    _validate(spec, body, {"type": spec.type, "msg_id": msg_id if msg_id.__class__ is str else None,
                           "reply_to": None})


def is_destination(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 256 and "\x00" not in value


def _validate(spec: Spec, body: dict[str, Any], salvage: dict[str, Any]) -> None:
    for name in ENVELOPE:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise WireError(states.BAD_FIELD, f"{name} must be a string", field=name, **salvage)
    if body.get("ReplyTo") is not None and not is_destination(body["ReplyTo"]):
        raise WireError(states.BAD_FIELD, "ReplyTo must be 1-256 characters with no NUL", field="ReplyTo",
                        **salvage)
    mrd_key = spec.mrd_key
    if mrd_key is not None and body.get(mrd_key) is None:
        for name in MRD_SPELLINGS:
            if name != mrd_key and body.get(name) is not None:
                body[mrd_key] = body.pop(name)
    for name, kind, required in spec.checks:
        value = body.get(name)
        if value is None:
            if required:
                raise WireError(states.MISSING_FIELD, f"{spec.type} needs {name}", field=name, **salvage)
        elif kind != STR or value.__class__ is not str or (required and not value):
            _check_kind(spec, name, value, salvage, required)  # the common case, a non-empty string, skips this
    if "Destination" in spec.required and not is_destination(body["Destination"]):
        raise WireError(states.BAD_FIELD, "Destination must be 1-256 characters with no NUL",
                        field="Destination", **salvage)


def _check_kind(spec: Spec, name: str, value: Any, salvage: dict[str, Any], required: bool) -> None:
    kind = spec.kind(name)
    if kind == STR:
        if not isinstance(value, str):
            raise WireError(states.BAD_FIELD, f"{name} must be a string, not {type(value).__name__}",
                            field=name, **salvage)
        if not value and required:
            raise WireError(states.BAD_FIELD, f"{name} must not be empty", field=name, **salvage)
    elif kind == OBJECT:
        if not isinstance(value, dict):
            raise WireError(states.BAD_FIELD, f"{name} must be a JSON object", field=name, **salvage)
    elif kind == INT:
        if value.__class__ is not int or value < 0:
            raise WireError(states.BAD_FIELD, f"{name} must be a whole number >= 0", field=name, **salvage)
    elif kind == LIST:
        if not isinstance(value, list):
            raise WireError(states.BAD_FIELD, f"{name} must be a JSON array", field=name, **salvage)
    elif kind == BOOL:
        if value.__class__ is not bool:
            raise WireError(states.BAD_FIELD, f"{name} must be true or false", field=name, **salvage)
    elif kind == PARAMS:
        if isinstance(value, dict):
            return
        if not isinstance(value, list) or not all(
                isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in value):
            raise WireError(states.BAD_FIELD, f"{name} must be a list of [key, value] pairs (or an object)",
                            field=name, **salvage)


# The task params the MRE reads: all it is sent and keeps of a task's params.
ROUTING_PARAMS = ("queue", "priority")


def routing_params(params: dict[str, Any]) -> dict[str, Any]:
    return {key: params[key] for key in ROUTING_PARAMS if key in params}


def params_dict(params: Any) -> dict[str, Any]:
    """A validated `params` (list of pairs or object) as an object."""
    if params is None:
        return {}
    if isinstance(params, dict):
        return params
    return {key: value for key, value in params}

