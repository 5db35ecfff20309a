"""The contract as an AsyncAPI 3 document, built from the catalogue (wire/catalogue.py) and
the Generic Connector's commands (wire/gc.py): every queue and topic a channel, every
message with its JSON Schema and the codes it may carry, who sends and who receives, and
the envelope. `python -m wire.generate` writes it to docs/asyncapi.yaml.

Operations are written from the side of the application a client author writes: a Chat
Server sends on General and receives on its ChatEvents topic, each request with its reply;
a voice client sends on GC and receives on GCEvents. The queues between Comm and the MRE are
written from the MRE's side. Each message names its sender and receiver (`x-sender`,
`x-receiver`), whichever side the operation is written from."""

from __future__ import annotations

from typing import Any

import yaml

from . import gc, states as S
from .catalogue import (ANY_REQUEST_ERRORS, BOOL, CHAT_EVENTS, CHAT_SERVER, COMM, COMMUNICATION_SERVER, ENVELOPE,
                        GC, GC_EVENTS, GENERAL, HEARTBEAT_TOPIC, INT, LIST, MRE, OBJECT, PARAMS, PUBLISHED_ENVELOPE,
                        ROUTING_ENGINE, SPECS, Spec)
from .codec import MAX_BODY, UNROUTED_ERRORS

VERSION = "1.0.0"
VOICE_CLIENT = "Voice client"
GC_ROLE = "Generic Connector"

DESCRIPTION = """\
mroute's documented queues (protocol.md). Every queue is a ZeroMQ PULL socket bound by its one consumer, with PUSH
sockets connected by its producers; a message is two frames `[type, body]`: the JMS type in ASCII, then the JSON body.
What Comm publishes to a Chat Server goes out on ChatEvents (a PUB socket) as three frames `[topic, type, body]`,
the topic being the receiver's destination followed by one NUL byte (subscribe to exactly that, so that `chat.1`
does not also hear `chat.10`).

Batches, for a receiver that asks: one that subscribes to its destination followed by the byte 0x01 instead of NUL
gets what one turn of Comm has for it as one ZeroMQ message, `[destination 0x01, "Batch", type1, body1, type2, body2,
...]`, to be read as if each pair had come alone, in order. One that never asked gets one message per ZeroMQ
message, always.

A client: (1) subscribes to its destination and to `mroute.comm` (Comm's beat); (2) sends a harmless GetAgentState
(about the agent it is about to connect: any agent will do) with its ReplyTo and a new MsgId each time, every 50 ms,
until a message carrying one of those MsgIds arrives on its topic (an AgentState, or an Error NOT_FOUND for an agent
nobody has: either proves it): from then on nothing published to it is missed; (3) sends every request with a MsgId
(unique per sender) and its ReplyTo, and sends it again, with the same MsgId, until it is answered: Comm applies it
once and answers every copy; (4) follows `Seq` on its topic from the first message it hears (the numbering belongs
to the destination, not to one subscriber: a new subscriber may start at any number, and probes' answers take
numbers too): a gap, or a new `Stream`, means news was lost: it sends Resync and takes the Snapshot as what it
holds; (5) beats (Heartbeat) every second, if it wants Comm to log its agents out when it dies. An answer may come
after news it caused (the AgentState of an agent who accepted a task before the TaskState answering the acceptance):
match answers by MsgId, never by order. In Python, `wire/client.py` does all of it.

Sockets: every channel is a socket in the topology's run directory, `ipc://<run dir>/<queue>.ipc` (General.ipc,
ChatEvents.ipc, ...; tcp:// when the topology names hosts). The three ChatEvents channels (a destination, Comm's
beat, unrouted errors) are topics of one PUB socket, ChatEvents; GCEvents is the Generic Connector's PUB socket, whose
topics are its clients' destinations (`x-socket` on each channel).

Under CURVE (security: curve) a client's key decides what it may do: a key made for client NAME may use the
destinations NAME and NAME.* as ReplyTo, Destination and subscription, and nothing else."""


