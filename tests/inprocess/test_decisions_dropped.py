"""An MRE decision lost on the way to Comm is late, never lost: the MRE numbers its
decisions and sends again what Comm has not confirmed; Comm applies each once, in order.

Comm and the MRE run here as plain objects (tests/harness.py) with the MRE's real
DecisionStream and Comm's real DecisionGate between them; the wire drops what the test says.
"""

from __future__ import annotations

from actors.comm.journal import Journal
from wire import codec, states as S

from ..harness import Harness


def lossy_harness(drop, confirm=True):
    """A harness whose MRE decisions pass through its decision stream, `drop(type, body)` deciding
    which are lost on the wire; Comm's confirmations go back as a real Comm sends them
    (unless not `confirm`: a Comm that dies before it sends them)."""
    h = Harness(agents=2)
    h.lost = []

    def wire(type, body):
        if drop(type, body):
            h.lost.append((type, dict(body)))
        else:
            h.to_comm.append(codec.encode(type, body))
    h.decisions.send = wire
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
    assert not h.decisions.unconfirmed  # Comm confirmed it


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
    assert len(h.published_of("TaskAgentSelected", TaskId=first)) == 2 and not h.decisions.unconfirmed


def test_a_comm_restarted_from_its_journal_knows_the_decisions_it_applied(tmp_path):
    """Found by review: where each MRE stream stands was not journaled, so a Comm killed
    after applying a decision but before confirming it took the MRE's resend as new."""
    h = lossy_harness(lambda type, body: False, confirm=False)
    h.login("a0")
    task = h.task()
    assert h.comm.tasks.live[task].owner == "a0" and h.decisions.unconfirmed
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
    assert h.confirms == [{"Decisions": h.decisions.stream, "Through": 1}] * 2


def test_an_offer_in_flight_across_a_logout_and_login_is_not_forgotten_by_the_mre():
    """Issue 25, 2: after a restart the simulated Chat Servers log their agents out and in
    again (Connect Reset). The MRE had offered a task to an agent just before; Comm, which
    had the agent logged in again by then, made the offer; the MRE, told of the logout,
    forgot the agent's offer with the agent and offered it the next task, which Comm refused
    ("has ... on offer"), again and again: 1,688-1,947 refusals within 5 s."""
    h = Harness(agents=2)
    h.login("a0")
    first = "Task"
    h.comm.request(first, {"Mrd": "chat", "ClientUniqueId": "c1", "ReplyTo": "web", "MsgId": "t1"})
    while h.to_mre:  # the MRE hears of the task and decides: its decision is on its way to Comm
        type, body = codec.decode(h.to_mre.popleft(), "RoutingEngine")
        h.mre_handlers[type](body)
    in_flight = list(h.to_comm)
    h.to_comm.clear()
    assert [codec.decode(f, "CommunicationServer")[0] for f in in_flight] == ["TaskAgentSelected"]
    # meanwhile the desk starts again: its agent out and in again, READY
    for type, body in (("Connect", {"AgentId": "a0", "Password": "pw", "Destination": "desk-a0", "Reset": True}),
                       ("Login", {"AgentId": "a0", "Password": "pw", "Mrd": "chat"}),
                       ("AgentState", {"AgentId": "a0", "State": "READY", "Mrd": "chat"})):
        h.comm.request(type, h.from_desk(body))
    h.to_comm.extend(in_flight)   # Comm takes the decision after all that: the agent is READY, it offers
    h.pump()
    task = next(t for t in h.comm.tasks.live.values() if t.client_id == "c1")
    assert h.offer_of("a0") == task.task_id
    h.task(client="c2")          # the next task is not offered to a0, who has an offer already
    assert h.comm.tasks.counters["offers_refused"] == 0
    h.send("TaskState", {"TaskId": task.task_id, "AgentId": "a0", "State": "ACTIVE"})
    assert h.comm.tasks.counters["offers_refused"] == 0


def test_a_drift_comm_sees_in_a_refused_offer_is_mended_by_one_snapshot():
    """Whatever made the MRE lose track of an agent's offer, the first offer Comm refuses
    for it sends the MRE Comm's view whole (at most once a second), not the task back to be
    offered to the same agent again and again."""
    h = Harness(agents=2)
    h.login("a0")
    offered = h.task(client="c1")
    assert h.offer_of("a0") == offered
    router = h.mre.routers["chat"]
    router.agents["a0"].offer = None   # the MRE forgets it, however that happens
    h.mre.reindex(router, router.agents["a0"])
    h.task(client="c2")
    # (the MRE offers it once more before the snapshot reaches it: that one is refused too)
    assert h.comm.tasks.counters["offers_refused"] <= 2 and h.comm.tasks.counters["snapshots_sent"] == 1
    assert router is not h.mre.routers["chat"] and h.mre.routers["chat"].agents["a0"].offer == offered


def test_a_decision_made_before_a_snapshot_comm_sent_unasked_is_not_applied_after_it():
    """The MRE forgets what it decided before a snapshot it is sent unasked (Comm's start, an
    undone write, a drift): such a decision reaching Comm after the snapshot was built would
    be in neither view. Comm refuses it (`decisions_late`); the MRE decides again."""
    h = Harness(agents=2)
    h.login("a0")
    h.comm.request("Task", {"Mrd": "chat", "ClientUniqueId": "c1", "ReplyTo": "web", "MsgId": "t1"})
    while h.to_mre:   # the MRE decides: its decision is on its way
        type, body = codec.decode(h.to_mre.popleft(), "RoutingEngine")
        h.mre_handlers[type](body)
    in_flight = list(h.to_comm)
    h.to_comm.clear()
    h.comm.mre.drifted("a drift, for the test")     # a snapshot, unasked, built before the decision arrives
    h.to_comm.extend(in_flight)
    h.pump()
    task = next(t for t in h.comm.tasks.live.values() if t.client_id == "c1")
    assert h.comm.gate.late == 1                   # the decision from before the snapshot: refused
    assert h.offer_of("a0") == task.task_id        # decided again from the snapshot, and made
    assert h.comm.tasks.counters["offers_refused"] == 0
