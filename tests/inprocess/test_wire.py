from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from wire import catalogue, codec
from wire.codec import WireError
from wire.stats import Histogram, bucket_low, bucket_of


def decode(type: str, body: object, queue: str = "General"):
    return codec.decode([type.encode(), orjson.dumps(body)], queue)


def test_catalogue_has_the_seventeen_messages_on_their_queues():
    assert [s.number for s in catalogue.SPECS if s.number < 100] == list(range(1, 18))
    assert set(catalogue.BY_QUEUE["General"]) == {"Connect", "Login", "AgentState", "Conference", "Transfer",
                                                 "TaskState", "Task", "GetAgentState", "GetTaskState",
                                                 "Heartbeat", "Resync"}  # ours, like Snapshot and Confirm
    assert set(catalogue.BY_QUEUE["RoutingEngine"]) == {"Conference", "Transfer", "AgentState", "TaskState",
                                                       "NewTask", "Snapshot", "Confirm"}
    assert set(catalogue.BY_QUEUE["CommunicationServer"]) == {"TaskConferenced", "TaskAgentTransferred",
                                                             "TaskAgentSelected", "Resync"}


def test_valid_message_decodes_and_mrd_is_accepted_either_way():
    assert decode("Login", {"AgentId": "a", "Password": "p", "Mrd": "chat"})[1]["Mrd"] == "chat"
    assert decode("Login", {"AgentId": "a", "Password": "p", "MRD": "chat"})[1]["Mrd"] == "chat"
    body = decode("AgentState", {"AgentId": "a", "State": "READY", "Mrd": "chat"}, "RoutingEngine")[1]
    assert body["MRD"] == "chat" and "Mrd" not in body


@pytest.mark.parametrize("frames, code", [
    ([b"Task", b"{nope"], "BAD_MESSAGE"),
    ([b"Task", b"[1, 2]"], "BAD_MESSAGE"),
    ([b"Task"], "BAD_MESSAGE"),
    ([b"Teleport", b"{}"], "BAD_MESSAGE"),
    ([b"\xff\xfe", b"{}"], "BAD_MESSAGE"),
    ([b"NewTask", b'{"MRD": "chat", "TaskId": "t"}'], "BAD_MESSAGE"),  # right type, wrong queue
    ([b"Task", b'{"Mrd": "chat"}'], "MISSING_FIELD"),
    ([b"Task", b'{"Mrd": "chat", "ClientUniqueId": 5}'], "BAD_FIELD"),
    ([b"Task", b'{"Mrd": "chat", "ClientUniqueId": "c", "params": [["a"]]}'], "BAD_FIELD"),
    ([b"Login", b'{"AgentId": "", "Password": "p", "Mrd": "chat"}'], "BAD_FIELD"),
    ([b"Connect", b'{"AgentId": "a", "Password": "p", "Destination": "x\\u0000y"}'], "BAD_FIELD"),
    ([b"Heartbeat", b'{"Destination": "x\\u0000y"}'], "BAD_FIELD"),  # every Destination is one
    ([b"Resync", b'{"Destination": "desk", "TaskIds": "t-1"}'], "BAD_FIELD"),
    ([b"Task", b'{"Mrd": "chat", "ClientUniqueId": "c", "MsgId": 3}'], "BAD_FIELD"),
])
def test_bad_input_is_refused_with_its_code(frames, code):
    with pytest.raises(WireError) as info:
        codec.decode(frames, "General")
    assert info.value.code == code


def test_error_names_the_field_and_keeps_msg_id_and_reply_to():
    with pytest.raises(WireError) as info:
        decode("Login", {"AgentId": "a", "Mrd": "chat", "MsgId": "m1", "ReplyTo": "desk"})
    err = info.value
    assert (err.code, err.field, err.msg_id, err.reply_to, err.type) == ("MISSING_FIELD", "Password", "m1",
                                                                        "desk", "Login")
    assert err.body()["Field"] == "Password"


def test_params_as_pairs_or_object():
    assert codec.params_dict([["queue", "vip"], ["lang", "en"]]) == {"queue": "vip", "lang": "en"}
    assert codec.params_dict({"queue": "vip"}) == {"queue": "vip"}
    decode("Task", {"Mrd": "chat", "ClientUniqueId": "c", "params": {"queue": "vip"}})


def test_oversized_body_is_refused():
    with pytest.raises(WireError) as info:
        codec.decode([b"Task", b" " * (codec.MAX_BODY + 1)], "General")
    assert info.value.code == "BAD_MESSAGE"


def test_topics_end_with_a_separator_so_prefixes_do_not_match():
    assert not codec.topic("chat.10").startswith(codec.topic("chat.1"))
    dest, type, body = codec.decode_event(codec.encode_pub("chat.1", "TaskState", {"TaskId": "t"}))
    assert (dest, type, body) == ("chat.1", "TaskState", {"TaskId": "t"})


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=4), st.sampled_from(["General", "RoutingEngine"]))
def test_decode_never_fails_with_anything_but_a_wire_error(frames, queue):
    try:
        codec.decode(frames, queue)
    except WireError as err:
        assert err.code in ("BAD_MESSAGE", "MISSING_FIELD", "BAD_FIELD")


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=8)


@settings(max_examples=300)
@given(st.sampled_from([s for s in catalogue.SPECS]), st.dictionaries(
    st.sampled_from(["AgentId", "Password", "Mrd", "MRD", "State", "TaskId", "Destination", "params", "MsgId"]),
    json_values, max_size=8))
def test_any_json_body_for_any_message_is_accepted_or_refused_cleanly(spec, body):
    try:
        type, decoded = decode(spec.type, body, spec.queue)
    except WireError as err:
        assert err.code in ("MISSING_FIELD", "BAD_FIELD") and err.field
        return
    for name in spec.required:
        assert decoded[name] is not None


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=200))
def test_histogram_percentiles_are_within_a_bucket(samples):
    hist = Histogram()
    for us in samples:
        hist.record(us / 1e6)
    ordered = sorted(samples)
    for p in (50, 99):
        exact = ordered[max(1, round(p / 100 * len(ordered))) - 1]
        got = hist.percentile(p)
        assert abs(got - exact) <= max(1.0, exact * 0.07)
    merged = Histogram.from_json(orjson.loads(orjson.dumps(hist.to_json())))
    assert merged.count == len(samples) and merged.max_us == max(samples)


def test_buckets_cover_every_value_once():
    for us in list(range(0, 300)) + [10**k + d for k in range(3, 9) for d in (-1, 0, 1)]:
        index = bucket_of(us)
        assert bucket_low(index) <= us < bucket_low(index + 1)
