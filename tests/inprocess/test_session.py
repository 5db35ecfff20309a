"""The sans-I/O client core (wire/session.py), without sockets or processes: frames in
(`receive`, built with wire.codec as Comm publishes them), frames out (`outgoing`), and a
fake clock that moves only when a test moves it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from wire import codec, messages, states as S
from wire.catalogue import HEARTBEAT_INTERVAL, HEARTBEAT_TOPIC, PUBLISHED
from wire.session import PROBE_EVERY, RESEND_AFTER, Incoming, Request, Session

from ..fakeclock import FakeClock

DEST = "desk.1"
IDS = "desk.1-test-"
PROBE = ("agent1", "chat")
T0 = 1000.0


def make(**kwargs: Any) -> tuple[Session, FakeClock]:
    clock = FakeClock(T0)
    kwargs.setdefault("ids", IDS)
    kwargs.setdefault("beat", False)
    return Session(DEST, PROBE, clock=clock.clock, **kwargs), clock


def sent(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """What the session put on General since last asked, decoded; taken off `outgoing`."""
    out = [(frames[0].decode("ascii"), orjson.loads(frames[1])) for frames in session.outgoing]
    assert all(len(frames) == 2 for frames in session.outgoing)
    session.outgoing.clear()
    return out


def pub(type: str, body: dict[str, Any]) -> list[bytes]:
    """A message Comm publishes on our topic."""
    return codec.encode_pub(DEST, type, body)


def beat(epoch: str, stream: str) -> list[bytes]:
    return codec.encode_pub(HEARTBEAT_TOPIC, "Heartbeat", {"Epoch": epoch, "Stream": stream})


def task_state(task_id: str = "t1", state: str = S.QUEUED, **extra: Any) -> dict[str, Any]:
    return {"TaskId": task_id, "State": state, "MRD": "chat", **extra}


def error(code: str, msg_id: str, **extra: Any) -> dict[str, Any]:
    return {"Code": code, "Reason": f"a {code}", "MsgId": msg_id, **extra}


def snapshot(msg_id: str, **extra: Any) -> dict[str, Any]:
    return {"Destination": DEST, "Agents": [], "Tasks": [], "Unknown": [], "MsgId": msg_id, **extra}


def go_live(session: Session) -> None:
    """Probe, answer the probe, forget what was sent."""
    session.tick()
    (_, probe), = [(t, b) for t, b in sent(session) if t == "GetAgentState"]
    assert session.receive(pub("AgentState", {"AgentId": PROBE[0], "State": S.LOGOUT, "Mrd": PROBE[1],
                                              "StateChangeTime": "2026-01-01T00:00:00Z",
                                              "MsgId": probe["MsgId"]})) == []
    assert session.live
    session.outgoing.clear()


def resyncs(out: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [body for type, body in out if type == "Resync"]


# the subscription probe ----------------------------------------------------------------

def test_before_live_tick_probes_every_probe_every_seconds():
    session, clock = make()
    assert session.subscriptions == [codec.topic(DEST), codec.topic(HEARTBEAT_TOPIC)]
    assert session.tick() == pytest.approx(T0 + PROBE_EVERY)
    (type, body), = sent(session)
    assert type == "GetAgentState"
    assert body["AgentId"] == PROBE[0] and body["Mrd"] == PROBE[1]
    assert body["ReplyTo"] == DEST
    assert body["MsgId"].startswith(session.ids)
    first_id = body["MsgId"]

    clock.at(T0 + PROBE_EVERY / 2)
    session.tick()
    assert sent(session) == []           # not yet

    clock.at(T0 + PROBE_EVERY)
    session.tick()
    (type, body), = sent(session)
    assert type == "GetAgentState" and body["MsgId"].startswith(session.ids) and body["MsgId"] != first_id
    assert session.counts["probes"] == 2
    assert not session.live


def test_the_probes_answer_makes_it_live_once_and_is_not_handed_back():
    session, clock = make()
    lives: list[int] = []
    session.on_live = lambda: lives.append(1)
    session.tick()
    (_, probe), = sent(session)
    answer = pub("AgentState", {"AgentId": "agent1", "State": S.LOGOUT, "Mrd": "chat",
                                "StateChangeTime": "2026-01-01T00:00:00Z", "MsgId": probe["MsgId"]})
    assert session.receive(answer) == []
    assert session.live and lives == [1]
    # a second probe's answer (the probes crossed it) is not handed back nor counted stale
    assert session.receive(answer) == []
    assert lives == [1] and session.counts["stale_answers"] == 0
    # news makes it live no more than it is
    assert [i.message.type for i in session.receive(pub("TaskState", task_state()))] == ["TaskState"]
    assert lives == [1]
    # live: no more probes
    for dt in (PROBE_EVERY, 2 * PROBE_EVERY, 10.0):
        clock.at(T0 + dt)
        session.tick()
    assert [t for t, _ in sent(session) if t == "GetAgentState"] == []
    assert session.counts["probes"] == 1


# requests: MsgId, ReplyTo, resending, answers once --------------------------------------

def test_request_is_resent_with_the_same_msg_id_and_its_answer_handed_back_once():
    session, clock = make()
    go_live(session)
    request = session.request("GetTaskState", {"TaskId": "t1"}, context="mine")
    assert isinstance(request, Request) and request.context == "mine"
    assert request.msg_id.startswith(session.ids)
    first = list(session.outgoing)
    (type, body), = sent(session)
    assert type == "GetTaskState" and body == {"TaskId": "t1", "MsgId": request.msg_id, "ReplyTo": DEST}

    clock.at(T0 + RESEND_AFTER / 2)
    session.tick()
    assert sent(session) == []
    clock.at(T0 + RESEND_AFTER)
    session.tick()
    assert session.outgoing == first     # the very same frames
    session.outgoing.clear()
    assert session.counts["resent"] == 1
    clock.at(T0 + 1.5 * RESEND_AFTER)    # RESEND_AFTER from the last send, not the first
    session.tick()
    assert sent(session) == []
    clock.at(T0 + 2 * RESEND_AFTER)
    session.tick()
    assert session.outgoing == first and session.counts["resent"] == 2
    session.outgoing.clear()

    answer = pub("TaskState", task_state(MsgId=request.msg_id))
    got = session.receive(answer)
    assert len(got) == 1 and isinstance(got[0], Incoming)
    assert got[0].answers is request and got[0].message.type == "TaskState"
    assert request.msg_id not in session.pending

    # the answer to our retry: said already
    assert session.receive(answer) == []
    assert session.counts["stale_answers"] == 1
    # and no more resending
    clock.at(T0 + 10 * RESEND_AFTER)
    session.tick()
    assert sent(session) == []


def test_a_msg_id_of_the_callers_is_kept():
    session, _ = make()
    go_live(session)
    request = session.request("GetTaskState", {"TaskId": "t1", "MsgId": "custom-7"})
    assert request.msg_id == "custom-7"
    (_, body), = sent(session)
    assert body["MsgId"] == "custom-7" and body["ReplyTo"] == DEST
    got = session.receive(pub("TaskState", task_state(MsgId="custom-7")))
    assert [i.answers for i in got] == [request]


def test_unavailable_keeps_the_request_pending_and_it_is_resent_until_answered():
    session, clock = make()
    go_live(session)
    request = session.request("TaskState", {"TaskId": "t1", "State": S.ACTIVE, "AgentId": "agent1"})
    sent(session)
    assert session.receive(pub("Error", error(S.UNAVAILABLE, request.msg_id, Type="TaskState"))) == []
    assert session.counts["unavailable"] == 1
    assert request.msg_id in session.pending
    clock.at(T0 + RESEND_AFTER)
    session.tick()
    (type, body), = sent(session)
    assert type == "TaskState" and body["MsgId"] == request.msg_id
    got = session.receive(pub("TaskState", task_state(state=S.ACTIVE, AgentId="agent1", MsgId=request.msg_id)))
    assert len(got) == 1 and got[0].answers is request
    assert session.pending == {}


def test_an_error_other_than_unavailable_is_the_answer():
    session, clock = make()
    go_live(session)
    request = session.request("GetTaskState", {"TaskId": "nope"})
    sent(session)
    got = session.receive(pub("Error", error(S.NOT_FOUND, request.msg_id, Type="GetTaskState")))
    assert len(got) == 1
    assert got[0].answers is request
    assert isinstance(got[0].message, messages.Error)
    assert got[0].message.Code == S.NOT_FOUND and got[0].message.Field is None
    assert session.pending == {}
    clock.at(T0 + 5 * RESEND_AFTER)
    session.tick()
    assert sent(session) == []


def test_a_request_unanswered_for_give_up_after_is_given_up():
    session, clock = make(give_up_after=5.0, resend_after=1.0)
    given_up: list[Request] = []
    session.on_give_up = given_up.append
    go_live(session)
    request = session.request("GetTaskState", {"TaskId": "t1"})
    sent(session)
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        clock.at(T0 + t)
        session.tick()
    assert [b["MsgId"] for _, b in sent(session)] == [request.msg_id] * 5
    assert given_up == [] and session.counts["gave_up"] == 0

    clock.at(T0 + 5.5)
    session.tick()
    assert given_up == [request]
    assert session.counts["gave_up"] == 1
    assert request.msg_id not in session.pending
    assert sent(session) == []
    for t in (6.0, 7.0, 20.0):
        clock.at(T0 + t)
        session.tick()
    assert sent(session) == []
    assert given_up == [request] and session.counts["gave_up"] == 1 and session.counts["resent"] == 5


# the numbered stream and Resync ---------------------------------------------------------

def test_a_gap_resyncs_one_at_a_time_and_the_snapshot_is_handed_back():
    held = ["t3", "t1", "t2"]
    session, _ = make(held=lambda: list(held))
    go_live(session)
    news = session.receive(pub("TaskState", task_state(Seq=1, Stream="s1")))
    assert len(news) == 1 and news[0].answers is None
    assert resyncs(sent(session)) == []

    got = session.receive(pub("TaskState", task_state(Seq=3, Stream="s1")))   # Seq 2 lost
    assert len(got) == 1 and got[0].answers is None                           # news still handed back
    (resync,), = [resyncs(sent(session))]
    assert resync == {"Destination": DEST, "TaskIds": ["t1", "t2", "t3"], "MsgId": resync["MsgId"],
                      "ReplyTo": DEST}
    assert resync["MsgId"].startswith(session.ids) and "Reset" not in resync
    assert session.counts["resyncs"] == 1

    # another gap while it is on its way: not asked twice
    held.append("t4")
    session.receive(pub("TaskState", task_state(Seq=5, Stream="s1")))
    assert resyncs(sent(session)) == []
    assert session.counts["resyncs"] == 1

    # its Snapshot is handed back with the Resync, and the second gap is asked about now
    got = session.receive(pub("Snapshot", snapshot(resync["MsgId"], Seq=6, Stream="s1")))
    assert len(got) == 1 and got[0].message.type == "Snapshot"
    assert isinstance(got[0].answers, Request) and got[0].answers.msg_id == resync["MsgId"]
    (second,), = [resyncs(sent(session))]
    assert second["TaskIds"] == ["t1", "t2", "t3", "t4"] and second["MsgId"] != resync["MsgId"]
    assert session.counts["resyncs"] == 2

    # its answer, with nothing lost since: nothing more asked
    got = session.receive(pub("Snapshot", snapshot(second["MsgId"], Seq=7, Stream="s1")))
    assert [i.answers.msg_id for i in got] == [second["MsgId"]]
    assert resyncs(sent(session)) == []


def test_an_error_answering_a_resync_does_not_ask_again():
    session, _ = make()
    go_live(session)
    session.receive(pub("TaskState", task_state(Seq=1, Stream="s1")))
    session.receive(pub("TaskState", task_state(Seq=3, Stream="s1")))
    (resync,), = [resyncs(sent(session))]
    session.receive(pub("TaskState", task_state(Seq=5, Stream="s1")))    # lost again meanwhile
    assert resyncs(sent(session)) == []
    got = session.receive(pub("Error", error(S.AUTHORIZATION_FAILURE, resync["MsgId"], Type="Resync",
                                             Seq=6, Stream="s1")))
    assert len(got) == 1 and got[0].message.type == "Error" and got[0].answers.msg_id == resync["MsgId"]
    assert resyncs(sent(session)) == []
    assert session.counts["resyncs"] == 1


def test_an_unavailable_resync_is_sent_again_not_doubled():
    session, clock = make()
    go_live(session)
    session.receive(pub("TaskState", task_state(Seq=1, Stream="s1")))
    session.receive(pub("TaskState", task_state(Seq=3, Stream="s1")))
    (resync,), = [resyncs(sent(session))]
    assert session.receive(pub("Error", error(S.UNAVAILABLE, resync["MsgId"], Seq=4, Stream="s1"))) == []
    clock.advance(RESEND_AFTER)
    session.tick()
    assert [b["MsgId"] for b in resyncs(sent(session))] == [resync["MsgId"]]
    assert session.counts["resyncs"] == 1


def test_a_new_stream_on_our_topic_resyncs():
    session, _ = make()
    go_live(session)
    session.receive(pub("TaskState", task_state(Seq=1, Stream="s1")))
    session.receive(pub("TaskState", task_state(Seq=2, Stream="s1")))
    assert resyncs(sent(session)) == []
    got = session.receive(pub("TaskState", task_state(Seq=1, Stream="s2")))
    assert len(got) == 1
    assert len(resyncs(sent(session))) == 1
    assert session.counts["resyncs"] == 1


def test_a_new_stream_heard_first_on_comms_beat_resyncs():
    # Comm beats every second on mroute.comm with its Stream: another Comm process is most
    # often heard there first (an idle desk hears nothing else). What it, or the old one,
    # sent us may be lost: the session must Resync, now or when news comes on the new Stream.
    session, _ = make()
    go_live(session)
    assert session.receive(beat("e1", "s1")) == []
    session.receive(pub("TaskState", task_state(Seq=1, Stream="s1")))
    session.receive(pub("TaskState", task_state(Seq=2, Stream="s1")))
    assert resyncs(sent(session)) == []
    assert session.receive(beat("e1", "s2")) == []                       # the same journal, another process
    session.receive(pub("TaskState", task_state(Seq=5, Stream="s2")))    # news on the new Stream
    assert len(resyncs(sent(session))) == 1, "a new Stream heard on the beat asked for no Resync"


def test_comms_beat_is_never_handed_back_and_tells_the_epoch():
    session, _ = make()
    epochs: list[tuple[str | None, str]] = []
    session.on_epoch = lambda old, new: epochs.append((old, new))
    assert session.receive(beat("e1", "s1")) == []
    assert not session.live                        # the beat is not our topic: nothing confirmed
    assert epochs == [(None, "e1")] and session.epoch == "e1"
    go_live(session)
    assert session.receive(beat("e1", "s1")) == []
    assert epochs == [(None, "e1")] and session.counts["comm_restarts"] == 0
    assert session.receive(beat("e2", "s2")) == []
    assert epochs == [(None, "e1"), ("e1", "e2")]
    assert session.counts["comm_restarts"] == 1
    assert session.receive(beat("e2", "s2")) == []
    assert len(epochs) == 2 and session.stats()["comm_epoch"] == "e2"
    # in a batch on the beat's topic too
    assert session.receive(codec.batch([beat("e2", "s2"), beat("e3", "s3")], topic=True)) == []
    assert epochs[-1] == ("e2", "e3") and session.counts["comm_restarts"] == 2


def test_resync_reset_sends_reset_and_is_not_counted():
    session, _ = make(held=lambda: ["b", "a"])
    go_live(session)
    request = session.resync(reset=True)
    assert request is not None
    (resync,), = [resyncs(sent(session))]
    assert resync["Reset"] is True and resync["TaskIds"] == ["a", "b"] and resync["Destination"] == DEST
    assert resync["MsgId"] == request.msg_id
    assert session.counts["resyncs"] == 0


# batches ------------------------------------------------------------------------------

def test_batches_subscribe_with_x01_and_are_handed_back_in_order():
    session, _ = make(batches=True)
    assert session.subscriptions == [DEST.encode() + b"\x01", codec.topic(HEARTBEAT_TOPIC)]
    go_live(session)
    inner = [pub("TaskState", task_state(f"t{n}", Seq=n, Stream="s1")) for n in range(1, 6)]
    frames = codec.batch(inner, topic=True, as_topic=codec.batch_topic(DEST))
    assert frames[0] == DEST.encode() + b"\x01"
    got = session.receive(frames)
    assert [i.message.TaskId for i in got] == ["t1", "t2", "t3", "t4", "t5"]
    assert resyncs(sent(session)) == []


def test_no_batches_subscribe_with_x00():
    session, _ = make(batches=False)
    assert session.subscriptions == [DEST.encode() + b"\x00", b"mroute.comm\x00"]


def test_a_batch_can_answer_and_make_live():
    session, _ = make(batches=True)
    session.tick()
    (_, probe), = sent(session)
    request = session.request("GetTaskState", {"TaskId": "t9"})
    sent(session)
    frames = codec.batch([
        pub("AgentState", {"AgentId": "agent1", "State": S.LOGOUT, "Mrd": "chat",
                           "StateChangeTime": "2026-01-01T00:00:00Z", "MsgId": probe["MsgId"]}),
        pub("TaskState", task_state("t9", MsgId=request.msg_id)),
    ], topic=True, as_topic=codec.batch_topic(DEST))
    got = session.receive(frames)
    assert session.live
    assert [(i.message.type, i.answers) for i in got] == [("TaskState", request)]


# what does not read as the catalogue says -----------------------------------------------

@pytest.mark.parametrize("bad", [
    pytest.param(lambda: pub("TaskState", {"State": S.QUEUED, "MRD": "chat"}), id="TaskState-without-TaskId"),
    pytest.param(lambda: [codec.topic(DEST), b"TaskState", b"{not json"], id="body-not-json"),
    pytest.param(lambda: [codec.topic(DEST), b"TaskState", b"[1, 2]"], id="body-not-object"),
    pytest.param(lambda: pub("TaskState", task_state(MsgId=7)), id="MsgId-not-string"),
    pytest.param(lambda: pub("Snapshot", snapshot("x", Tasks={})), id="Tasks-not-list"),
    pytest.param(lambda: [codec.topic(DEST), b"Task State", b"{}"], id="type-not-a-name"),
])
def test_a_message_that_does_not_read_is_dropped_and_counted(bad):
    session, _ = make()
    go_live(session)
    assert session.receive(bad()) == []
    assert session.counts["bad_messages"] == 1
    # not in a batch either, and the rest of the batch is handed back
    inner = [pub("TaskState", task_state("t1")), bad(), pub("TaskState", task_state("t2"))]
    got = session.receive(codec.batch(inner, topic=True, as_topic=codec.topic(DEST)))
    assert [i.message.TaskId for i in got] == ["t1", "t2"]
    assert session.counts["bad_messages"] == 2


def test_a_bad_message_does_not_make_it_live():
    session, _ = make()
    session.tick()
    sent(session)
    assert session.receive([codec.topic(DEST), b"TaskState", b"nope"]) == []
    assert not session.live and session.counts["bad_messages"] == 1


def test_a_type_the_catalogue_does_not_name_is_handed_back_as_other():
    session, _ = make()
    go_live(session)
    got = session.receive(pub("FutureThing", {"Anything": [1, 2], "Seq": 1, "Stream": "s1"}))
    assert len(got) == 1
    message = got[0].message
    assert isinstance(message, messages.Other)
    assert message.type == "FutureThing" and message.body["Anything"] == [1, 2] and message.Seq == 1


# typed access ------------------------------------------------------------------------

def test_a_task_state_is_typed():
    session, _ = make()
    go_live(session)
    (incoming,) = session.receive(pub("TaskState", task_state("t7", S.ACTIVE, Seq=4, Stream="s1",
                                                              Extra="kept")))
    message = incoming.message
    assert isinstance(message, messages.TaskState)
    assert message.TaskId == "t7" and message.State == S.ACTIVE and message.Seq == 4 and message.MRD == "chat"
    assert message.Stream == "s1" and message.get("Extra") == "kept"
    assert message.AgentId is None and message.Code is None and message.MsgId is None


def test_the_mrd_key_is_spelt_as_the_catalogue_spells_it():
    session, _ = make()
    go_live(session)
    (incoming,) = session.receive(pub("TaskState", {"TaskId": "t1", "State": S.QUEUED, "Mrd": "chat"}))
    assert incoming.message.MRD == "chat"


# our heartbeat -------------------------------------------------------------------------

def test_beat_once_live_every_heartbeat_interval():
    session, clock = make(beat=True)
    for dt in (0.0, PROBE_EVERY, 2 * PROBE_EVERY):
        clock.at(T0 + dt)
        session.tick()
    assert [t for t, _ in sent(session)] == ["GetAgentState"] * 3     # no beat before live
    live_at = clock.at(T0 + 3 * PROBE_EVERY)
    go_live(session)
    beats = []
    for dt in (0.0, 0.5, HEARTBEAT_INTERVAL - 0.01, HEARTBEAT_INTERVAL, 1.5, 2 * HEARTBEAT_INTERVAL):
        clock.at(live_at + dt)
        session.tick()
        out = sent(session)
        assert all(t == "Heartbeat" for t, _ in out)
        beats += [(dt, body) for _, body in out]
    assert [dt for dt, _ in beats] == [0.0, HEARTBEAT_INTERVAL, 2 * HEARTBEAT_INTERVAL]
    assert all(body["Destination"] == DEST for _, body in beats)


def test_no_beat_when_beat_is_false():
    session, clock = make(beat=False)
    go_live(session)
    for n in range(1, 20):
        clock.at(T0 + n * HEARTBEAT_INTERVAL / 2)
        session.tick()
    assert sent(session) == []


# property: every answer handed back once ------------------------------------------------

ANSWERS = st.sampled_from(["answer", "error", "unavailable"])


@given(n=st.integers(1, 5), data=st.data())
def test_each_request_is_handed_back_at_most_once(n, data):
    session, clock = make(batches=data.draw(st.booleans(), label="batches"))
    go_live(session)
    topic = session.subscriptions[0]
    requests = [session.request("GetTaskState", {"TaskId": f"t{i}"}) for i in range(n)]
    # what Comm sends back: for each request some answers, Errors and UNAVAILABLEs, each
    # maybe several times (our resends crossed them), all in any order, some in batches
    deliveries: list[tuple[int, str]] = []
    for i in range(n):
        kinds = data.draw(st.lists(ANSWERS, max_size=4), label=f"answers to {i}")
        deliveries += [(i, kind) for kind in kinds]
    deliveries = data.draw(st.permutations(deliveries), label="order")

    def frames_of(i: int, kind: str) -> list[bytes]:
        msg_id = requests[i].msg_id
        if kind == "answer":
            body = task_state(f"t{i}", MsgId=msg_id)
            return [topic, b"TaskState", orjson.dumps(body)]
        code = S.UNAVAILABLE if kind == "unavailable" else S.NOT_FOUND
        return [topic, b"Error", orjson.dumps(error(code, msg_id, Type="GetTaskState"))]

    handed: list[Incoming] = []
    rest = list(deliveries)
    while rest:
        size = data.draw(st.integers(1, min(3, len(rest))), label="batch size")
        chunk, rest = rest[:size], rest[size:]
        if size == 1:
            handed += session.receive(frames_of(*chunk[0]))
        else:
            handed += session.receive(codec.batch([frames_of(*d) for d in chunk], topic=True, as_topic=topic))
        if data.draw(st.booleans(), label="tick"):
            clock.advance(RESEND_AFTER)
            session.tick()

    assert all(i.answers is not None for i in handed)          # no answer passes for news
    for i, request in enumerate(requests):
        times = sum(1 for incoming in handed if incoming.answers is request)
        answered = any(kind != "unavailable" for j, kind in deliveries if j == i)
        assert times == (1 if answered else 0), (i, deliveries)
        assert (request.msg_id in session.pending) == (not answered)
    assert session.counts["bad_messages"] == 0


# the generated quick check (messages.X.valid) against codec.check, the reference ------------
ABSENT = object()
# what a field may be set to (each as likely as the others): the classes JSON has, and strings
# on each side of the lines codec.check draws (empty, NUL, past 256 characters)
FIELD_VALUES = st.sampled_from([ABSENT, None, "", "x", "chat", "a\x00b", "d" * 257, -1, 0, 1, True, False, [],
                                [["k", "v"]], {}, {"k": 1}])


GOOD = {"string": "x", "list": [], "object": {}, "boolean": True, "integer": 1}


def bodies_for(spec):
    """A body that passes (each required field of its kind), with up to three fields set to
    anything or taken away: most draws sit next to the line between valid and not."""
    from wire.catalogue import ENVELOPE, MRD_SPELLINGS
    good = {name: GOOD.get(spec.kind(name), "x") for name in spec.required}
    names = sorted({*spec.required, *spec.optional, *ENVELOPE, *MRD_SPELLINGS, "Seq"})
    change = st.tuples(st.sampled_from(names), FIELD_VALUES)

    def changed(changes):
        body = dict(good)
        for name, value in changes:
            if value is ABSENT:
                body.pop(name, None)
            else:
                body[name] = value
        return body
    return st.lists(change, max_size=3).map(changed)


@pytest.mark.parametrize("type", sorted(PUBLISHED))
@settings(max_examples=400)   # a few ms each: the draws that matter are a few of a field's changes
@given(data=st.data())
def test_a_messages_quick_check_passes_exactly_what_codec_check_passes_unchanged(type, data):
    """wire/messages.py's `valid` (generated, one expression) spares the receive path codec.check's
    walk: it must say True exactly when codec.check passes the body and changes nothing
    (False: codec.check runs and says what is wrong, or mends the MRD's spelling)."""
    spec = PUBLISHED[type]
    body = data.draw(bodies_for(spec))
    checked = dict(body)
    try:
        codec.check(spec, checked)
        passes_unchanged = checked == body
    except codec.WireError:
        passes_unchanged = False
    assert messages.BY_TYPE[type].valid(body) is passes_unchanged, body


def test_every_message_comm_publishes_in_its_usual_form_is_passed_by_the_quick_check():
    usual = {
        "TaskState": {"TaskId": "t1", "State": "CLOSED", "MRD": "chat", "Code": "", "Seq": 3, "Stream": "s"},
        "AgentState": {"AgentId": "a", "State": "READY", "Mrd": "chat", "StateChangeTime": "2026-12-06T00:00:00Z",
                       "MsgId": "m1", "Seq": 1, "Stream": "s"},
        "TaskAgentSelected": {"TaskId": "t1", "AgentId": "a", "Status": "RESERVED", "MRD": "chat", "Seq": 2},
        "Heartbeat": {"Epoch": "e", "Stream": "s"},
        "Snapshot": {"Destination": "chat.1", "Agents": [], "Tasks": [], "Unknown": [], "MsgId": "m2"},
        "Error": {"Code": "NOT_FOUND", "Reason": "no such task", "Type": "TaskState", "MsgId": "m3"},
    }
    for type, body in usual.items():
        assert messages.BY_TYPE[type].valid(body), type


# client-side throttling (wire/throttle.py) ----------------------------------------------

def test_a_throttled_session_refuses_new_tasks_itself_while_comm_refuses_them():
    from wire.codec import WireError
    from wire.throttle import Throttle
    session, clock = make(throttle=Throttle(1.1, rand=lambda: 0.0))  # refuses whenever the chance is above 0
    go_live(session)
    request = session.request("Task", {"Mrd": "chat", "ClientUniqueId": "c"})
    got = session.receive(pub("Error", error(S.OVERLOADED, request.msg_id, Type="Task")))   # Comm refuses it
    assert got[0].answers is request and session.throttle.refusals == 1
    sent(session)
    with pytest.raises(WireError) as refused:
        session.request("Task", {"Mrd": "chat", "ClientUniqueId": "c"})
    assert refused.value.code == S.OVERLOADED and refused.value.type == "Task"
    assert sent(session) == [] and session.stats()["throttled"] == 1
    # what is not a new Task is never held back: a desk's acceptance must reach Comm
    session.request("TaskState", {"TaskId": "t1", "State": S.ACTIVE, "AgentId": "a"})
    assert [type for type, _ in sent(session)] == ["TaskState"]


def test_a_throttled_session_counts_a_task_comm_took_and_does_not_refuse_then():
    from wire.throttle import Throttle
    session, clock = make(throttle=Throttle(1.1, rand=lambda: 0.0))
    go_live(session)
    for number in range(20):
        request = session.request("Task", {"Mrd": "chat", "ClientUniqueId": f"c{number}"})
        session.receive(pub("TaskState", task_state(f"t{number}", MsgId=request.msg_id)))
    assert session.throttle.accepts == 20 and session.throttle.refusal_chance(clock.clock()) == 0.0
    session.request("Task", {"Mrd": "chat", "ClientUniqueId": "c"})   # sent, not raised
    assert session.stats()["throttled"] == 0


def test_an_unthrottled_session_sends_every_task_whatever_comm_says():
    session, clock = make()
    go_live(session)
    for _ in range(20):
        request = session.request("Task", {"Mrd": "chat", "ClientUniqueId": "c"})
        session.receive(pub("Error", error(S.OVERLOADED, request.msg_id, Type="Task")))
    sent(session)
    session.request("Task", {"Mrd": "chat", "ClientUniqueId": "c"})
    assert [type for type, _ in sent(session)] == ["Task"]
