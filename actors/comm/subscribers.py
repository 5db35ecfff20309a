"""Who hears what Comm publishes on ChatEvents, and what Comm holds for them: the only owner
of the subscriptions granted and refused, the drops by destination, and when memory goes
back to the system.

Subscriptions are Comm's to grant (the socket is an XPUB_MANUAL): one whole destination
each, under CURVE one the subscriber's key may use (identity.py). What each destination is
owed is counted in bytes by its Outflow (actors/outflow.py).
"""

from __future__ import annotations

import logging
from typing import Any

import zmq

from actors.frames import recv_frames_with_peer
from actors.lograte import LogBudget
from actors.memory import map_large_blocks, rss_bytes, trim_memory
from actors.outflow import CHUNK_BYTES, Outflow
from wire import codec
from wire.codec import BATCHES_END
from wire.catalogue import HEARTBEAT_TOPIC

from .identity import may_hear

log = logging.getLogger("mroute.comm")

HEARTBEAT_FRAME = codec.topic(HEARTBEAT_TOPIC)
MAX_TOPICS = 20_000         # destinations subscribed to at once; a subscription past it is refused
DROPS_BY_DESTINATION = 100  # destinations whose drops are counted apart (the first seen)
TRIM_EVERY = 5.0            # s between two looks at whether memory should go back (give_back)
TRIM_AFTER_BYTES = 8 * 1024 ** 2
TRIM_AFTER_DESKS = 100


class Subscribers:
    def __init__(self, name: str, events: zmq.Socket, outflow: Outflow, counters: dict[str, int],
                 lines: LogBudget):
        map_large_blocks(CHUNK_BYTES)   # what waits for a subscriber goes back to the system with it
        self.name = name
        self.events = events
        self.outflow = outflow
        self.counters = counters         # the actor's: subscriptions_refused, heartbeats_skipped, trims
        self.lines = lines               # the actor's budget of refusal lines
        self.refused: dict[bytes, int] = {}   # refused subscriptions still open, by topic
        self.dropped_to: dict[str, int] = {}
        self.gone = 0                    # subscriptions ended since memory was last given back
        self.trimmed_rss = rss_bytes()

    def on_subscription(self) -> None:
        """Grant or refuse each subscription waiting (one refused is counted and logged, and
        its subscriber hears nothing of it)."""
        events = self.events
        while True:
            frames, peer = recv_frames_with_peer(events)
            if frames is None:
                return
            flag, topic = frames[0][:1], frames[0][1:]
            if flag == b"\x00":
                self.unsubscribed(topic, peer)
            elif flag == b"\x01" and may_hear(peer, topic) and (
                    topic in self.outflow.held or len(self.outflow.held) < MAX_TOPICS):
                events.setsockopt(zmq.SUBSCRIBE, topic)
                self.outflow.subscribed(topic)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s: %s subscribed", self.name, topic.rstrip(b"\x00").decode(errors="replace"))
            elif flag == b"\x01":
                self.refuse(topic, peer)

    def refuse(self, topic: bytes, peer: str | None) -> None:
        if len(self.refused) < MAX_TOPICS or topic in self.refused:
            self.refused[topic] = self.refused.get(topic, 0) + 1
        self.counters["subscriptions_refused"] = self.counters.get("subscriptions_refused", 0) + 1
        write, unlogged = self.lines.take()
        if write:
            log.warning("%s: refused a subscription to %r%s: a subscriber hears one whole destination%s%s",
                        self.name, topic[:60], f" by the key {peer!r}" if peer else "",
                        " its key may use" if peer else "",
                        f" ({unlogged} refusals before this one not logged)" if unlogged else "")

    def unsubscribed(self, topic: bytes, peer: str | None) -> None:
        """A subscriber unsubscribed, or is gone (then libzmq forgot its subscriptions
        already, and the message carries no key). libzmq reports the subscriptions we
        refused as well when their subscriber goes: those are taken off first, so that a
        destination still heard is never taken for one nobody hears (what it holds would go
        uncounted); the other way round only counts a little too much for a while."""
        self.events.setsockopt(zmq.UNSUBSCRIBE, topic)
        refused = self.refused.get(topic, 0)
        if refused and (peer is None or not may_hear(peer, topic)):
            if refused == 1:
                del self.refused[topic]
            else:
                self.refused[topic] = refused - 1
            return
        self.outflow.unsubscribed(topic)
        self.gone += 1

    def forms(self, topic: bytes) -> tuple[bool, bytes | None]:
        """How what a turn has for the destination of `topic` (its plain topic) goes out:
        one message per ZeroMQ message if anyone subscribed so, and as one batch on its
        batch topic if anyone asked for batches (wire/codec.py); neither when nobody hears."""
        held = self.outflow.held
        batches = topic[:-1] + BATCHES_END
        return topic in held, batches if batches in held else None

    def count_drop(self, frames: list[bytes], count: int) -> int:
        """Messages to a subscriber it could not take, or past what Comm holds for it, by
        destination; returns how many are drops. A heartbeat is not one: unnumbered, the
        next one says the same."""
        if frames[0] == HEARTBEAT_FRAME:
            self.counters["heartbeats_skipped"] = self.counters.get("heartbeats_skipped", 0) + count
            return 0
        dest = frames[0][:-1].decode(errors="replace")
        if dest in self.dropped_to or len(self.dropped_to) < DROPS_BY_DESTINATION:
            self.dropped_to[dest] = self.dropped_to.get(dest, 0) + count
        return count

    def give_back(self) -> None:
        """Memory the allocator kept after a burst goes back to the system: glibc keeps what
        a process freed (on main 611 MB stayed after a stalled desk drained, 556 MB after
        three storms of desks). Asked when Comm grew since it last gave back, or let go of a
        backlog or of many desks since (measured: a backlog of 15 MB held for a stalled desk
        left Comm at 93 MB, 48 MB once trimmed)."""
        if (rss_bytes() > self.trimmed_rss + TRIM_AFTER_BYTES or self.outflow.freed >= TRIM_AFTER_BYTES
                or self.gone >= TRIM_AFTER_DESKS):
            self.outflow.freed = self.gone = 0
            self.counters["trims"] = self.counters.get("trims", 0) + 1
            trim_memory()
            self.trimmed_rss = rss_bytes()

    def stats(self) -> dict[str, Any]:
        return {"dropped_to": self.dropped_to, "held_for_receivers": self.outflow.stats(), "rss_bytes": rss_bytes()}
