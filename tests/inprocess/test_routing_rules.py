"""The routing engine's rules, Comm and the MRE together in virtual time (no sockets)."""

from __future__ import annotations

import math
import random

import pytest

from wire import states as S

from ..harness import MRDS, QUEUES, Harness


def queue(**spec):
    base = {"mrd": "chat", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15.0, "ttl": 300.0,
            "steps": [{"expr": "true", "timeout": 0.0}], "ageing": 60.0}
    return {**base, **spec}


def harness(agents=4, attributes=None, **queues):
    mrds = {name: dict(spec) for name, spec in MRDS.items()}
    all_queues = dict(QUEUES)
    if queues:
        all_queues.update(queues)
        mrds["chat"]["default_queue"] = next(iter(queues))
    return Harness(agents=agents, mrds=mrds, queues=all_queues, attributes=attributes)


def accept(h, task, agent=None):
    agent = agent or h.comm.tasks.live[task].owner
    h.send("TaskState", {"AgentId": agent, "TaskId": task, "State": S.ACTIVE})
    return agent


def close(h, task, agent=None):
    agent = agent or h.comm.tasks.live[task].owner
    h.send("TaskState", {"AgentId": agent, "TaskId": task, "State": S.CLOSED, "Code": S.DONE})


def test_rona_sends_the_task_back_to_the_head_and_the_agent_not_ready():
    h = harness(**{"q": queue(offer_timeout=10)})
    h.login("a0")
    first, second = h.task(client="c1"), h.task(client="c2")
    assert h.offer_of("a0") == first
    h.advance(9.9)
    assert h.offer_of("a0") == first
    h.advance(0.2)
    assert h.state("a0") == S.NOT_READY
    assert h.comm.agents.sessions["a0"].mrds["chat"].reason == S.RONA
    assert h.published_of("TaskState", TaskId=first, State=S.QUEUED, Code=S.RONA)
    h.login("a1")
    assert h.offer_of("a1") == first  # the RONA'd task is served before the one behind it
    assert h.comm.tasks.live[second].state == S.QUEUED


def test_time_to_live_closes_a_waiting_task_no_agent_available():
    h = harness(**{"q": queue(ttl=30, offer_timeout=10)})
    task = h.task()
    h.advance(29)
    assert h.comm.tasks.live[task].state == S.QUEUED
    h.advance(2)
    assert h.comm.tasks.closed[task].code == S.NO_AGENT_AVAILABLE
    assert not h.mre.tasks
    # an offer that comes back after the task's time ran out closes it too
    late = h.task()
    h.advance(25)
    h.login("a0")
    h.advance(10)  # RONA at 35 s: past its 30 s
    assert h.comm.tasks.closed[late].code == S.NO_AGENT_AVAILABLE
    assert h.offer_of("a0") is None


def test_steps_widen_the_agents_after_their_timeout():
    attrs = {"a0": {"billing": 3, "english": True}, "a1": {"billing": 8}, "a2": {"english": True}}
    h = harness(agents=3, attributes=attrs, q=queue(steps=[{"expr": "billing >= 5", "timeout": 10},
                                                           {"expr": "english", "timeout": 0}]))
    h.login("a0")
    h.login("a2")
    task = h.task()
    assert h.comm.tasks.live[task].state == S.QUEUED  # nobody matches step 0 yet
    h.advance(9)
    assert h.comm.tasks.live[task].state == S.QUEUED
    h.advance(1.5)
    assert h.comm.tasks.live[task].owner in ("a0", "a2")
    # with a step-0 agent ready a new task goes to it at once
    h.login("a1")
    second = h.task(client="c2")
    assert h.offer_of("a1") == second


@pytest.mark.parametrize("policy, expected", [("MOST_SKILLED", "a1"), ("LEAST_SKILLED", "a0"),
                                              ("LONGEST_AVAILABLE", "a0")])
def test_skill_policies(policy, expected):
    attrs = {"a0": {"billing": 2}, "a1": {"billing": 9}, "a2": {"billing": 5}}
    h = harness(agents=3, attributes=attrs, q=queue(policy=policy, steps=[{"expr": "billing > 0", "timeout": 0}]))
    for agent in ("a0", "a1", "a2"):
        h.login(agent)
    task = h.task()
    assert h.comm.tasks.live[task].owner == expected


def test_round_robin_takes_turns_whatever_the_load():
    h = harness(agents=3, q=queue(policy="ROUND_ROBIN"))
    for agent in ("a0", "a1", "a2"):
        h.login(agent)
    owners = []
    for n in range(6):
        task = h.task(client=f"c{n}")
        owners.append(accept(h, task))
        if n % 2:
            close(h, task)
    assert owners[:3] == ["a0", "a1", "a2"] and owners[3:] == ["a0", "a1", "a2"]


