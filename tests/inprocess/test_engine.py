"""The routing engine as a plain object, and properties of Comm + MRE together."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from actors.mre.engine import Engine
from actors.mre.index import AgentIndex
from actors.mre.sync import SnapshotSync
from wire import states as S

from ..fakeclock import FakeClock
from ..harness import Harness


class Recorder(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[tuple[str, dict]] = []

    def emit(self, type: str, body: dict) -> None:
        self.out.append((type, body))

    def selected(self) -> list[tuple[str, str]]:
        return [(b["TaskId"], b["AgentId"]) for t, b in self.out if t == "TaskAgentSelected"]


def engine(max_tasks: int = 3) -> tuple[Engine, Recorder]:
    rec = Recorder()
    return Engine({"chat": {"max_tasks": max_tasks}}, rec.emit, clock=rec.clock), rec


def agent_state(eng: Engine, rec: Recorder, agent: str, state: str, at: float) -> None:
    rec.now = at
    eng.on_agent_state({"AgentId": agent, "State": state, "MRD": "chat"})


def accept(eng: Engine, task: str, agent: str) -> None:
    eng.on_task_state({"TaskId": task, "MRD": "chat", "State": S.ACTIVE, "AgentId": agent})


def test_longest_available_prefers_fewest_tasks_then_longest_ready():
    eng, rec = engine()
    agent_state(eng, rec, "early", S.READY, 1.0)
    agent_state(eng, rec, "late", S.READY, 2.0)
    eng.on_new_task({"MRD": "chat", "TaskId": "t1"})
    assert rec.selected()[-1] == ("t1", "early")
    accept(eng, "t1", "early")
    eng.on_new_task({"MRD": "chat", "TaskId": "t2"})
    assert rec.selected()[-1] == ("t2", "late")  # fewer active tasks wins over longer wait
    accept(eng, "t2", "late")
    rec.now = 5.0
    eng.on_task_state({"TaskId": "t2", "MRD": "chat", "State": S.CLOSED, "AgentId": "late"})
    rec.now = 6.0
    eng.on_task_state({"TaskId": "t1", "MRD": "chat", "State": S.CLOSED, "AgentId": "early"})
    eng.on_new_task({"MRD": "chat", "TaskId": "t3"})
    assert rec.selected()[-1] == ("t3", "late")  # available since it finished at 5.0, early only since 6.0


def test_one_offer_per_agent_and_waiting_tasks_served_as_capacity_frees():
    eng, rec = engine(max_tasks=2)
    agent_state(eng, rec, "a", S.READY, 1.0)
    for n in range(4):
        eng.on_new_task({"MRD": "chat", "TaskId": f"t{n}"})
    assert rec.selected() == [("t0", "a")]  # the offer must be answered before the next
    accept(eng, "t0", "a")
    assert rec.selected()[-1] == ("t1", "a")
    accept(eng, "t1", "a")
    assert len(rec.selected()) == 2 and eng.stats()["tasks_waiting"] == 2  # at its limit
    eng.on_task_state({"TaskId": "t0", "MRD": "chat", "State": S.CLOSED, "AgentId": "a"})
    assert rec.selected()[-1] == ("t2", "a")


def test_requeued_task_goes_to_the_head_of_the_line():
    eng, rec = engine(max_tasks=1)
    agent_state(eng, rec, "a", S.READY, 1.0)
    eng.on_new_task({"MRD": "chat", "TaskId": "t0"})
    eng.on_new_task({"MRD": "chat", "TaskId": "t1"})
    agent_state(eng, rec, "a", S.NOT_READY, 2.0)
    eng.on_task_state({"TaskId": "t0", "MRD": "chat", "State": S.QUEUED, "AgentId": "a", "Code": S.RONA})
    agent_state(eng, rec, "b", S.READY, 3.0)
    assert rec.selected()[-1] == ("t0", "b")


def test_not_ready_and_logged_out_agents_get_nothing():
    eng, rec = engine()
    agent_state(eng, rec, "a", S.READY, 1.0)
    agent_state(eng, rec, "a", S.NOT_READY, 2.0)
    agent_state(eng, rec, "b", S.READY, 3.0)
    agent_state(eng, rec, "b", S.LOGOUT, 4.0)
    eng.on_new_task({"MRD": "chat", "TaskId": "t0"})
    assert rec.selected() == []


def test_index_finds_the_best_without_scanning_and_survives_churn():
    index = AgentIndex()
    for i in range(1000):
        index.put(f"a{i}", (i % 3, float(i)))
    assert index.best() == ((0, 0.0), "a0")
    for i in range(0, 1000, 3):
        index.remove(f"a{i}")
    assert index.best()[1] == "a1"
    index.put("a1", (2, 0.0))
    assert index.best()[1] == "a4"
    for _ in range(10_000):  # heavy churn keeps the heap bounded
        index.put("a4", (1, 5.0))
        index.put("a4", (0, 4.0))
    assert len(index._heap) <= 2 * len(index) + 65


# Properties of Comm + MRE under random sequences of agent and task events ------------------

AGENTS = [f"a{i}" for i in range(4)]
ATTRIBUTES = {"a0": {"billing": 7}, "a1": {"billing": 2}, "a2": {"billing": 9}, "a3": {}}
PROPERTY_QUEUES = {
    "chat-default": {"mrd": "chat", "policy": "LONGEST_AVAILABLE", "offer_timeout": 5.0, "ttl": 40.0,
                     "steps": [{"expr": "billing >= 5", "timeout": 3.0}, {"expr": "true", "timeout": 0.0}],
                     "ageing": 10.0},
    "voice-default": {"mrd": "voice", "policy": "LONGEST_AVAILABLE", "offer_timeout": 5.0, "ttl": 40.0,
                      "steps": [{"expr": "true", "timeout": 0.0}], "ageing": 60.0},
}
event = st.one_of(
    st.tuples(st.just("advance"), st.floats(0, 8)),
    st.tuples(st.just("priority_task"), st.integers(0, 3)),
    st.tuples(st.just("login"), st.sampled_from(AGENTS)),
    st.tuples(st.just("ready"), st.sampled_from(AGENTS)),
    st.tuples(st.just("not_ready"), st.sampled_from(AGENTS)),
    st.tuples(st.just("logout"), st.sampled_from(AGENTS)),
    st.tuples(st.just("task"), st.integers(0, 3)),
    st.tuples(st.just("accept"), st.integers(0, 30)),
    st.tuples(st.just("close"), st.integers(0, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("wrap_up"), st.integers(0, 30)),
)


def apply(h: Harness, kind: str, arg, created: list[str]) -> None:
    def pick(n: int) -> str | None:
        return created[n % len(created)] if created else None
    comm = h.comm
    try:
        if kind == "login":
            if arg not in comm.agents.sessions or comm.agents.sessions[arg].mrds.get("chat") is None \
                    or comm.agents.sessions[arg].mrds["chat"].state == S.LOGOUT:
                h.login(arg, ready=False)
        elif kind in ("ready", "not_ready", "logout"):
            state = {"ready": S.READY, "not_ready": S.NOT_READY, "logout": S.LOGOUT}[kind]
            h.send("AgentState", {"AgentId": arg, "State": state, "Mrd": "chat"})
        elif kind == "task":
            created.append(h.task(client=f"c{arg}"))
        elif kind == "priority_task":
            created.append(h.task(client=f"p{arg}", priority=arg))
        elif kind == "advance":
            h.advance(arg)
        elif (task_id := pick(arg)) is not None:
            task = comm.tasks.live.get(task_id)
            if task is None:
                return
            if kind == "accept" and task.owner:
                h.send("TaskState", {"AgentId": task.owner, "TaskId": task_id, "State": S.ACTIVE})
            elif kind == "close" and task.owner:
                h.send("TaskState", {"AgentId": task.owner, "TaskId": task_id, "State": S.CLOSED})
            elif kind == "wrap_up" and task.owner:
                h.send("TaskState", {"AgentId": task.owner, "TaskId": task_id, "State": S.WRAP_UP})
            elif kind == "cancel":
                h.send("TaskState", {"TaskId": task_id, "State": S.CLOSED, "Code": S.CANCELLED, "ReplyTo": "web"})
    except Exception as exc:
        from wire.codec import WireError
        assert isinstance(exc, WireError), exc
        h.pump()


def check_invariants(h: Harness) -> None:
    limit = h.mrds["chat"]["max_tasks"]
    offers: dict[str, str] = {}
    for agent_id, session in h.comm.agents.sessions.items():
        presence = session.mrds.get("chat")
        if presence is None:
            continue
        # no agent above its limit
        assert len(presence.tasks) + (presence.offer is not None) <= limit
        if presence.offer:
            assert presence.offer not in offers, "one task offered to two agents"
            offers[presence.offer] = agent_id
        # the published state is the derived one
        assert presence.state == h.comm.agents.derive(presence)
    for task in h.comm.tasks.live.values():
        if task.state == S.RESERVED:
            assert offers.get(task.task_id) == task.owner
        else:
            assert task.task_id not in offers
    # work conservation: nothing waits while an agent free in Comm's view matches a step it reached
    for task in h.comm.tasks.live.values():
        if task.state != S.QUEUED:
            continue
        # the steps reached by the clock, not by what the MRE believes
        steps = PROPERTY_QUEUES["chat-default"]["steps"]
        elapsed, level, until = h.now - task.created, 0, steps[0]["timeout"]
        while level + 1 < len(steps) and elapsed > until + 1e-6:
            level += 1
            until += steps[level]["timeout"]
        reached = h.mre.tasks[task.task_id].queue.exprs[:level + 1]
        for agent_id, session in h.comm.agents.sessions.items():
            presence = session.mrds.get("chat")
            if presence is not None and presence.offer is None and h.comm.agents.can_take(presence) \
                    and any(expr(ATTRIBUTES[agent_id]) for expr in reached):
                raise AssertionError(f"{task.task_id} waits while {agent_id} is {presence.state} and free")
    # the MRE agrees on who has what on offer
    router = h.mre.routers["chat"]
    mre_offers = {a.offer: a.agent_id for a in router.agents.values() if a.offer}
    assert mre_offers == offers


@settings(max_examples=200)
@given(st.lists(event, min_size=20, max_size=80))
def test_random_events_keep_the_routing_invariants(events):
    h = Harness(agents=len(AGENTS), queues=PROPERTY_QUEUES, attributes=ATTRIBUTES)
    created: list[str] = []
    for kind, arg in events:
        apply(h, kind, arg, created)
        check_invariants(h)
    # every task that ended, ended once, in a documented state with a documented code
    for task_id in created:
        task = h.comm.tasks.live.get(task_id) or h.comm.tasks.closed.get(task_id)
        assert task is not None
        assert task.state in S.TASK_STATES
        if task.state == S.CLOSED:
            assert task.code in S.TASK_CODES
            closes = h.published_of("TaskState", TaskId=task_id, State=S.CLOSED, MRD="chat")
            assert len([c for c in closes if c.get("Scope") != "PARTICIPANT"]) >= 1


def test_only_the_snapshot_answering_the_latest_resync_is_applied():
    """An older snapshot predates offers made since: applying it would offer a task twice."""
    h = Harness(agents=2)
    h.login("a0")
    h.login("a1")
    stale = {**h.comm.snapshot(unasked=False), "Request": "mre-1"}   # (answers to Resyncs)
    task = h.task()
    owner = h.comm.tasks.live[task].owner
    sync = SnapshotSync("mre")
    assert not sync.take_update({"Seq": 1, "Stream": "c"})  # nothing is applied before a first snapshot
    sync.request(), sync.request()  # asked twice: only mre-2's answer counts
    assert not sync.take_snapshot(stale)
    assert h.mre.tasks[task].offered_to == owner
    latest = {**h.comm.snapshot(unasked=False), "Request": "mre-2"}
    assert sync.take_snapshot(latest) and sync.synced and sync.awaiting is None
    h.mre.on_snapshot(latest)
    assert h.mre.tasks[task].offered_to == owner
    assert sync.take_snapshot({**h.comm.snapshot()})  # a restarted Comm's, unasked, always counts
    assert sync.stale == 1 and sync.dropped == 1


def test_updates_apply_in_order_from_the_snapshot_and_a_gap_asks_for_another():
    sync = SnapshotSync("mre")
    assert sync.take_snapshot({"Agents": [], "Tasks": [], "Seq": 10, "Stream": "comm-a"})
    assert sync.take_update({"Seq": 9, "Stream": "comm-a"}) is False    # in the snapshot already
    assert sync.take_update({"Seq": 11, "Stream": "comm-a"}) is True
    assert sync.take_update({"Seq": 12, "Stream": "comm-a"}) is True
    assert sync.take_update({}) is True                                 # unnumbered: an operator's message
    assert sync.take_update({"Seq": 14, "Stream": "comm-a"}) is None    # 13 was lost
    assert not sync.synced and sync.gaps == 1
    assert sync.take_update({"Seq": 15, "Stream": "comm-a"}) is False   # nothing until the next snapshot
    assert sync.take_snapshot({"Agents": [], "Tasks": [], "Seq": 15, "Stream": "comm-a"})
    assert sync.take_update({"Seq": 16, "Stream": "comm-a"}) is True
    # another Comm process numbers afresh: its updates follow only its own snapshot
    assert sync.take_update({"Seq": 1, "Stream": "comm-b"}) is None
    assert sync.take_snapshot({"Agents": [], "Tasks": [], "Seq": 0, "Stream": "comm-b"})
    assert sync.take_update({"Seq": 1, "Stream": "comm-b"}) is True
