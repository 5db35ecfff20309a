"""Nothing lost when a process dies: Comm's journal, and the MRE rebuilt from Comm."""

from __future__ import annotations

from actors.comm.journal import Journal

from ..harness import Harness


def comparable(snapshot):
    """A snapshot without the waited times, which move on with the clock, and the stream it
    names for the MRE's decisions, new in each."""
    tasks = sorted(snapshot["Tasks"], key=lambda t: t["TaskId"])
    return {**{k: v for k, v in snapshot.items() if k != "Decisions"}, "Agents": sorted(snapshot["Agents"], key=lambda a: (a["AgentId"], a["MRD"])),
            "Tasks": [{k: v for k, v in t.items() if k != "Waited"} for t in tasks]}


def test_the_journal_gives_back_the_state_it_was_given(tmp_path):
    h = Harness(agents=4)
    for agent in ("a0", "a1", "a2"):
        h.login(agent, ready=agent != "a2")
    held = h.task(client="c1")
    offered = h.task(client="c2")
    h.send("TaskState", {"TaskId": held, "AgentId": h.comm.tasks.live[held].owner, "State": "ACTIVE"})
    h.task(client="c3")
    h.task(client="c4")  # a0 and a1 take two each (max 2): one still waits
    assert {t.state for t in h.comm.tasks.live.values()} == {"ACTIVE", "RESERVED", "QUEUED"}
    assert h.comm.tasks.live[offered].state == "RESERVED"

    h.comm.ledger.remember("m1", held)
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock)
    journal.save(h.comm.take_changes())
    journal.close()
    again = Journal(tmp_path / "comm.sqlite", clock=h.clock)
    state = again.load()
    assert state is not None and state.seen["m1"] == held
    reloaded = h.new_comm(saved=state)
    assert comparable(reloaded.snapshot()) == comparable(h.comm.snapshot())
    # ids go on, never repeat
    assert (reloaded.tasks.prefix, reloaded.tasks.number) == (h.comm.tasks.prefix, h.comm.tasks.number)

    # what was deleted stays deleted
    h.send("TaskState", {"TaskId": held, "AgentId": h.comm.tasks.live[held].owner, "State": "CLOSED"})
    again.save(h.comm.take_changes())
    state = again.load()
    assert held not in state.tasks and state.closed[held].state == "CLOSED"  # kept to answer questions


def test_a_silent_chat_servers_agents_go_unknown_then_out_and_their_tasks_go_back():
    h = Harness(agents=3)
    h.comm.desks.logout_grace = 5.0
    for agent in ("a0", "a1"):
        h.login(agent)
    h.send("Heartbeat", {"Destination": "desk-a0"})  # a0's desk beats; a1's never did
    task = h.task()
    owner = h.comm.tasks.live[task].owner
    h.send("TaskState", {"TaskId": task, "AgentId": owner, "State": "ACTIVE"})
    assert owner == "a0"  # LONGEST_AVAILABLE: a0 has been READY longest
    for _ in range(3):
        h.advance(1.0)
        h.comm.desks.check()
        h.pump()
    assert h.state("a0") == "ACTIVE"  # 3 s: not yet
    h.advance(1.0)
    h.comm.desks.check()
    h.pump()
    assert h.state("a0") == "UNKNOWN" and h.state("a1") == "READY"
    assert h.mre.routers["chat"].agents["a0"].state == "UNKNOWN"  # the MRE offers it nothing
    h.send("Heartbeat", {"Destination": "desk-a0"})  # back within the grace period
    assert h.state("a0") == "ACTIVE" and h.comm.tasks.live[task].owner == "a0"
    for _ in range(10):  # silent for good
        h.advance(1.0)
        h.comm.desks.check()
        h.pump()
    assert h.state("a0") == "LOGOUT"
    requeued = h.published_of("TaskState", TaskId=task, State="QUEUED", Code="AGENT_LOGOUT")
    assert requeued and h.comm.tasks.live[task].owner == "a1"  # and offered to the agent still there


def test_a_chat_server_that_dies_while_comm_is_down_is_still_noticed(tmp_path):
    """Which Chat Servers beat is journaled: a restarted Comm gives them a fresh timeout."""
    h = Harness(agents=2)
    h.comm.desks.logout_grace = 2.0
    h.login("a0")
    h.send("Heartbeat", {"Destination": "desk-a0"})
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock)
    journal.save(h.comm.take_changes())
    restarted = h.new_comm(saved=journal.load())
    restarted.desks.logout_grace = 2.0
    restarted.resume()  # and desk-a0 never beats again
    for _ in range(4):
        h.advance(1.0)
        restarted.desks.check()
    assert restarted.agents.sessions["a0"].mrds["chat"].state == "UNKNOWN"
    for _ in range(3):
        h.advance(1.0)
        restarted.desks.check()
    assert restarted.agents.sessions["a0"].mrds["chat"].state == "LOGOUT"
    assert "desk-a0" not in restarted.desks.watched
