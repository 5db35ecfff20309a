"""The MRE's decision stream (spec 105): numbering, confirmation, go-back-N resend, reset
and bound, with a fake clock and timers and a list as the wire."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st

from actors.mre.decisions import RESEND_AFTER, RESEND_MAX, DecisionStream

from ..fakeclock import FakeClock


def decision_stream(**kwargs: Any) -> tuple[DecisionStream, FakeClock, list[tuple[str, dict]]]:
    time = FakeClock()
    wire: list[tuple[str, dict]] = []
    box = DecisionStream(lambda type, body: wire.append((type, dict(body))), time.call_later, clock=time.clock,
                         **kwargs)
    return box, time, wire


def selected(task: str) -> dict:
    return {"TaskId": task, "AgentId": "a1", "Status": "RESERVED"}


def seqs(wire: list[tuple[str, dict]]) -> list[int]:
    return [body["Seq"] for _, body in wire]


def test_decisions_are_numbered_in_one_stream_and_kept_until_confirmed():
    box, _, wire = decision_stream()
    box.emit("TaskAgentSelected", selected("t1"))
    box.emit("TaskAgentTransferred", {"TaskId": "t2", "AgentId": "a2", "PreviousAgentId": "a1"})
    box.emit("TaskConferenced", {"TaskId": "t3", "OwnerAgentId": "a1", "ParticipantAgentId": "a2"})
    assert [type for type, _ in wire] == ["TaskAgentSelected", "TaskAgentTransferred", "TaskConferenced"]
    assert seqs(wire) == [1, 2, 3]
    assert {body["Stream"] for _, body in wire} == {box.stream}
    assert wire[0][1]["TaskId"] == "t1" and wire[0][1]["AgentId"] == "a1"  # the decision itself is untouched
    assert box.stats()["unconfirmed"] == 3 and box.stats()["sent"] == 3
    assert box.confirm(box.stream, 2) == 2
    assert [d.seq for d in box.unconfirmed] == [3]
    assert box.confirm(box.stream, 2) == 0  # a repeated confirmation changes nothing
    assert box.confirm(box.stream, 3) == 1
    stats = box.stats()
    assert stats["unconfirmed"] == 0 and stats["confirmed"] == 3 and stats["seq"] == 3


def test_confirmed_decisions_are_not_sent_again():
    box, time, wire = decision_stream()
    box.emit("TaskAgentSelected", selected("t1"))
    box.confirm(box.stream, 1)
    time.advance(10 * RESEND_MAX)
    assert seqs(wire) == [1] and box.stats()["resent"] == 0
    assert not time.timers  # nothing unconfirmed: no timer left ticking


def test_resend_is_go_back_n_of_only_the_unconfirmed_in_order():
    box, time, wire = decision_stream()
    for n in range(1, 6):
        box.emit("TaskAgentSelected", selected(f"t{n}"))
        time.advance(0.05)
    box.confirm(box.stream, 2)  # 3 was lost: Comm dropped 4 and 5 as out of order
    wire.clear()
    time.advance(0.10 + RESEND_AFTER - time.now - 1e-9)  # t3 left at 0.10: not overdue yet
    assert wire == []
    time.advance(0.01)
    # everything unconfirmed from the oldest on, in order, 4 and 5 too although younger
    assert seqs(wire) == [3, 4, 5]
    assert [body["TaskId"] for _, body in wire] == ["t3", "t4", "t5"]
    assert box.stats()["resent"] == 3


def test_a_decision_made_after_a_resend_follows_it_and_waits_its_own_turn():
    box, time, wire = decision_stream()
    box.emit("TaskAgentSelected", selected("t1"))
    time.advance(RESEND_AFTER)
    box.emit("TaskAgentSelected", selected("t2"))
    assert seqs(wire) == [1, 1, 2]
    box.confirm(box.stream, 2)
    wire.clear()
    time.advance(10 * RESEND_MAX)
    assert wire == []


def test_resends_back_off_while_nothing_is_confirmed_and_recover_when_something_is():
    time = FakeClock()
    sent_at: list[float] = []
    box = DecisionStream(lambda type, body: sent_at.append(time.now), time.call_later, clock=time.clock)
    box.emit("TaskAgentSelected", selected("t1"))
    time.advance(30.0)
    gaps = [round(b - a, 6) for a, b in zip(sent_at, sent_at[1:])]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]  # a stuck Comm is not flooded
    box.emit("TaskAgentSelected", selected("t2"))
    box.confirm(box.stream, 1)  # Comm is back: the short wait again
    assert box.wait == RESEND_AFTER


def test_confirms_of_another_stream_are_ignored():
    box, _, _ = decision_stream()
    box.emit("TaskAgentSelected", selected("t1"))
    old = box.stream
    assert box.confirm("some-other-mre", 1) == 0
    box.reset()
    box.emit("TaskAgentSelected", selected("t2"))
    assert box.confirm(old, 5) == 0  # a confirmation from before the reset says nothing of the new stream
    assert len(box.unconfirmed) == 1 and box.stats()["foreign"] == 2


def test_reset_forgets_the_unconfirmed_and_numbers_afresh_on_a_new_stream():
    box, time, wire = decision_stream()
    for n in range(3):
        box.emit("TaskAgentSelected", selected(f"t{n}"))
    old = box.stream
    box.reset()
    assert box.stream != old and not box.unconfirmed and box.stats()["forgotten"] == 3
    wire.clear()
    box.emit("TaskAgentSelected", selected("again"))
    assert wire == [("TaskAgentSelected", {**selected("again"), "Seq": 1, "Stream": box.stream})]
    time.advance(RESEND_AFTER)
    assert seqs(wire) == [1, 1]  # only the new stream's decision is sent again
    assert len(time.timers) == 1  # the timer armed before the reset serves on: still one


def test_once_a_snapshot_is_asked_for_nothing_is_sent_until_it_is_applied():
    """Comm builds the snapshot when the request arrives: a decision arriving after it would
    be applied there and missing from the snapshot the engine then decides from."""
    box, time, wire = decision_stream()
    box.emit("TaskAgentSelected", selected("t1"))
    box.hold()
    box.emit("TaskAgentSelected", selected("t2"))
    time.advance(10 * RESEND_MAX)
    assert seqs(wire) == [1]  # neither the new decision nor a resend of the unconfirmed one
    assert box.stats()["held"] == 1 and box.stats()["resent"] == 0
    box.reset()
    box.emit("TaskAgentSelected", selected("t2 again"))
    assert wire[-1][1]["Seq"] == 1 and wire[-1][1]["Stream"] == box.stream
    time.advance(RESEND_AFTER)
    assert seqs(wire) == [1, 1, 1]  # and resends resume


def test_past_the_bound_decisions_are_counted_not_kept_and_a_snapshot_is_asked_once():
    asked: list[str] = []
    box, _, wire = decision_stream(kept_max=3, on_full=asked.append)
    for n in range(6):
        box.emit("TaskAgentSelected", selected(f"t{n}"))
    assert seqs(wire) == [1, 2, 3]  # nothing numbered past the bound: no gap in the stream
    assert len(box.unconfirmed) == 3 and box.stats()["overflowed"] == 3
    assert len(asked) == 1  # asking again would make the snapshot on its way stale
    box.confirm(box.stream, 1)
    box.emit("TaskAgentSelected", selected("room again"))
    assert seqs(wire) == [1, 2, 3, 4]
    box.reset()
    for n in range(4):
        box.emit("TaskAgentSelected", selected(f"u{n}"))
    assert len(asked) == 2  # a new episode after the snapshot asks again


# --- property: whatever is lost, every decision is applied exactly once, in order -------

class InOrderReceiver:
    """Comm's side as the contract states it: apply the next number only, confirm through
    the last applied on every decision received (a duplicate too: its confirm may have been
    the one lost)."""

    def __init__(self) -> None:
        self.stream: str | None = None
        self.last = 0
        self.applied: list[str] = []

    def receive(self, body: dict) -> tuple[str, int]:
        if body["Stream"] != self.stream and body["Seq"] == 1:
            self.stream, self.last = body["Stream"], 0
        if body["Stream"] == self.stream and body["Seq"] == self.last + 1:
            self.last += 1
            self.applied.append(body["TaskId"])
        return self.stream or "", self.last


@settings(max_examples=300)
@given(decisions=st.integers(1, 40),
       steps=st.lists(st.sampled_from(["emit", "deliver", "confirm", "tick"]), max_size=150),
       losses=st.lists(st.booleans(), max_size=300))
def test_any_pattern_of_losses_ends_with_every_decision_applied_once_in_order(decisions, steps, losses):
    """Decisions and confirmations travel on lists; each one may be lost while `losses`
    lasts (then the network heals). Steps interleave making decisions, delivering what is on
    the wire, returning confirmations and letting time pass; then time runs on."""
    time = FakeClock()
    to_comm: list[dict] = []
    to_mre: list[tuple[str, int]] = []
    box = DecisionStream(lambda type, body: to_comm.append(dict(body)), time.call_later, clock=time.clock)
    comm = InOrderReceiver()
    lost = iter(losses)
    made = 0

    def deliver() -> None:
        for body in to_comm:
            if not next(lost, False):
                to_mre.append(comm.receive(body))
        to_comm.clear()

    def confirm() -> None:
        for stream, through in to_mre:
            if not next(lost, False):
                box.confirm(stream, through)
        to_mre.clear()

    def emit() -> None:
        nonlocal made
        if made < decisions:
            made += 1
            box.emit("TaskAgentSelected", selected(f"t{made}"))

    actions = {"emit": emit, "deliver": deliver, "confirm": confirm, "tick": lambda: time.advance(0.2)}
    for step in steps:
        actions[step]()
    while made < decisions:
        emit()
    for _ in range(200):  # time runs on, the losses run out, the network delivers
        deliver()
        confirm()
        if not box.unconfirmed:
            break
        time.advance(RESEND_MAX)
    assert comm.applied == [f"t{n}" for n in range(1, decisions + 1)]
    assert not box.unconfirmed and box.stats()["confirmed"] == decisions
