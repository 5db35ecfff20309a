"""Who may say what, from the connection (protocol.md 1.2, who may ask what).

Under `security: {curve}` every message Comm takes says who sent it: the name of the
client's key (its User-Id, given by the ZAP handler, actors/zap.py). A key named `NAME` may
use the destinations `NAME` and `NAME.*` and no other, as the ReplyTo and Destination of
what it sends and as the topics it subscribes to; our actors' key (`actors`: the CLI, the
web console) may use any. Only the MRE's key (`mre`) may send on CommunicationServer.

Without CURVE a message's sender is unknown (peer None): the destinations it states are
taken as its own, and the ownership rules (core.py) hold it to them. Either way a
subscription must name one whole destination (the topic frame: the name and a NUL): a
prefix such as the empty one would hear every desk.
"""

from __future__ import annotations

from typing import Any

from wire import states as S
from wire.catalogue import HEARTBEAT_TOPIC
from wire.codec import BATCHES_END, TOPIC_END, UNROUTED_ERRORS, WireError, is_destination
from wire.curve import ACTORS, MRE

# topics every subscriber may hear: Comm's heartbeat, and the errors nobody could be told of
PUBLIC_TOPICS = frozenset({HEARTBEAT_TOPIC, UNROUTED_ERRORS})
STATED = ("ReplyTo", "Destination")  # the fields in which a request names a destination


def may_use(peer: str | None, destination: str) -> bool:
    """Whether the holder of the key `peer` may use `destination` (None: no CURVE)."""
    if peer is None or peer == ACTORS:
        return True
    return destination == peer or (destination.startswith(peer) and destination[len(peer):len(peer) + 1] == ".")


def may_hear(peer: str | None, topic: bytes) -> bool:
    """Whether a subscription to `topic` is let through: one whole destination (the name
    and a NUL, or a 0x01 for batches; neither inside the name), the key's own or a public
    one."""
    end = topic[-1:]
    if (end != TOPIC_END and end != BATCHES_END) or len(topic) < 2 or TOPIC_END in topic[:-1] \
            or BATCHES_END in topic[:-1]:
        return False
    try:
        name = topic[:-1].decode()
    except UnicodeDecodeError:
        return False
    return name in PUBLIC_TOPICS or may_use(peer, name)


def stated_elsewhere(peer: str | None, body: Any) -> WireError | None:
    """A refusal for a request that names a destination its key may not use, else None.
    The Error goes where the sender can hear it: its ReplyTo if that is its own, else the
    key's own destination."""
    if peer is None or peer == ACTORS or body.__class__ is not dict:
        return None
    for field in STATED:
        value = body.get(field)
        if value.__class__ is str and not may_use(peer, value):
            reply_to = body.get("ReplyTo")
            return WireError(S.AUTHORIZATION_FAILURE, f"the key {peer!r} may use the destinations {peer} and "
                                                      f"{peer}.* only, not {value!r}", field=field,
                             reply_to=reply_to if reply_to.__class__ is str and may_use(peer, reply_to) else peer)
    return None


def is_mre(peer: str | None) -> bool:
    """Whether a message on CommunicationServer may be the MRE's: under CURVE its key says
    so; without, the stream its decisions are numbered on does (decisions.py)."""
    return peer is None or peer == MRE


def sender_of(body: dict[str, Any]) -> str | None:
    """Who sent a request, as it says (under CURVE the server checked it against the
    client's key first): its ReplyTo; for Connect, Heartbeat and Resync, which name their
    desk, its Destination when it gives no ReplyTo. Never the desk of an agent it names: a
    request with no ReplyTo does not act as that agent's desk."""
    sender = body.get("ReplyTo")
    if sender is None:
        sender = body.get("Destination")
    return sender if sender.__class__ is str and is_destination(sender) else None


def own_destination(body: dict[str, Any]) -> str:
    """The Destination a Heartbeat or Resync is about, which must be its sender's own: a
    desk beats for itself and resyncs what it holds, not what another desk holds."""
    destination = body["Destination"]
    if body.get("ReplyTo", destination) != destination:
        raise WireError(S.AUTHORIZATION_FAILURE, f"{body['ReplyTo']} may not speak for {destination}: a desk "
                                                 f"beats and resyncs for itself only", field="Destination")
    return destination