def test_least_busy_prefers_the_lower_share_of_its_limit():
    h = harness(agents=2, q=queue(policy="LEAST_BUSY"))
    h.login("a0")
    first = h.task(client="c1")
    accept(h, first, "a0")
    h.login("a1")
    assert h.comm.tasks.live[h.task(client="c2")].owner == "a1"


def test_a_returning_customer_goes_to_its_last_agent_if_eligible():
    h = harness(agents=3)
    for agent in ("a0", "a1", "a2"):
        h.login(agent)
    task = h.task(client="carol")
    served_by = accept(h, task)
    close(h, task)
    for _ in range(2):  # others are now available longer; carol still goes to her agent
        again = h.task(client="carol")
        assert h.comm.tasks.live[again].owner == served_by
        close(h, again, accept(h, again))
    h.send("AgentState", {"AgentId": served_by, "State": S.NOT_READY, "Mrd": "chat"})
    assert h.comm.tasks.live[h.task(client="carol")].owner not in (None, served_by)


def test_priority_first_then_age_and_ageing_prevents_starvation():
    h = harness(agents=1, q=queue(ageing=10))
    low = h.task(client="low")
    h.advance(1)
    high = h.task(client="high", priority=5)
    h.login("a0")
    assert h.offer_of("a0") == high
    close(h, high, accept(h, high))
    assert h.offer_of("a0") == low
    # a low-priority task that waited long enough goes before a fresher high-priority one
    h2 = harness(agents=1, q=queue(ageing=10, ttl=1000))
    old = h2.task(client="old")
    h2.advance(60)                        # 60 s at ageing 10 s: worth 6 levels of priority
    fresh = h2.task(client="fresh", priority=5)
    h2.login("a0")
    assert h2.offer_of("a0") == old and fresh in h2.comm.tasks.live


def test_a_call_interrupts_chat_and_chat_returns_after_it():
    h = harness(agents=2)
    h.login("a0")
    h.login("a0", mrd="voice")
    call = h.task(mrd="voice")
    assert h.offer_of("a0", "voice") == call
    assert h.state("a0") == S.INTERRUPTED  # the call rings: no chat for a0
    accept(h, call)
    chat = h.task()
    assert h.comm.tasks.live[chat].state == S.QUEUED
    h.login("a1")
    assert h.comm.tasks.live[chat].owner == "a1"
    second_chat = h.task(client="c2")
    close(h, call)
    assert h.state("a0", "voice") == S.READY
    assert h.offer_of("a0") == second_chat  # chat is back, and served at once


def test_flush_closes_force_closed_in_any_state():
    h = harness()
    queued = h.task(client="q")
    h.login("a0")
    offered = h.offer_of("a0")
    for task in (offered, h.task(client="x")):
        h.comm.operator.flush({"task": task})
        h.pump()
        assert h.comm.tasks.closed[task].code == S.FORCE_CLOSED
    assert h.state("a0") in (S.READY, S.RESERVED)
    assert queued == offered


def test_explain_records_the_step_candidates_and_the_choice():
    attrs = {"a0": {"billing": 9}, "a1": {"billing": 1}}
    h = harness(agents=2, attributes=attrs, q=queue(steps=[{"expr": "billing >= 5", "timeout": 5},
                                                           {"expr": "true", "timeout": 0}]))
    h.login("a1")
    task = h.task()
    waiting = h.mre.explain(task)
    assert waiting["waiting"] and waiting["step"] == 0
    assert {"agent": "a1", "steps": [1], "state": S.READY, "active": 0,
            "why": "matches only step 1, not reached yet"} in waiting["agents"]
    h.advance(6)
    events = [d["event"] for d in h.mre.explain(task)["decisions"]]
    assert events == ["queued", "step", "offered"]
    offered = h.mre.explain(task)["decisions"][-1]
    assert offered["agent"] == "a1" and offered["step"] == 1 and offered["policy"] == "LONGEST_AVAILABLE"
    assert offered["candidates"] == [{"step": 1, "agent": "a1", "key": [0, 0.0],
                                      "words": "0 tasks in hand, available 5.0 s"}]


