"""What leaves Comm: a numbered stream to every destination and to the MRE, and the answer
to the request being handled. The one place Comm numbers anything it sends.

Every message to a destination carries `Seq` (1, 2, 3, ... for that destination) and
`Stream` (one per Comm process, and a new one when a write is undone: server.py), so a
receiver that misses one sees the gap and resyncs (design.md 6, zeromq-rules 7 and 15). A
body is encoded once, however many destinations it goes to: the numbering is spliced onto
the encoded bytes. The MRE's messages are numbered the same way on the same Stream; a
Snapshot carries the number of the last update it includes (the MRE applies updates in
order from its snapshot on, and asks for a new snapshot when one is missing).

While a request is handled, its `Reply` says which message answers it (type, destination
and the fields that must match, e.g. the TaskState of that TaskId to the sender): such a
message is held back instead of sent, the last one wins, and the dispatcher sends it with
the request's MsgId when the handler is done. So the sender gets the answer instead of the
notification of the same change, never both, and nothing else carries its MsgId.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import orjson

from wire import codec

Send = Callable[[list[bytes]], None]

MAX_DESTINATIONS = 100_000  # numbered destinations kept; one forgotten starts again at 1 (a gap to it)


@dataclass(slots=True, eq=False)  # replies are told apart by identity
class Reply:
    """The answer owed to one request: to `destination`, of type `answer_type`, the message
    whose body has `key` (field -> value) in it."""
    request: str
    destination: str | None
    msg_id: str | None
    answer_type: str
    key: dict[str, Any] = field(default_factory=dict)
    answer: tuple[str, dict[str, Any]] | None = None   # held back until the handler is done

    def matches(self, destination: str, type: str, body: dict[str, Any]) -> bool:
        if type != self.answer_type or destination != self.destination:
            return False
        for name, value in self.key.items():
            if body.get(name) != value:
                return False
        return True


class Streams:
    def __init__(self, send_event: Send, send_mre: Send, stream: str):
        self.send_event = send_event   # onto ChatEvents (frames with their topic)
        self.send_mre = send_mre       # onto the MRE's RoutingEngine
        self.reply: Reply | None = None
        self.restart(stream)

    def restart(self, stream: str) -> None:
        """Number afresh on a new stream: a receiver that sees a new Stream knows that what
        it was told before may be incomplete."""
        self.stream = stream
        self.seqs: dict[str, int] = {}
        self.mre_seq = 0
        self._tail = b',"Stream":' + orjson.dumps(stream) + b"}"

    def to_mre(self, type: str, body: dict[str, Any]) -> None:
        """Number a message to the MRE (a Snapshot takes the number of the last update it
        includes) and send it."""
        if type != "Snapshot":
            self.mre_seq += 1
        self.send_mre(codec.encode_raw(type, self.numbered(orjson.dumps(body), self.mre_seq)))

    def publish(self, destination: str, type: str, body: dict[str, Any]) -> None:
        reply = self.reply
        if reply is not None and reply.matches(destination, type, body):
            reply.answer = (type, body)
            return
        self.send(destination, type, orjson.dumps(body))

    def fan_out(self, destinations: Iterable[str], type: str, body: dict[str, Any]) -> None:
        """One body to several destinations, encoded once."""
        raw = None
        reply = self.reply
        for destination in destinations:
            if reply is not None and reply.matches(destination, type, body):
                reply.answer = (type, body)
                continue
            if raw is None:
                raw = orjson.dumps(body)
            self.send(destination, type, raw)

    def send(self, destination: str, type: str, raw: bytes, msg_id: str | None = None) -> None:
        """Number an encoded body for `destination` (and add the MsgId it answers) and send it."""
        seqs = self.seqs
        seq = seqs.get(destination, 0) + 1
        if seq == 1 and len(seqs) >= MAX_DESTINATIONS:
            del seqs[next(iter(seqs))]
        seqs[destination] = seq
        self.send_event(codec.encode_raw_pub(destination, type, self.numbered(raw, seq, msg_id)))

    def numbered(self, raw: bytes, seq: int, msg_id: str | None = None) -> bytes:
        """`{...}` -> `{...,"Seq":N,"Stream":"..."}`: one formatting of bytes, no second encoding."""
        head = raw[:-1] + b"," if len(raw) > 2 else b"{"
        if msg_id is not None:
            head += b'"MsgId":%b,' % orjson.dumps(msg_id)
        return b'%b"Seq":%d%b' % (head, seq, self._tail)

    def answer(self, reply: Reply, type: str, body: dict[str, Any]) -> None:
        """Send the answer to `reply`'s sender, with its MsgId when it gave one."""
        if reply.destination is not None:
            self.send(reply.destination, type, orjson.dumps(body), reply.msg_id)
