"""Comm's task counters say what they count, and add up (issue 25, 3: after a restart
tasks_accepted 78 > tasks_created 40; a queue with accepted 1,365 > created 1,314; after a
failed commit tasks_created one above closed + live). They count over the journal's life,
and tasks_routed and tasks_accepted count tasks, each once, however often it was offered or
accepted again (offers and tasks_requeued count the events)."""

from __future__ import annotations

from actors.comm.journal import Journal
from wire import states as S

from ..harness import Harness


def invariants(h: Harness) -> dict:
    stats = h.comm.stats()
    assert stats["tasks_created"] == stats["tasks_closed"] + stats["tasks_live"]
    assert stats["tasks_created"] >= stats["tasks_routed"] >= stats["tasks_accepted"]
    assert stats["offers"] >= stats["tasks_routed"]
    for name, queue in stats["queues"].items():
        if "created" in queue:   # (a queue no task ever came to shows what waits only)
            assert queue["created"] >= queue["accepted"] + queue["left"], name
            assert queue["wait"]["count"] <= queue["accepted"] + queue["left"], name
    return stats


def test_a_task_offered_and_accepted_again_counts_once_and_a_restart_counts_on(tmp_path):
    h = Harness(agents=2)
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock)
    h.login("a0")
    first = h.task(client="c1")
    h.send("TaskState", {"TaskId": first, "AgentId": "a0", "State": S.ACTIVE})
    h.send("AgentState", {"AgentId": "a0", "State": S.LOGOUT, "Mrd": "chat"})   # back to the queue
    h.login("a0")                                                               # offered and accepted again
    h.send("TaskState", {"TaskId": first, "AgentId": "a0", "State": S.ACTIVE})
    second = h.task(client="c2")
    h.advance(20)   # its offer runs out: RONA, offered again later
    stats = invariants(h)
    assert (stats["tasks_created"], stats["tasks_routed"], stats["tasks_accepted"]) == (2, 2, 1)
    assert stats["offers"] >= 3 and stats["tasks_requeued"] >= 2
    assert stats["queues"]["chat-default"]["accepted"] == 1
    journal.save(h.comm.take_changes())

    # a Comm restarted from its journal counts on from there: nothing counts back or twice
    before = stats
    h.comm.tasks.timers.cancel_all()
    h.comm = h.new_comm(saved=journal.load(), stream="s2")
    h.sync()
    after = invariants(h)
    for key in ("tasks_created", "tasks_routed", "tasks_accepted", "tasks_closed", "offers"):
        assert after[key] == before[key], key
    h.send("TaskState", {"TaskId": first, "AgentId": "a0", "State": S.CLOSED, "Code": S.DONE})
    assert h.comm.tasks.live[second].accepted is False
    stats = invariants(h)
    assert stats["tasks_closed"] == before["tasks_closed"] + 1
    journal.close()
