"""Why the MRE routed a task as it did, in words: what a policy's key means, and which agents
of the queue were not chosen and why (not READY, at its limit, an offer pending, an
attribute false, interrupted by a call, or eligible but ranked lower).

At a decision the field is recorded only for an MRD of at most FIELD_SCAN agents, so the
routing path never does more than a bounded amount of work; a larger MRD's decisions keep
the best agent of each step. A task that still waits is explained against the agents as
they are now (a scan run only when asked)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable

from wire import states as S

from .slots import AgentSlot, QueueRouter, TaskSlot

DECISIONS_KEPT = 20_000   # tasks whose routing decisions `explain` can still show
FIELD_SCAN = 32     # agents on an MRD up to which each decision records why the others were not chosen
FIELDS_KEPT = 2000  # decisions whose field is kept (a field is up to FIELD_SCAN rows)


def key_in_words(policy: str, key: list[Any] | tuple[Any, ...], now: float) -> str:
    """`[2, 883.58]` under LONGEST_AVAILABLE is "2 tasks in hand, available 12.4 s"."""
    def available(since: float) -> str:
        return f"available {max(0.0, now - since):.1f} s"

    def tasks(load: Any) -> str:
        return f"{load} task{'s' if load != 1 else ''} in hand"
    if policy == "ROUND_ROBIN":
        turn, since = key
        return ("never offered a task" if not turn else f"last offered offer #{turn} (lower: longer ago)") \
            + f", {available(since)}"
    if policy in ("MOST_SKILLED", "LEAST_SKILLED"):
        score, load, since = key
        return f"skill {abs(score):g} (sum of the proficiencies the steps name), {tasks(load)}, {available(since)}"
    if policy == "LEAST_BUSY":
        share, since = key
        return f"{share:.0%} of its task limit in use, {available(since)}"
    load, since = key
    return f"{tasks(load)}, {available(since)}"


POLICY_IN_WORDS = {
    "LONGEST_AVAILABLE": "fewest tasks in hand, then available longest",
    "LEAST_BUSY": "lowest share of its task limit in use, then available longest",
    "ROUND_ROBIN": "offered a task longest ago",
    "MOST_SKILLED": "highest skill (sum of the proficiencies the steps name), then fewest tasks",
    "LEAST_SKILLED": "lowest skill (sum of the proficiencies the steps name), then fewest tasks",
}


def why_not(queue: QueueRouter, agent: AgentSlot, level: int) -> tuple[int | None, str, Any]:
    """(the first step of the queue it matches, why it cannot take a task at `level`, its
    key when it could)."""
    steps = [step for q, step in agent.steps if q is queue]
    router = queue.mrd
    if not steps:
        return None, "attribute false: no step's expression holds for it", None
    if min(steps) > level:
        return min(steps), f"matches only step {min(steps)}, not reached yet", None
    if agent.state == S.INTERRUPTED:
        return min(steps), "interrupted (by a task of a non-interruptible MRD, e.g. a call)", None
    if agent.state not in S.ROUTABLE:
        return min(steps), f"not READY ({agent.state})", None
    if agent.offer is not None:
        return min(steps), f"an offer pending ({agent.offer})", None
    if len(agent.active) >= router.max_tasks:
        return min(steps), f"at its limit ({len(agent.active)}/{router.max_tasks})", None
    return min(steps), "eligible, ranked lower", list(queue.key(agent))


class Explainer:
    """The engine's memory of its decisions' fields, and `explain` itself."""

    def __init__(self, clock: Callable[[], float], task: Callable[[str], TaskSlot | None]):
        self.decisions: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()  # task -> its decisions, in order
        self.clock = clock
        self.task = task             # a live task, by id
        self.fields: OrderedDict[str, list[list[Any]]] = OrderedDict()   # task -> rows at its last offer

    def record(self, task_id: str, event: str, details: dict[str, Any]) -> None:
        history = self.decisions.get(task_id)
        if history is None:
            history = self.decisions[task_id] = []
            if len(self.decisions) > DECISIONS_KEPT:
                self.decisions.popitem(last=False)
        history.append({"time": time.time(), "event": event, **details})

    def offered(self, queue: QueueRouter, task: TaskSlot, chosen: str, returning: bool) -> None:
        """At an offer: why each other agent of a small MRD was not chosen."""
        agents = queue.mrd.agents
        if len(agents) > FIELD_SCAN:
            self.fields.pop(task.task_id, None)
            return
        rows = []
        for agent in agents.values():
            if agent.agent_id != chosen:
                step, why, key = why_not(queue, agent, task.level)
                if key is not None and returning:
                    why = f"eligible, but the returning customer's last agent ({chosen}) goes first"
                rows.append([agent.agent_id, step, why, key])
        self.fields[task.task_id] = rows
        self.fields.move_to_end(task.task_id)
        if len(self.fields) > FIELDS_KEPT:
            self.fields.popitem(last=False)

    def explain(self, task_id: str) -> dict[str, Any]:
        history = self.decisions.get(task_id)
        now = self.clock()
        decisions = [{**d, "candidates": [{**c, "words": key_in_words(d["policy"], c["key"], d["clock"])}
                                          for c in d["candidates"]]} if d["event"] == "offered" else d
                     for d in history or []]
        out: dict[str, Any] = {"task": task_id, "decisions": decisions, "known": history is not None}
        offers = [d for d in decisions if d["event"] == "offered"]
        if offers:
            last = offers[-1]
            out["policy_words"] = POLICY_IN_WORDS.get(last["policy"], last["policy"])
            rows = self.fields.get(task_id)
            out["not_chosen"] = None if rows is None else [
                {"agent": agent, "step": step, "why": why,
                 **({"key": key, "words": key_in_words(last["policy"], key, last["clock"])} if key else {})}
                for agent, step, why, key in rows]
        task = self.task(task_id)
        if task is None:
            return out
        queue = task.queue
        out.update(queue=queue.name, policy=queue.policy, policy_words=POLICY_IN_WORDS.get(queue.policy, queue.policy),
                   waiting=task.waiting, step=task.level,
                   steps=[{"step": i, "expr": e.text, "timeout": queue.timeouts[i],
                           "reached": i <= task.level, "eligible": len(queue.indexes[i])}
                          for i, e in enumerate(queue.exprs)])
        agents = []
        for agent in queue.mrd.agents.values():
            steps = [step for q, step in agent.steps if q is queue]
            if not steps:
                continue
            _, why, key = why_not(queue, agent, task.level)
            agents.append({"agent": agent.agent_id, "steps": steps, "state": agent.shown_state(queue.mrd.max_tasks),
                           "active": len(agent.active), "why": "eligible" if key is not None else why,
                           **({"words": key_in_words(queue.policy, key, now)} if key is not None else {})})
        out["agents"] = sorted(agents, key=lambda a: a["agent"])
        return out
