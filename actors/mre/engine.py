"""The routing engine as a plain object: agents' availability and capacity per MRD,
waiting tasks, and the choice of agent (protocol.md 1.5).

The MRE's view is derived from what Comm tells it (AgentState, NewTask, TaskState,
Transfer, Conference). What it decides leaves through `emit(type, body)` as
TaskAgentSelected, TaskAgentTransferred and TaskConferenced. Work is conserved: whenever a
task arrives or an agent may have become eligible, waiting tasks are offered at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from wire import states as S
from wire.codec import WireError

from .index import AgentIndex

log = logging.getLogger("mroute.mre")

Emit = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class AgentSlot:
    agent_id: str
    state: str = S.LOGOUT
    since: float = 0.0                                  # available since (became READY, or last finished a task)
    active: set[str] = field(default_factory=set)       # accepted tasks, as owner or participant
    offer: str | None = None


@dataclass(slots=True)
class TaskSlot:
    task_id: str
    mrd: str
    params: dict[str, Any]
    agents: list[str] = field(default_factory=list)     # holders, owner first
    offered_to: str | None = None
    waiting: bool = False


class MrdRouter:
    """One MRD: its agents, its waiting line and its index of eligible agents."""

    def __init__(self, name: str, max_tasks: int):
        self.name = name
        self.max_tasks = max_tasks
        self.agents: dict[str, AgentSlot] = {}
        self.waiting: deque[str] = deque()  # task ids; entries of tasks no longer waiting are skipped
        self.waiting_count = 0
        self.index = AgentIndex()

    def eligible(self, agent: AgentSlot) -> bool:
        return agent.state in S.ROUTABLE and agent.offer is None and len(agent.active) < self.max_tasks

    def reindex(self, agent: AgentSlot) -> None:
        if self.eligible(agent):
            self.index.put(agent.agent_id, len(agent.active), agent.since)
        else:
            self.index.remove(agent.agent_id)

    def agent(self, agent_id: str, now: float) -> AgentSlot:
        agent = self.agents.get(agent_id)
        if agent is None:
            agent = self.agents[agent_id] = AgentSlot(agent_id, since=now)
        return agent


class Engine:
    def __init__(self, mrds: dict[str, dict[str, Any]], emit: Emit, clock: Callable[[], float] = time.monotonic):
        self.routers = {name: MrdRouter(name, spec["max_tasks"]) for name, spec in mrds.items()}
        self.tasks: dict[str, TaskSlot] = {}
        self.emit = emit
        self.clock = clock
        self.counters = {"selected": 0, "requeued": 0, "closed": 0}

    def router(self, mrd: str) -> MrdRouter:
        router = self.routers.get(mrd)
        if router is None:
            raise WireError(S.NOT_FOUND, f"no MRD named {mrd!r}", field="MRD")
        return router

    # what Comm tells us ----------------------------------------------------------------
    def on_agent_state(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        agent_id, state = body["AgentId"], body["State"]
        if state == S.LOGOUT:
            router.index.remove(agent_id)
            router.agents.pop(agent_id, None)
            return
        now = self.clock()
        agent = router.agent(agent_id, now)
        if state == S.READY and agent.state not in S.ROUTABLE:
            agent.since = now
        agent.state = state
        router.reindex(agent)
        self.dispatch(router)

    def on_new_task(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        task = TaskSlot(body["TaskId"], router.name, body.get("params") or {})
        if task.task_id in self.tasks:
            return  # Comm's retry of a task we have
        self.tasks[task.task_id] = task
        self.enqueue(router, task, head=False)
        self.dispatch(router)

    def on_task_state(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        state, agent_id = body["State"], body.get("AgentId")
        task = self.tasks.get(body["TaskId"])
        if task is None:
            if state == S.QUEUED:  # a task we never saw: take it as new, at the head
                task = self.tasks[body["TaskId"]] = TaskSlot(body["TaskId"], router.name, {})
                self.enqueue(router, task, head=True)
                self.dispatch(router)
            return
        if state == S.QUEUED:
            self.release_all(router, task)
            self.counters["requeued"] += 1
            self.enqueue(router, task, head=True)
        elif state == S.ACTIVE:
            agent = router.agents.get(agent_id) if agent_id else None
            if agent is None or task.offered_to != agent_id:
                log.warning("task %s accepted by %s, but offered to %s", task.task_id, agent_id, task.offered_to)
                return
            agent.offer = None
            agent.active.add(task.task_id)
            task.offered_to = None
            task.agents = [agent_id]
            router.reindex(agent)
        elif state == S.CLOSED:
            if body.get("Scope") == "PARTICIPANT" and agent_id:
                self.release(router, task, agent_id)
            else:
                self.release_all(router, task)
                if task.waiting:
                    task.waiting = False
                    router.waiting_count -= 1
                del self.tasks[task.task_id]
                self.counters["closed"] += 1
        self.dispatch(router)

    def on_transfer(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        task = self.tasks.get(body["TaskId"])
        owner, recipient = body["OwnerAgentId"], body["RecipientAgentId"]
        if task is None:
            log.warning("transfer of unknown task %s", body["TaskId"])
            return
        self.release(router, task, owner)
        self.hold(router, task, recipient, first=True)
        self.emit("TaskAgentTransferred", {"TaskId": task.task_id, "AgentId": recipient, "PreviousAgentId": owner})
        self.dispatch(router)

    def on_conference(self, body: dict[str, Any]) -> None:
        router = self.router(body["Mrd"])
        task = self.tasks.get(body["TaskId"])
        if task is None:
            log.warning("conference on unknown task %s", body["TaskId"])
            return
        self.hold(router, task, body["ConferenceParticipant"], first=False)
        self.emit("TaskConferenced", {"TaskId": task.task_id, "OwnerAgentId": body["ConferenceOwner"],
                                      "ParticipantAgentId": body["ConferenceParticipant"]})

    def on_snapshot(self, body: dict[str, Any]) -> None:
        """Forget everything and rebuild from Comm's view (the Clone pattern's snapshot)."""
        now = self.clock()
        self.routers = {name: MrdRouter(name, r.max_tasks) for name, r in self.routers.items()}
        self.tasks = {}
        for entry in body["Agents"]:
            router = self.routers.get(entry["MRD"])
            if router is None:
                continue
            agent = router.agent(entry["AgentId"], now)
            agent.state, agent.active, agent.offer = entry["State"], set(entry["Tasks"]), entry["Offer"]
        for entry in body["Tasks"]:
            router = self.routers.get(entry["MRD"])
            if router is None:
                continue
            task = self.tasks[entry["TaskId"]] = TaskSlot(entry["TaskId"], router.name, entry.get("params") or {})
            if entry["State"] == S.QUEUED:
                self.enqueue(router, task, head=False)
            elif entry["State"] == S.RESERVED:
                task.offered_to = entry["Agents"][0] if entry["Agents"] else None
            else:
                task.agents = list(entry["Agents"])
        for router in self.routers.values():
            for agent in router.agents.values():
                router.reindex(agent)
            self.dispatch(router)
        self.counters["snapshots"] = self.counters.get("snapshots", 0) + 1

    # bookkeeping -----------------------------------------------------------------------
    def enqueue(self, router: MrdRouter, task: TaskSlot, head: bool) -> None:
        if not task.waiting:
            task.waiting = True
            router.waiting_count += 1
            (router.waiting.appendleft if head else router.waiting.append)(task.task_id)

    def hold(self, router: MrdRouter, task: TaskSlot, agent_id: str, first: bool) -> None:
        agent = router.agent(agent_id, self.clock())
        agent.active.add(task.task_id)
        if agent_id not in task.agents:
            task.agents.insert(0, agent_id) if first else task.agents.append(agent_id)
        router.reindex(agent)

    def release(self, router: MrdRouter, task: TaskSlot, agent_id: str) -> None:
        """End one agent's part in a task: its offer, or its accepted task."""
        agent = router.agents.get(agent_id)
        if agent_id in task.agents:
            task.agents.remove(agent_id)
        if task.offered_to == agent_id:
            task.offered_to = None
        if agent is None:
            return
        if agent.offer == task.task_id:
            agent.offer = None
        elif task.task_id in agent.active:
            agent.active.discard(task.task_id)
            agent.since = self.clock()  # just finished a task
        router.reindex(agent)

    def release_all(self, router: MrdRouter, task: TaskSlot) -> None:
        for agent_id in [*task.agents, *([task.offered_to] if task.offered_to else [])]:
            self.release(router, task, agent_id)

    # the decision ----------------------------------------------------------------------
    def dispatch(self, router: MrdRouter) -> None:
        """Offer waiting tasks while an eligible agent exists: O(log n) per offer."""
        index, waiting = router.index, router.waiting
        while router.waiting_count:
            agent_id = index.best()
            if agent_id is None:
                return
            task = self.tasks.get(waiting.popleft())
            if task is None or not task.waiting:
                continue
            task.waiting = False
            router.waiting_count -= 1
            agent = router.agents[agent_id]
            agent.offer = task.task_id
            task.offered_to = agent_id
            index.remove(agent_id)
            self.counters["selected"] += 1
            self.emit("TaskAgentSelected", {"TaskId": task.task_id, "AgentId": agent_id, "Status": S.SELECTED_RESERVED})

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "tasks_waiting": sum(r.waiting_count for r in self.routers.values()),
                "mrds": {name: {"agents": len(r.agents), "eligible": len(r.index), "waiting": r.waiting_count}
                         for name, r in self.routers.items()}}
