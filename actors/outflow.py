"""What a publisher holds for its subscribers, counted in bytes and bounded.

ZeroMQ bounds a subscriber's queue in messages (its high-water mark), and a message may be
a batch of hundreds: on main, a desk stopped with SIGSTOP while 1,500,000 answers were owed
to it took Comm from 29 to 611 MB, with no drop counted, and the real ceiling was about
10 GB. Here, for each destination (a topic) that has a subscriber:

- ZeroMQ holds at most `hwm` messages (the socket's SNDHWM), each at most BATCH_BYTES (the
  runtime cuts batches there; a single larger message, a Snapshot, is what it is).
- What ZeroMQ would not take (its queue for that subscriber is full) waits here, in order,
  counted exactly, and is sent as soon as the queue has room (`retry`, every turn).

While messages wait here for a destination, ZeroMQ's queue for it is full, and holds at
most the last `hwm` messages sent there: a ring of their sizes says how much, and that
counts too. A destination with nothing waiting had room at its last send: what ZeroMQ
holds for it is below `hwm` messages and is not counted (it drains; counting it forever,
as a ring that never empties would, once starved a reader that was reading again).

A message that would take a waiting destination past `per_receiver` bytes, or all of them
past `total`, is dropped and counted (the runtime's drop watch: Comm's `dropped_to`,
`mroute_messages_dropped_total`): its subscriber sees the gap in its numbered stream and
resyncs. A destination whose subscribers are all gone is forgotten, and what waited for it
with it. Topics in `skippable` (a heartbeat: the next one says the same) never wait: one
ZeroMQ cannot take is skipped.
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq

from actors.frames import send_frames

BATCH_BYTES = 64 * 1024  # a batch is cut before it passes this many bytes (runtime.batches)
WAITING_OVERHEAD = 16     # bytes a waiting message costs besides its own (its offsets in a Chunk)
CHUNK_BYTES = 64 * 1024   # messages waiting for one destination are packed in blocks of about this


class Chunk:
    """Messages waiting here for one destination, packed in one block of bytes with the
    offsets of their frames. Kept as Python objects, a frame each, a backlog pinned several
    times its size in Python's small-object arenas (they hold a few live frames among the
    freed ones of every turn since) and was never given back: 15 MB of batches held 90 MB;
    15 MB of single messages (a receiver that takes no batches) held 60. A block of many
    lives in the system allocator, and goes back with its last message."""

    __slots__ = ("buf", "fill", "frame_ends", "message_ends", "sizes", "counts", "next")

    def __init__(self, capacity: int) -> None:
        # allocated whole, at once: a block this size comes from the system's own pages
        # (memory.py sets the allocator's threshold) and goes straight back to it
        self.buf = bytearray(capacity)
        self.fill = 0
        self.frame_ends = array("L")    # where each frame ends in buf
        self.message_ends = array("L")  # how many frames there are up to the end of each message
        self.sizes = array("L")         # each message's counted size
        self.counts = array("L")        # the messages each holds (a batch holds many)
        self.next = 0                   # the first message not sent yet

    def add(self, frames: list[bytes], size: int, count: int) -> None:
        fill = self.fill
        for frame in frames:
            end = fill + len(frame)
            self.buf[fill:end] = frame
            self.frame_ends.append(end)
            fill = end
        self.fill = fill
        self.message_ends.append(len(self.frame_ends))
        self.sizes.append(size)
        self.counts.append(count)

    def head(self) -> list[memoryview]:
        """The frames of the first message not sent yet."""
        i, ends, view = self.next, self.frame_ends, memoryview(self.buf)
        first = self.message_ends[i - 1] if i else 0
        start = ends[first - 1] if first else 0
        out = []
        for frame in range(first, self.message_ends[i]):
            out.append(view[start:ends[frame]])
            start = ends[frame]
        return out

    def left(self) -> int:
        return len(self.message_ends) - self.next

    def unsent(self) -> int:
        """The messages not sent yet (a batch counts as what it holds)."""
        return sum(self.counts[self.next:])


@dataclass(slots=True, eq=False)
class Held:
    """One destination: the sizes of the last messages ZeroMQ took (a ring of `hwm`), and
    what waits here for room."""
    ring: list[int]
    at: int = 0
    in_zmq: int = 0            # the ring's sum: what ZeroMQ holds when its queue is full
    waiting: deque[Chunk] = field(default_factory=deque)   # what waits for room, in order
    waiting_bytes: int = 0
    subscribers: int = 0

    @property
    def bytes(self) -> int:
        """What it is counted as holding: nothing while ZeroMQ had room at its last send."""
        return self.in_zmq + self.waiting_bytes if self.waiting else 0


class Outflow:
    def __init__(self, sock: zmq.Socket, *, hwm: int, per_receiver: int, total: int,
                 dropped: Callable[[list[bytes], int], None], skippable: frozenset[bytes] = frozenset(),
                 send: Callable[[Any, list[Any]], None] = send_frames):
        self.sock = sock
        self.send_frames = send   # one message, without blocking: raises zmq.Again when there is no room
        self.hwm = hwm
        self.per_receiver = per_receiver
        self.total = total
        self.dropped = dropped          # (frames, messages they hold): a drop, for the actor to count
        self.skippable = skippable
        self.held: dict[bytes, Held] = {}      # topic -> what it may hold, for topics with a subscriber
        self.backed_up: set[bytes] = set()     # topics with messages waiting here
        self.held_bytes = 0                    # what the backed-up topics hold, together
        self.peak_bytes = 0
        self.freed = 0       # bytes of ours let go (waited here, or a forgotten topic's): see Comm's give_back

    # subscribers -------------------------------------------------------------------------
    def subscribed(self, topic: bytes) -> None:
        held = self.held.get(topic)
        if held is None:
            held = self.held[topic] = Held([0] * self.hwm)
        held.subscribers += 1

    def unsubscribed(self, topic: bytes) -> None:
        held = self.held.get(topic)
        if held is None:
            return
        held.subscribers -= 1
        if held.subscribers <= 0:   # nobody is there to hold anything for
            self.forget(topic, held)

    def forget(self, topic: bytes, held: Held) -> None:
        lost = sum(chunk.unsent() for chunk in held.waiting)
        if lost:
            self.dropped([topic], lost)
        self.freed += held.waiting_bytes
        self.held_bytes -= held.bytes
        del self.held[topic]
        self.backed_up.discard(topic)

    # sending -------------------------------------------------------------------------------
    def send(self, frames: list[bytes], messages: int) -> bool:
        """Send or keep one message (a batch of `messages`): False when it was dropped, or
        skipped. A topic nobody subscribes to holds nothing: ZeroMQ discards what goes there."""
        topic = frames[0]
        held = self.held.get(topic)
        if held is None:
            return self.send_now(frames)
        if not held.waiting:
            try:
                self.send_frames(self.sock, frames)
            except zmq.Again:
                if topic in self.skippable:
                    return False
            else:
                self.took(held, sum(map(len, frames)))
                return True
        return self.keep(topic, held, frames, messages)

    def send_now(self, frames: list[bytes]) -> bool:
        try:
            self.send_frames(self.sock, frames)
        except zmq.Again:  # a subscriber came since we last read the subscriptions
            self.dropped(frames, 1)
            return False
        return True

    def took(self, held: Held, size: int) -> None:
        """ZeroMQ took `size` bytes for this topic: the oldest of the last `hwm` goes out of
        its ring, whatever became of it."""
        ring, at = held.ring, held.at
        delta = size - ring[at]
        ring[at] = size
        held.at = at + 1 if at + 1 < self.hwm else 0
        held.in_zmq += delta
        if held.waiting:
            self.held_bytes += delta

    def keep(self, topic: bytes, held: Held, frames: list[bytes], messages: int) -> bool:
        """Keep a message ZeroMQ has no room for, within the budgets: ZeroMQ's full queue for
        this topic (its ring) counts from the first message that waits."""
        size = sum(map(len, frames)) + WAITING_OVERHEAD
        before = held.bytes
        after = (held.in_zmq if not held.waiting else before) + size
        if after > self.per_receiver or self.held_bytes - before + after > self.total:
            self.dropped(frames, messages)
            return False
        waiting = held.waiting
        if not waiting or waiting[-1].fill + size > len(waiting[-1].buf):
            waiting.append(Chunk(max(CHUNK_BYTES, size)))
        waiting[-1].add(frames, size, messages)
        held.waiting_bytes += size
        self.held_bytes += after - before
        if self.held_bytes > self.peak_bytes:
            self.peak_bytes = self.held_bytes
        self.backed_up.add(topic)
        return True

    def retry(self) -> int:
        """Send what waits, oldest first, for as long as ZeroMQ takes it; a topic with
        nothing left waiting has room in ZeroMQ again and is counted no more. Returns how
        many messages left."""
        sent = 0
        for topic in list(self.backed_up):
            held = self.held[topic]
            waiting = held.waiting
            while waiting:
                chunk = waiting[0]
                try:
                    self.send_frames(self.sock, chunk.head())
                except zmq.Again:
                    break
                size = chunk.sizes[chunk.next]
                chunk.next += 1
                sent += 1
                if not chunk.left():
                    waiting.popleft()
                held.waiting_bytes -= size
                self.held_bytes -= size
                self.freed += size   # our copy: ZeroMQ made its own
                if not waiting:
                    self.held_bytes -= held.in_zmq
                self.took(held, size - WAITING_OVERHEAD)
            if not waiting:
                self.backed_up.discard(topic)
        return sent

    def stats(self) -> dict[str, int]:
        return {"held_bytes": self.held_bytes, "peak_bytes": self.peak_bytes,
                "waiting_bytes": sum(h.waiting_bytes for h in self.held.values()),
                "backed_up": len(self.backed_up), "subscribed_topics": len(self.held)}
