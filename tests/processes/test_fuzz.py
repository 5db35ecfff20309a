"""Bad input on every socket a role listens on: random frames, invalid UTF-8, bad JSON,
wrong types, unknown and malformed messages and commands, huge bodies. Each role answers
what it can with an error, keeps serving, and still routes correctly afterwards."""

from __future__ import annotations

import orjson
import pytest
import zmq
from hypothesis import given, settings, strategies as st

from launch import client as control_client
from wire.catalogue import SPECS
from wire.codec import MAX_BODY
from wire.gc import COMMANDS

from ..helpers import GcClient, base_topology

FIELDS = sorted({name for spec in SPECS for name in spec.required + spec.optional} | {"MsgId", "ReplyTo", "params"})
TYPES = sorted({spec.type for spec in SPECS} | {"Error", "Snapshot", "Resync"})
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=16)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8)
bodies = st.dictionaries(st.sampled_from(FIELDS) | text, json_values, max_size=6)
# a message: random frames, or a known (or unknown) type with a body of the wrong shape
messages = st.one_of(
    st.lists(st.binary(max_size=64), min_size=1, max_size=4),
    st.tuples(st.sampled_from(TYPES) | text, bodies).map(lambda tb: [tb[0].encode(), orjson.dumps(tb[1])]),
    st.tuples(st.sampled_from(TYPES), st.binary(max_size=64)).map(lambda tb: [tb[0].encode(), tb[1]]),
)
gc_commands = st.one_of(
    st.tuples(st.sampled_from(sorted(COMMANDS)) | text, text, st.lists(text, max_size=4)).map(
        lambda c: [f"{c[0]}#{c[1]}".encode(), ",".join(c[2]).encode()]),
    st.lists(st.binary(max_size=64), min_size=1, max_size=3),
)
FUZZ = settings(max_examples=150)


@pytest.fixture
def system(start_topology, chat_client):
    spec = base_topology("fuzz")
    spec["actors"]["gc"] = {"role": "gc"}
    running = start_topology(spec)
    ctx = zmq.Context()
    pushes = {}
    for queue in ("General", "CommunicationServer", "RoutingEngine", "GC"):
        pushes[queue] = ctx.socket(zmq.PUSH)
        pushes[queue].linger = 0
        pushes[queue].connect(running.endpoints()[queue])
    yield running, pushes
    for sock in pushes.values():
        sock.close()
    ctx.term()


def still_serving(running, chat_client, queue):
    """Nothing restarted, every actor answers its control channel, the fuzzed one counted
    what it refused, and a task is still routed end to end."""
    actors = running.status()["actors"]
    assert all(a["state"] == "RUNNING" and a["restarts"] == 0 for a in actors), actors
    stats = control_client.ask(running.topology, "stats")["actors"]
    assert all("error" not in s for s in stats.values()), stats
    role = {"General": "comm.1", "CommunicationServer": "comm.1", "RoutingEngine": "mre.1", "GC": "gc.1"}[queue]
    assert stats[role]["counters"]["refused"] > 0  # it saw the bad input, and said so
    desk = chat_client(running.endpoints(), "after-fuzz")
    desk.handshake()
    desk.login("bob", "pw-bob")
    msg_id = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": "after"})
    task = desk.expect("TaskState", MsgId=msg_id, State="QUEUED")["TaskId"]
    assert desk.expect("TaskAgentSelected", TaskId=task, timeout=10)["AgentId"] == "bob"


@pytest.mark.parametrize("queue", ["General", "CommunicationServer", "RoutingEngine"])
def test_random_messages_on_every_queue_are_refused_and_the_roles_keep_serving(system, chat_client, queue):
    running, pushes = system

    @FUZZ
    @given(messages)
    def send(frames):
        pushes[queue].send_multipart(frames)
    send()
    pushes[queue].send_multipart([b"Task", b"{" + b" " * (MAX_BODY + 10) + b"}"])  # over the size limit
    pushes[queue].send_multipart([b"Task", b"\xff\xfe not utf-8"])
    still_serving(running, chat_client, queue)


def test_random_commands_to_the_gc_are_refused_and_it_keeps_serving(system, chat_client):
    running, pushes = system

    @FUZZ
    @given(gc_commands)
    def send(frames):
        pushes["GC"].send_multipart(frames)
    send()
    pushes["GC"].send_multipart([b"Login#alice", b"x" * (MAX_BODY + 10)])
    gc = GcClient(running.endpoints(), "gc-after-fuzz")
    try:
        gc.handshake()
        gc.login("alice", "pw-alice", "1001")  # still logs an agent in
    finally:
        gc.close()
    still_serving(running, chat_client, "GC")


def test_random_requests_to_the_supervisor_get_an_error_and_it_keeps_serving(system):
    running, _ = system
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(running.topology.control_endpoint("control"))
    try:
        @FUZZ
        @given(st.lists(st.binary(max_size=64), min_size=1, max_size=4))
        def send(frames):
            dealer.send_multipart(frames)
            assert dealer.poll(5000), "the supervisor did not answer"
            dealer.recv_multipart()  # an error or, by chance, an answer: never silence
        send()
    finally:
        dealer.close()
        ctx.term()
    assert {a["name"] for a in running.status()["actors"]} == {"comm.1", "mre.1", "gc.1"}
