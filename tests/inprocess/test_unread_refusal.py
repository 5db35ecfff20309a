"""A Task that waited at Comm's door past its budget is refused from its bytes, unread, when
they say plainly who sent it (issue 28: at twice the peak, decoding the Tasks refused so
was a twentieth of Comm's time). What they must say, and what sends it the whole way."""

from __future__ import annotations

from collections import deque

import orjson
import zmq

from actors.comm.checks import PasswordChecks
from actors.comm.core import CommCore
from actors.comm.intake import Intake
from actors.comm.journal import Journal
from actors.comm.storage import Storage
from actors.comm.task_requests import stated_sender
from actors.comm.turn import Turn
from actors.lograte import LogBudget
from actors.sending import Sender
from wire.kernel.loop import Loop

from .test_storage_faults import limit_pages


def task(**fields: object) -> bytes:
    return orjson.dumps({"Mrd": "chat", "ClientUniqueId": "c1", **fields})


def test_a_sender_stated_plainly_once_is_read_from_the_bytes():
    assert stated_sender(task(ReplyTo="chat.1", MsgId="m-1")) == ("chat.1", "m-1")
    assert stated_sender(b'{"MsgId" : "m-2", "ReplyTo":  "chat.2.desk", "Mrd": "chat"}') == ("chat.2.desk", "m-2")


def test_a_sender_not_stated_plainly_once_sends_the_task_the_whole_way():
    assert stated_sender(task(MsgId="m-1")) is None                     # no ReplyTo
    assert stated_sender(task(ReplyTo="chat.1")) is None                # no MsgId
    assert stated_sender(b'{"ReplyTo": "ch\\"at", "MsgId": "m"}') is None        # an escape in it
    assert stated_sender(task(ReplyTo="x" * 300, MsgId="m")) is None   # longer than a destination may be
    # the key elsewhere too (in params): which one is the sender's is the decoder's to say
    assert stated_sender(task(ReplyTo="chat.1", MsgId="m", params={"ReplyTo": "chat.9"})) is None
    assert stated_sender(task(ReplyTo="chat.1", MsgId="m", params=[["MsgId", "x"]])) is None
    # a key only inside an object within it is not the sender's; nor one that names a Destination
    assert stated_sender(task(MsgId="m", params={"ReplyTo": "chat.9"})) is None
    assert stated_sender(task(ReplyTo="chat.1", MsgId="m", Destination="chat.9")) is None


def test_the_refusal_unread_is_the_doors_own_and_counted_once():
    cpu, wake = [0.0], [1]
    intake = Intake(lambda: wake[0], stale_after=0.025, clock=lambda: cpu[0])
    core = CommCore({}, {"chat": {"max_tasks": 1, "interruptible": True}}, send_event=print, send_mre=print,
                    stream="s", intake=intake)
    refused: list[tuple[list[bytes], str | None]] = []
    intake.refuse_unread = lambda frames, peer: refused.append((frames, peer)) is None
    taken: list[list[bytes]] = []
    intake.take = lambda frames, peer: taken.append(frames)
    intake.keep([b"Task", task(ReplyTo="chat.1", MsgId="old")], "chat")
    cpu[0] += 0.030   # past the budget: offered unread first
    wake[0] += 1      # read in a later wake-up: read now
    intake.keep([b"Task", task(ReplyTo="chat.1", MsgId="fresh")], "chat")
    intake.handle(slice_s=60.0)
    assert [frames[1] for frames, _ in refused] == [task(ReplyTo="chat.1", MsgId="old")] and refused[0][1] == "chat"
    assert taken == [[b"Task", task(ReplyTo="chat.1", MsgId="fresh")]]   # a fresh one is taken, never refused unread
    error = core.admission.waited_too_long(intake, type="Task", msg_id="old", reply_to="chat.1")
    assert (error.code, error.msg_id, error.reply_to, core.admission.refused) == ("OVERLOADED", "old", "chat.1", 1)
    assert "waited" in error.reason and "comm.admission_budget (25 ms)" in error.reason


def test_a_task_refused_unread_in_a_turn_that_is_undone_is_read_again_and_answered(tmp_path):
    """The turn's commit fails: what it would have sent is dropped, the refusal unread with it.
    The Task is then read the whole way (answered UNAVAILABLE, or as the reloaded Comm
    sees it), never left without an answer."""
    ctx, loop = zmq.Context(), Loop()
    storage = Storage(Journal(tmp_path / "comm.sqlite"))
    storage.load()
    intake = Intake(lambda: 1, stale_after=0.025)
    published: list[list[bytes]] = []
    core = CommCore({"a0": {"password_hash": "", "extension": ""}}, {"chat": {"max_tasks": 1, "interruptible": True}},
                    send_event=published.append, send_mre=published.append, stream="s", intake=intake,
                    unavailable=lambda: storage.reason)
    sender, mre, checks = Sender("comm.1", loop, {}), ctx.socket(zmq.PUSH), PasswordChecks(ctx, {}, print)
    try:
        turn = Turn("comm.1", core, storage, sender, mre, intake, checks, loop, refuse=core.refuse,
                    after_revert=lambda: None, counters={}, refusal_lines=LogBudget(), trace=deque())
        taken: list[tuple[list[bytes], str | None]] = []
        intake.take = lambda frames, peer: taken.append((frames, peer))
        stale = [b"Task", task(ReplyTo="chat.1", MsgId="late")]
        turn.unread.append((stale, None))                              # refused unread this turn ...
        sender.outbox.append((mre, [b"Error", b"{}"]))                 # ... its Error waiting for the flush
        for n in range(2000):                                          # and changes to journal ...
            core.request("Heartbeat", {"Destination": f"desk-{n}"})    # (2,000 desks watched from now on)
        limit_pages(storage.journal, 0)                                # ... which cannot be written
        turn.commit()
        assert storage.failure and sender.outbox == [] and turn.unread == []
        assert taken == [(stale, None)]    # read again, the whole way: its answer is the full path's
    finally:
        checks.close()
        mre.close(0)
        storage.journal.close()
        ctx.term()
