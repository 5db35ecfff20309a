"""How an actor's messages leave: the outbox a wake-up fills, flushed once before the loop
polls again, in batches per receiver where the socket batches, through a socket's outflow
where it has one (what waits for a subscriber, counted in bytes: outflow.py), never
blocking; what cannot be sent is counted (zeromq-rules 5, 6, 12)."""

from __future__ import annotations

import logging
from typing import Any, Callable

import zmq

from actors.frames import send_frames
from wire.kernel.loop import Loop
from actors.outflow import BATCH_BYTES, Outflow
from wire import codec
from wire.codec import BATCH_MAX

log = logging.getLogger("mroute")

RETRY_EVERY = 0.01  # s between two tries of what waits for a subscriber's room (outflow.py)
RETRY_SOON = 0.001  # ... while the subscriber reads

Outbox = list[tuple[zmq.Socket, list[bytes]]]


class Sender:
    """The one owner of an actor's way out. A role says, per socket, whether it batches
    (`batching`), how a topic's receivers take a batch (`batch_forms`), who watches its
    drops (`drop_watch`) and what holds for its receivers (`outflows`)."""

    def __init__(self, name: str, loop: Loop, counters: dict[str, int]):
        self.name = name
        self.loop = loop
        self.counters = counters          # the actor's: sent, batches, send_dropped, send_failed
        # everything queued during one wake-up leaves together, before the loop polls again.
        # A send that finds ZeroMQ's I/O thread asleep costs about 10 us (it must be woken);
        # sends back to back cost under 1 us each and wake it once.
        self.outbox: Outbox = []
        # socket -> whether its frames start with a topic: what a wake-up has for one of its
        # receivers leaves as one batch (codec.batch); other sockets send message by message
        self.batching: dict[zmq.Socket, bool] = {}
        # socket -> how a topic's batch goes out: (one message per ZeroMQ message?, the topic of
        # the batch, or None), for the sockets whose receivers choose (Comm's ChatEvents)
        self.batch_forms: dict[zmq.Socket, Callable[[bytes], tuple[bool, bytes | None]]] = {}
        # socket -> told of the messages to one receiver it could not send (Comm counts drops
        # per desk): (frames, how many) -> how many of them are drops (lost to the receiver)
        self.drop_watch: dict[zmq.Socket, Callable[[list[bytes], int], int]] = {}
        # socket -> what it holds for its receivers, counted in bytes and bounded (outflow.py)
        self.outflows: dict[zmq.Socket, Outflow] = {}
        self.retry_armed = False

    def flush(self) -> None:
        """Send what is queued, never blocking: a peer that is gone or stuck must not freeze
        this actor (a PUSH blocks past its high-water mark). What cannot be sent is counted
        and logged; the receiver's resynchronisation, not this sender, recovers it."""
        moving = False
        for outflow in self.outflows.values():  # what waited for room goes first, in order
            if outflow.backed_up:
                moving = outflow.retry() > 0 or moving
        if self.outbox:
            outbox, self.outbox = self.outbox, []
            self.send_all(outbox)
        if not self.retry_armed and any(outflow.backed_up for outflow in self.outflows.values()):
            # ZeroMQ says nothing when a subscriber's queue has room again: look again soon
            # while its subscriber reads (what waits drains), every RETRY_EVERY while it does not
            self.retry_armed = True
            self.loop.call_later(RETRY_SOON if moving else RETRY_EVERY, self.retry)

    def retry(self) -> None:
        self.retry_armed = False
        self.flush()

    def send_all(self, outbox: Outbox) -> None:
        # (a socket whose receivers choose their form goes through `batches` even alone)
        if self.batching and (len(outbox) > 1 or self.batch_forms):
            for sock, frames, messages in self.batches(outbox):
                self.send_now(sock, frames, messages)
        else:
            for sock, frames in outbox:
                self.send_now(sock, frames, None)

    def batches(self, outbox: Outbox) -> list[tuple[zmq.Socket, list[bytes], Any]]:
        """The outbox with the messages of each receiver of a batching socket (a topic of a
        PUB, the peer of a PUSH) in batches (codec.batch) of at most BATCH_MAX messages and
        about BATCH_BYTES, in their order; (socket, frames, the messages a batch holds or None)."""
        batching = self.batching
        groups: dict[Any, list[list[bytes]]] = {}
        sizes: dict[Any, int] = {}  # a batch's bodies, in bytes: cut at BATCH_BYTES (outflow.py)
        order: list[tuple[zmq.Socket, Any, bool | None]] = []
        for sock, frames in outbox:
            topic = batching.get(sock)
            if topic is None:
                order.append((sock, frames, None))
                continue
            key = (sock, frames[0]) if topic else sock
            group = groups.get(key)
            size = len(frames[-1])
            if group is None or len(group) >= BATCH_MAX or sizes[key] + size > BATCH_BYTES:
                group = groups[key] = []
                sizes[key] = 0
                order.append((sock, group, topic))
            group.append(frames)
            sizes[key] += size
        out = []
        forms = self.batch_forms
        for sock, item, topic in order:
            if topic and sock in forms:   # the receivers say how they take it (Comm's subscribers)
                plain, batched = forms[sock](item[0][0])
                if batched is not None:
                    out.append((sock, codec.batch(item, topic, batched) if len(item) > 1 else
                                [batched, *item[0][1:]], item))
                if plain:
                    out.extend((sock, message, None) for message in item)
            elif topic is None or len(item) == 1:
                out.append((sock, item if topic is None else item[0], None))
            else:
                out.append((sock, codec.batch(item, topic), item))
        return out

    def send_now(self, sock: zmq.Socket, frames: list[bytes], messages: list[list[bytes]] | None) -> None:
        """Send one message or batch (`messages`: what the batch holds), counting each message;
        through the socket's outflow when it has one (what it holds counted in bytes)."""
        counters = self.counters
        outflow = self.outflows.get(sock)
        if outflow is not None:
            if outflow.send(frames, len(messages) if messages else 1):
                counters["sent"] += len(messages) if messages else 1
            return
        try:
            send_frames(sock, frames)
        except zmq.Again:
            self.count_dropped(sock, frames, len(messages) if messages else 1)
            return
        except (zmq.ZMQError, TypeError) as exc:  # one bad message must not take the others with it
            counters["send_failed"] = counters.get("send_failed", 0) + 1
            log.error("%s: could not send %s: %s", self.name, frames[:2], exc)
            return
        if messages is None:
            counters["sent"] += 1
        else:
            counters["sent"] += len(messages)
            counters["batches"] = counters.get("batches", 0) + 1

    def count_dropped(self, sock: zmq.Socket, frames: list[bytes], count: int) -> None:
        """`count` messages to one receiver (`frames`: them, or their batch) not sent: counted
        as drops unless the socket's watcher says they are not (a heartbeat), and logged."""
        watch = self.drop_watch.get(sock)
        lost = count if watch is None else watch(frames, count)
        if lost:
            counters = self.counters
            before = counters.get("send_dropped", 0)
            dropped = counters["send_dropped"] = before + lost
            # a line at the 1st, 10th, 100th and 1000th drop, then every 10,000th
            if any(before < n <= dropped for n in (1, 10, 100, 1000)) or dropped // 10000 > before // 10000:
                log.warning("%s: peer not taking messages: %d dropped so far", self.name, dropped)