def schema_of(kind: str) -> dict[str, Any]:
    return {INT: {"type": "integer", "minimum": 0}, BOOL: {"type": "boolean"}, LIST: {"type": "array"},
            OBJECT: {"type": "object"},
            PARAMS: {"oneOf": [{"type": "object"},
                               {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                                           "prefixItems": [{"type": "string"}, {}]}}]},
            }.get(kind, {"type": "string"})


ENVELOPE_SCHEMAS = {
    "MsgId": {"type": "string", "description": "unique per sender; the answer carries it back; a retry repeats it"},
    "ReplyTo": {"type": "string", "minLength": 1, "maxLength": 256,
                "description": "the sender's destination, where the answer goes; required on every request"},
    "Seq": {"type": "integer", "minimum": 1,
            "description": "1, 2, 3, ... for each destination; a gap means messages were lost: Resync"},
    "Stream": {"type": "string", "description": "names the numbering; a new Stream (another Comm process) means "
                                                "messages may have been lost: Resync"},
}


def payload(spec: Spec) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name in spec.required + spec.optional:
        schema = dict(schema_of(spec.kind(name)))
        if name in spec.values:
            schema["enum"] = list(spec.values[name])
        if name in spec.required and schema.get("type") == "string":
            schema["minLength"] = 1
        properties[name] = schema
    envelope = (() if spec.type == "Heartbeat" else PUBLISHED_ENVELOPE) if spec.queue == CHAT_EVENTS \
        else ENVELOPE if spec.queue == GENERAL else ()   # (Comm's beat is not numbered: Stream only)
    for name in envelope:
        properties.setdefault(name, ENVELOPE_SCHEMAS[name])
    required = list(spec.required) + (["ReplyTo"] if spec.queue == GENERAL else [])
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": True}


def message_key(spec: Spec) -> str:
    return f"{spec.queue}.{spec.type}"


def message(spec: Spec) -> dict[str, Any]:
    text = f"#{spec.number} on {spec.queue}, from the {spec.sender} to the {spec.receiver}."
    if spec.doc:
        text += f" {spec.doc}"
    body: dict[str, Any] = {"name": spec.type, "title": f"{spec.type} ({spec.queue})", "summary": text,
                            "contentType": "application/json", "payload": payload(spec),
                            "x-number": spec.number, "x-category": spec.category,
                            "x-sender": spec.sender, "x-receiver": spec.receiver}
    if spec.answer:
        body["x-answer"] = spec.answer
        body["x-error-codes"] = sorted({*ANY_REQUEST_ERRORS, *spec.errors})
    if spec.type == "Error":
        body["x-error-codes"] = list(S.ERROR_CODES)
    return body


def gc_messages() -> dict[str, Any]:
    commands = sorted(gc.COMMANDS.values(), key=lambda c: c.name.lower())
    command = {
        "name": "Command", "title": "A Generic Connector command (GC)", "contentType": "text/plain",
        "summary": "Two frames: `name#id` (the command, then the agent's login id, or the client's destination for "
                   "Hello and Beat), then its parameters joined by commas (empty when none). Names match without "
                   "regard to case. Refused commands are answered with an Error event.",
        "payload": {"type": "string", "description": "the parameters, comma-separated, in the order given"},
        "x-sender": VOICE_CLIENT, "x-receiver": GC_ROLE,
        "x-commands": {c.name: {"category": c.category, "parameters": list(c.params),
                                "optional": list(c.optional), "supervisor": c.supervisor} for c in commands},
    }
    event = {
        "name": "Event", "title": "A Generic Connector event (GCEvents)", "contentType": "application/json",
        "summary": "Published as `[topic, type, body]` on the client's destination; the body repeats `type`.",
        "payload": {"type": "object", "required": ["type"], "additionalProperties": True,
                    "properties": {"type": {"type": "string", "enum": list(gc.EVENT_TYPES)},
                                   "code": {"type": "string", "enum": sorted({
                                       gc.AUTHORIZATION_FAILURE, gc.NOT_FOUND, gc.GENERAL_ERROR, gc.MISSING_EXTENSION,
                                       gc.WRONG_EXTENSION, gc.LICENSES_EXCEEDED, gc.MISSING_PASSWORD,
                                       gc.USER_NOT_FOUND, gc.INVALID_STATE, gc.BAD_COMMAND})}}},
        "x-sender": GC_ROLE, "x-receiver": VOICE_CLIENT,
    }
    return {"GC.Command": command, "GCEvents.Event": event}


