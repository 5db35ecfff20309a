"""What Comm holds for its subscribers, counted in bytes (actors/outflow.py), as a property:
whatever the subscribers do (read, stall, come, go), every message sent to a topic is
delivered in order, waits, or is dropped and counted; what is counted as held is what the
destinations that wait hold, never more than the budgets; and a destination that reads
again is served again (found by the suite: a ring of sizes that never emptied starved a
reader that was reading again)."""

from __future__ import annotations

from typing import Any

import zmq
from hypothesis import given, settings, strategies as st

from actors.outflow import Outflow

HWM, PER_RECEIVER, TOTAL = 3, 1500, 2500
TOPICS = [b"a\x00", b"b\x00", b"c\x00"]


class Wire:
    """ZeroMQ as the outflow sees it: a queue of at most HWM messages per topic (whose
    subscriber reads when told), and what each subscriber has read."""

    def __init__(self) -> None:
        self.queued: dict[bytes, list[bytes]] = {t: [] for t in TOPICS}
        self.read: dict[bytes, list[bytes]] = {t: [] for t in TOPICS}
        self.subscribed: set[bytes] = set()

    def send(self, _sock: Any, frames: list[Any]) -> None:
        topic = bytes(frames[0])
        if topic not in self.subscribed:
            return   # nobody hears it: ZeroMQ drops it without a word
        if len(self.queued[topic]) >= HWM:
            raise zmq.Again()
        self.queued[topic].append(bytes(frames[1]))

    def drain(self, topic: bytes) -> None:
        self.read[topic] += self.queued[topic]
        self.queued[topic] = []


ops = st.lists(st.one_of(
    st.tuples(st.just("send"), st.sampled_from(TOPICS), st.integers(1, 250)),
    st.tuples(st.just("read"), st.sampled_from(TOPICS)),
    st.tuples(st.just("retry")),
    st.tuples(st.just("subscribe"), st.sampled_from(TOPICS)),
    st.tuples(st.just("unsubscribe"), st.sampled_from(TOPICS))), max_size=120)


@settings(max_examples=300)
@given(ops)
def test_every_message_is_delivered_in_order_waits_or_is_counted_dropped_within_the_budgets(steps):
    wire, dropped = Wire(), []
    outflow = Outflow(None, hwm=HWM, per_receiver=PER_RECEIVER, total=TOTAL, send=wire.send,
                      dropped=lambda frames, count: dropped.append((bytes(frames[0]), count)))
    sent: dict[bytes, list[bytes]] = {t: [] for t in TOPICS}
    n = 0
    for step in steps:
        if step[0] == "send":
            _, topic, size = step
            n += 1
            body = b"%d:" % n + b"x" * size
            if topic in wire.subscribed:
                sent[topic].append(body)
            outflow.send([topic, body], 1)
        elif step[0] == "read":
            wire.drain(step[1])
        elif step[0] == "retry":
            outflow.retry()
        elif step[0] == "subscribe" and step[1] not in wire.subscribed:
            wire.subscribed.add(step[1])
            outflow.subscribed(step[1])
        elif step[0] == "unsubscribe" and step[1] in wire.subscribed:
            wire.subscribed.discard(step[1])
            wire.queued[step[1]] = []
            outflow.unsubscribed(step[1])
            sent[step[1]] = []   # what it was owed went with it (counted dropped, if it waited)
            wire.read[step[1]] = []
        # the books balance: held is what the waiting destinations hold, within the budgets
        held = outflow.held
        assert outflow.held_bytes == sum(h.bytes for h in held.values()) <= TOTAL
        assert all(h.bytes <= PER_RECEIVER for h in held.values())
        assert outflow.backed_up == {t for t, h in held.items() if h.waiting}
    for topic in TOPICS:   # each subscriber reads whatever comes, until nothing waits
        if topic not in wire.subscribed:
            continue
        for _ in range(len(sent[topic]) + 2):
            wire.drain(topic)
            outflow.retry()
        got = wire.read[topic]
        assert got == [body for body in sent[topic] if body in set(got)], "out of order"
        lost = len(sent[topic]) - len(got)
        counted = sum(count for t, count in dropped if t == topic)
        assert lost <= counted and not outflow.held[topic].waiting
    assert outflow.held_bytes == 0


def test_a_destination_that_reads_again_is_served_again():
    wire, dropped = Wire(), []
    outflow = Outflow(None, hwm=HWM, per_receiver=PER_RECEIVER, total=TOTAL, send=wire.send,
                      dropped=lambda frames, count: dropped.append(count))
    wire.subscribed.add(TOPICS[0])
    outflow.subscribed(TOPICS[0])
    for n in range(20):   # it does not read: three in ZeroMQ, then what fits waits, the rest dropped
        outflow.send([TOPICS[0], b"%03d" % n + b"x" * 100], 1)
    assert dropped and outflow.held_bytes <= PER_RECEIVER
    for _ in range(10):   # it reads again
        wire.drain(TOPICS[0])
        outflow.retry()
    outflow.send([TOPICS[0], b"new"], 1)
    wire.drain(TOPICS[0])
    assert wire.read[TOPICS[0]][-1] == b"new" and outflow.held_bytes == 0


def test_what_waits_goes_before_what_comes_after_it():
    wire = Wire()
    outflow = Outflow(None, hwm=HWM, per_receiver=PER_RECEIVER, total=TOTAL, send=wire.send, dropped=lambda f, c: None)
    wire.subscribed.add(TOPICS[0])
    outflow.subscribed(TOPICS[0])
    for n in range(5):   # three in ZeroMQ, two wait
        outflow.send([TOPICS[0], b"%d" % n], 1)
    wire.drain(TOPICS[0])   # the subscriber read: ZeroMQ has room, before we looked again
    outflow.send([TOPICS[0], b"5"], 1)
    for _ in range(3):
        outflow.retry()
        wire.drain(TOPICS[0])
    assert wire.read[TOPICS[0]] == [b"0", b"1", b"2", b"3", b"4", b"5"]
