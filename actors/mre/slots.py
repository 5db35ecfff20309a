"""What the engine routes with: an agent's slot on its MRD, a waiting task, a precision
queue (its steps, their indexes and its waiting tasks) and an MRD's router. Owned and
changed by the engine (engine.py); read by explain.py."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from wire import states as S
from wire.expr import Expression, compile_expr, skill

from .index import AgentIndex, Key


@dataclass(slots=True)
class AgentSlot:
    agent_id: str
    attributes: dict[str, Any]
    state: str = S.LOGOUT
    since: float = 0.0                                  # available since (became READY, or last finished a task)
    active: set[str] = field(default_factory=set)       # accepted tasks, as owner or participant
    offer: str | None = None
    last_offered: int = 0                               # for ROUND_ROBIN
    steps: list[tuple["QueueRouter", int]] = field(default_factory=list)  # the steps it matches
    queues: list["QueueRouter"] = field(default_factory=list)             # the queues of those steps

    def shown_state(self, max_tasks: int) -> str:
        """The state as Comm would show it. Comm does not tell us moves between routable
        states (agents.py `move`): among those, what the agent holds says which it is in."""
        if self.state not in S.ROUTABLE:
            return self.state
        if self.offer is not None:
            return S.RESERVED
        if self.active:
            return S.BUSY if len(self.active) >= max_tasks else S.ACTIVE
        return S.READY


@dataclass(slots=True)
class TaskSlot:
    task_id: str
    mrd: str
    queue: "QueueRouter"
    params: dict[str, Any]
    client_id: str = ""
    priority: float = 0.0
    enqueued: float = 0.0
    level: int = 0                                      # the last step reached
    head: bool = False                                  # came back (RONA, logout): served first
    agents: list[str] = field(default_factory=list)     # holders, owner first
    offered_to: str | None = None
    waiting: bool = False
    timer: Any = None                                   # the next step's timeout

    def urgency(self, ageing: float) -> Key:
        """Lower is served first: came-back tasks, then priority aged by time waited (a task
        that waited `ageing` seconds ranks with a fresh one of priority one higher)."""
        return (0 if self.head else 1, -(self.priority - self.enqueued / ageing))


class QueueRouter:
    def __init__(self, name: str, spec: dict[str, Any], mrd: "MrdRouter"):
        self.name = name
        self.mrd = mrd
        self.policy = spec.get("policy", "LONGEST_AVAILABLE")
        self.ageing = float(spec.get("ageing", 60.0))
        steps = spec.get("steps") or [{"expr": "true", "timeout": 0}]
        self.exprs: list[Expression] = [compile_expr(step["expr"]) for step in steps]
        self.timeouts = [float(step.get("timeout", 0)) for step in steps]
        self.skill_names = frozenset().union(*(e.names for e in self.exprs))
        self.indexes = [AgentIndex() for _ in steps]
        self.levels: list[list[tuple[Key, int, str]]] = [[] for _ in steps]
        self.waiting_count = 0

    def key(self, agent: AgentSlot) -> Key:
        load = len(agent.active)
        if self.policy == "ROUND_ROBIN":
            return (agent.last_offered, agent.since)
        if self.policy == "MOST_SKILLED":
            return (-skill(agent.attributes, self.skill_names), load, agent.since)
        if self.policy == "LEAST_SKILLED":
            return (skill(agent.attributes, self.skill_names), load, agent.since)
        if self.policy == "LEAST_BUSY":
            return (load / self.mrd.max_tasks, agent.since)
        return (load, agent.since)  # LONGEST_AVAILABLE

    def head(self, level: int, tasks: dict[str, TaskSlot]) -> TaskSlot | None:
        heap = self.levels[level]
        while heap:
            task = tasks.get(heap[0][2])
            if task is not None and task.waiting and task.level == level and task.queue is self:
                return task
            heapq.heappop(heap)
        return None


class MrdRouter:
    def __init__(self, name: str, spec: dict[str, Any]):
        self.name = name
        self.max_tasks = int(spec["max_tasks"])
        self.agents: dict[str, AgentSlot] = {}
        self.queues: dict[str, QueueRouter] = {}
        self.default_queue = spec.get("default_queue")
        # agent -> the task we offered it before it logged out, while Comm has not said what
        # became of that offer: our decision may reach Comm after the agent is back, and be made
        self.offered_before_logout: dict[str, str] = {}

    def eligible(self, agent: AgentSlot) -> bool:
        return agent.state in S.ROUTABLE and agent.offer is None and len(agent.active) < self.max_tasks