def test_explain_says_why_each_other_agent_was_not_chosen():
    """Found by an operator: asked "why a0 and not a5?", explain answered "step 0: 0 eligible"
    and printed keys like [2, 883.58] without saying what they mean."""
    attrs = {f"a{i}": {"english": i != 4} for i in range(7)}
    h = harness(agents=7, attributes=attrs, q=queue(steps=[{"expr": "english", "timeout": 0}]))

    def accept(agent, task):
        h.send("TaskState", {"AgentId": agent, "TaskId": task, "State": S.ACTIVE})
    h.login("a2")
    for n in range(2):                       # a2: at its limit of 2 chats
        accept("a2", h.task(client=f"c{n}"))
    h.login("a3")
    h.task(client="c2")                      # a3: rung, not answered yet
    h.login("a5")
    accept("a5", h.task(client="c3"))        # a5: one chat in hand
    h.login("a1", ready=False)               # a1: NOT_READY
    h.login("a4")                            # a4: not english
    h.login("a6")
    h.login("a6", mrd="voice")
    accept("a6", h.task(mrd="voice", client="c4"))  # a6: on a call, chat interrupted
    assert h.state("a6") == S.INTERRUPTED
    h.advance(5)
    h.login("a0")
    h.advance(3)
    task = h.task(client="c5")
    answer = h.mre.explain(task)
    assert answer["decisions"][-1]["agent"] == "a0"
    assert answer["policy_words"] == "fewest tasks in hand, then available longest"
    assert answer["decisions"][-1]["candidates"][0]["words"] == "0 tasks in hand, available 3.0 s"
    why = {row["agent"]: row["why"] for row in answer["not_chosen"]}
    assert why["a1"] == "not READY (NOT_READY)"
    assert why["a2"] == "at its limit (2/2)"
    assert why["a3"].startswith("an offer pending")
    assert why["a4"] == "attribute false: no step's expression holds for it"
    assert why["a5"] == "eligible, ranked lower"
    assert why["a6"].startswith("interrupted")
    assert next(r for r in answer["not_chosen"] if r["agent"] == "a5")["words"] == "1 task in hand, available 8.0 s"
    # a returning customer goes to its last agent: the others are told so, not "ranked lower"
    h.send("TaskState", {"AgentId": "a0", "TaskId": task, "State": S.ACTIVE})
    again = h.mre.explain(h.task(client="c3"))
    assert again["decisions"][-1]["agent"] == "a5"
    assert next(r for r in again["not_chosen"] if r["agent"] == "a0")["why"] == (
        "eligible, but the returning customer's last agent (a5) goes first")


def erlang_c(c: int, load: float) -> float:
    """Probability that an arrival waits, for c servers and offered load λ/μ."""
    top = load ** c / math.factorial(c) * c / (c - load)
    return top / (sum(load ** k / math.factorial(k) for k in range(c)) + top)


def test_waiting_matches_erlang_c():
    """Poisson arrivals, exponential handling, c agents of capacity 1, in virtual time:
    the measured probability of waiting and mean wait agree with the Erlang C formula."""
    c, arrival_rate, service_rate, tasks = 5, 4.0, 1.0, 20_000
    mrds = {"chat": {"max_tasks": 1, "interruptible": True, "default_queue": "q"},
            "voice": MRDS["voice"]}
    h = Harness(agents=c, mrds=mrds, queues={**QUEUES, "q": queue(offer_timeout=1e9, ttl=1e9)})
    rng = random.Random(7)
    for agent in range(c):
        h.login(f"a{agent}")
    created: dict[str, float] = {}
    waits: list[float] = []

    def accept_then_handle(task_id: str, agent: str) -> None:  # agents accept at once, handle Exp(μ)
        waits.append(h.now - created[task_id])
        accept(h, task_id, agent)
        h.call_later(rng.expovariate(service_rate), close, h, task_id, agent)

    send_event = h.comm.out.send_event

    def watch(frames):
        send_event(frames)
        dest, type, body = h.published[-1]
        if type == "TaskAgentSelected" and dest == "web":
            h.call_later(0.0, accept_then_handle, body["TaskId"], body["AgentId"])
    h.comm.out.send_event = watch
    for n in range(tasks):
        h.advance(rng.expovariate(arrival_rate))
        created[h.task(client=f"c{n}")] = h.now
        h.advance(0.0)
    warm = waits[1000:]  # drop the start-up transient
    measured_p = sum(1 for w in warm if w > 1e-9) / len(warm)
    measured_mean = sum(warm) / len(warm)
    p = erlang_c(c, arrival_rate / service_rate)
    mean = p / (c * service_rate - arrival_rate)
    print(f"Erlang C c={c} load={arrival_rate / service_rate}: P(wait) measured {measured_p:.3f} formula {p:.3f}; "
          f"mean wait measured {measured_mean:.3f} s formula {mean:.3f} s")
    assert abs(measured_p - p) < 0.1 * p
    assert abs(measured_mean - mean) < 0.25 * mean