def ref(kind: str, key: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{key}"}


def channel_ref(channel: str, key: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel}/messages/{key}"}


def document() -> dict[str, Any]:
    by_queue: dict[str, list[Spec]] = {}
    for spec in SPECS:
        by_queue.setdefault(spec.queue, []).append(spec)
    messages = {message_key(spec): message(spec) for spec in SPECS}
    messages.update(gc_messages())
    destination = {"description": "the receiver's destination (a Chat Server's, given as Destination and ReplyTo)"}

    def listed(queue: str) -> dict[str, Any]:
        return {spec.type: ref("messages", message_key(spec)) for spec in by_queue[queue]}

    published = listed(CHAT_EVENTS)
    beat = {"Heartbeat": published.pop("Heartbeat")}
    channels: dict[str, Any] = {
        GENERAL: {"address": GENERAL, "title": "General (queue)", "messages": listed(GENERAL),
                  "description": f"Chat Servers' requests to Comm (PUSH -> Comm's PULL). Bodies over {MAX_BODY} "
                                 "bytes are refused."},
        ROUTING_ENGINE: {"address": ROUTING_ENGINE, "title": "RoutingEngine (queue)", "messages": listed(ROUTING_ENGINE),
                         "description": "What Comm tells the MRE: agents, tasks, snapshots, confirmations."},
        COMMUNICATION_SERVER: {"address": COMMUNICATION_SERVER, "title": "CommunicationServer (queue)",
                               "messages": listed(COMMUNICATION_SERVER),
                               "description": "The MRE's decisions and its Resync; only the MRE's key may send."},
        CHAT_EVENTS: {"address": "{destination}\u0000", "title": "ChatEvents (topic per destination)",
                      "messages": published, "parameters": {"destination": destination},
                      "description": "What Comm publishes to one destination, numbered (Seq, Stream). A receiver "
                                     "subscribed to `{destination}` followed by 0x01 instead gets batches."},
        "ChatEventsBeat": {"address": HEARTBEAT_TOPIC + "\u0000", "title": "ChatEvents: Comm's beat",
                           "messages": beat, "description": "Every second, to every subscriber; not numbered."},
        "ChatEventsUnrouted": {"address": UNROUTED_ERRORS + "\u0000", "title": "ChatEvents: errors with no sender",
                               "messages": {"Error": ref("messages", f"{CHAT_EVENTS}.Error")},
                               "description": "Errors for messages whose sender cannot be told (not JSON, no "
                                              "ReplyTo): a developer's probe or tap hears them."},
        GC: {"address": GC, "title": "GC (queue)", "messages": {"Command": ref("messages", "GC.Command")},
             "description": "Voice clients' commands to the Generic Connector (protocol.md section 2)."},
        GC_EVENTS: {"address": "{destination}\u0000", "title": "GCEvents (topic per destination)",
                    "parameters": {"destination": destination},
                    "messages": {"Event": ref("messages", "GCEvents.Event")},
                    "description": "The Generic Connector's events to one voice client."},
    }
    sockets = {GENERAL: f"{GENERAL}: PULL bound by the {COMM}, PUSH from the {CHAT_SERVER}s",
               ROUTING_ENGINE: f"{ROUTING_ENGINE}: PULL bound by the {MRE}, PUSH from the {COMM}",
               COMMUNICATION_SERVER: f"{COMMUNICATION_SERVER}: PULL bound by the {COMM}, PUSH from the {MRE}",
               GC: f"{GC}: PULL bound by the {GC_ROLE}, PUSH from {VOICE_CLIENT}s",
               GC_EVENTS: f"{GC_EVENTS}: PUB bound by the {GC_ROLE}, SUB from {VOICE_CLIENT}s"}
    for key, channel in channels.items():
        channel["x-socket"] = sockets.get(key, f"{CHAT_EVENTS}: PUB bound by the {COMM}, SUB from the {CHAT_SERVER}s")
    operations: dict[str, Any] = {}
    for spec in by_queue[GENERAL]:
        operation: dict[str, Any] = {"action": "send", "channel": {"$ref": f"#/channels/{GENERAL}"},
                                     "summary": f"A {CHAT_SERVER} sends {spec.type}",
                                     "messages": [channel_ref(GENERAL, spec.type)]}
        if spec.answer:
            operation["reply"] = {"channel": {"$ref": f"#/channels/{CHAT_EVENTS}"},
                                  "messages": [channel_ref(CHAT_EVENTS, spec.answer), channel_ref(CHAT_EVENTS, "Error")]}
        operations[f"send{spec.type}"] = operation
    operations["receiveChatEvents"] = {
        "action": "receive", "channel": {"$ref": f"#/channels/{CHAT_EVENTS}"},
        "summary": f"A {CHAT_SERVER} hears what {COMM} publishes to its destination",
        "messages": [channel_ref(CHAT_EVENTS, t) for t in published]}
    operations["receiveCommBeat"] = {"action": "receive", "channel": {"$ref": "#/channels/ChatEventsBeat"},
                                     "summary": f"Every subscriber hears {COMM}'s beat",
                                     "messages": [channel_ref("ChatEventsBeat", "Heartbeat")]}
    operations["mreReceivesRoutingEngine"] = {
        "action": "receive", "channel": {"$ref": f"#/channels/{ROUTING_ENGINE}"}, "summary": f"The {MRE} hears {COMM}",
        "messages": [channel_ref(ROUTING_ENGINE, s.type) for s in by_queue[ROUTING_ENGINE]]}
    operations["mreSendsCommunicationServer"] = {
        "action": "send", "channel": {"$ref": f"#/channels/{COMMUNICATION_SERVER}"},
        "summary": f"The {MRE} tells {COMM} its decisions",
        "messages": [channel_ref(COMMUNICATION_SERVER, s.type) for s in by_queue[COMMUNICATION_SERVER]]}
    operations["sendGcCommand"] = {"action": "send", "channel": {"$ref": f"#/channels/{GC}"},
                                   "summary": f"A {VOICE_CLIENT} sends a command",
                                   "messages": [channel_ref(GC, "Command")],
                                   "reply": {"channel": {"$ref": f"#/channels/{GC_EVENTS}"},
                                             "messages": [channel_ref(GC_EVENTS, "Event")]}}
    operations["receiveGcEvents"] = {"action": "receive", "channel": {"$ref": f"#/channels/{GC_EVENTS}"},
                                     "summary": f"A {VOICE_CLIENT} hears the {GC_ROLE}",
                                     "messages": [channel_ref(GC_EVENTS, "Event")]}
    return {
        "asyncapi": "3.1.0",
        "info": {"title": "mroute media routing", "version": VERSION, "description": DESCRIPTION,
                 "license": {"name": "see the repository"}},
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "localhost", "protocol": "zmq", "pathname": "/{runDirectory}",
                              "description": "ipc:// sockets, one per channel's x-socket: ipc://<run directory>/"
                                             "<socket>.ipc (tcp:// host:port when the topology names hosts)",
                              "variables": {"runDirectory": {"description": "the topology's run directory "
                                                                            "(`mroute status` shows it)"}}}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def document_yaml() -> str:
    head = "# GENERATED by `python -m wire.generate` from wire/catalogue.py and wire/gc.py: do not edit by hand.\n"
    return head + yaml.safe_dump(document(), sort_keys=False, allow_unicode=False, width=110)
