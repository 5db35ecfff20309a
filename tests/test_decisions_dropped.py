"""An MRE decision lost on the way to Comm is late, never lost: the MRE numbers its
decisions and sends again what Comm has not confirmed; Comm applies each once, in order.

Comm and the MRE run here as plain objects (tests/harness.py) with the MRE's real
DecisionOutbox and Comm's real DecisionGate between them; the wire drops what the test says.
"""

from __future__ import annotations

from actors.comm.journal import Journal
from wire import codec, states as S

from .harness import Harness


def lossy_harness(drop, confirm=True):
    """A harness whose MRE decisions pass through the outbox, `drop(type, body)` deciding
    which are lost on the wire; Comm's confirmations go back as a real Comm sends them
    (unless not `confirm`: a Comm that dies before it sends them)."""
    h = Harness(agents=2)
    h.lost = []

    def wire(type, body):
        if drop(type, body):
            h.lost.append((type, dict(body)))
        else:
            h.to_comm.append(codec.encode(type, body))
    h.outbox.send = wire
    h.confirms = []
    if not confirm:  # what Comm confirms is kept here, not given to the MRE
        h.mre_handlers["Confirm"] = h.confirms.append
    return h


def test_a_dropped_selection_is_sent_again_and_the_task_offered():
    dropped = []

    def drop_first_selection(type, body):
        if type == "TaskAgentSelected" and not dropped:
            dropped.append(body["Seq"])
            return True
        return False
    h = lossy_harness(drop_first_selection)
    h.login("a0")
    task = h.task()
    assert dropped and h.comm.tasks.live[task].state == S.QUEUED  # the MRE chose; Comm never heard
    assert h.mre.tasks[task].offered_to == "a0"                   # and the MRE holds the offer
    h.advance(1.0)                                                 # the MRE's resend is due
    h.pump()
    assert h.comm.tasks.live[task].state == S.RESERVED and h.offer_of("a0") == task
    assert h.published_of("TaskAgentSelected", TaskId=task, AgentId="a0")
    assert not h.outbox.unconfirmed  # Comm confirmed it


def test_decisions_after_a_lost_one_wait_for_it_and_each_is_applied_once():
    seen = []

    def drop_the_first_of_two(type, body):
        seen.append(body["Seq"])
        return len(seen) == 1
    h = lossy_harness(drop_the_first_of_two)
    h.login("a0")
    h.login("a1")
    first, second = h.task(client="c1"), h.task(client="c2")
    # the second decision arrived first: Comm waits for the first rather than skip it
    assert all(h.comm.tasks.live[t].state == S.QUEUED for t in (first, second))
    assert h.comm.gate.early == 1
    h.advance(1.0)
    h.pump()
    assert {h.comm.tasks.live[t].owner for t in (first, second)} == {"a0", "a1"}
    assert len(h.published_of("TaskAgentSelected", TaskId=first)) == 2   # to the creator and to the agent's desk
    h.advance(5.0)  # nothing unconfirmed is left to send: no decision applied twice
    h.pump()
    assert len(h.published_of("TaskAgentSelected", TaskId=first)) == 2 and not h.outbox.unconfirmed


def test_a_comm_restarted_from_its_journal_knows_the_decisions_it_applied(tmp_path):
    """Found by review: where each MRE stream stands was not journaled, so a Comm killed
    after applying a decision but before confirming it took the MRE's resend as new."""
    h = lossy_harness(lambda type, body: False, confirm=False)
    h.login("a0")
    task = h.task()
    assert h.comm.tasks.live[task].owner == "a0" and h.outbox.unconfirmed
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock)
    journal.save(h.comm.take_changes())  # what the decision changed is on disk; the Confirm never left
    h.comm.tasks.timers.cancel_all()
    h.comm = h.new_comm(saved=journal.load(), stream="s2")
    h.comm.resume()
    h.to_mre.clear()
    h.advance(1.0)  # the MRE sends its unconfirmed decision again
    h.pump()
    assert h.comm.gate.repeated == 1 and h.comm.tasks.live[task].owner == "a0"
    assert not [f for f in h.to_mre if f[0] == b"Snapshot"]  # nothing looked like drift
    # confirmed once by the first Comm (the message was lost with it), again by the restarted one
    assert h.confirms == [{"Decisions": h.outbox.stream, "Through": 1}] * 2
