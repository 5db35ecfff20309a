"""The routing engine as a plain object (protocol.md 1.5).

Per MRD: its agents' availability and capacity. Per precision queue: ordered steps, each
an expression over agent attributes with a timeout after which the next step's agents
also qualify; an index of the eligible agents matching each step, keyed by the queue's
policy; and the waiting tasks, one priority heap per step reached. Choosing an agent looks
at the best of each reached step's index: O(steps x log n), never a scan of the agents.

The MRE's view is derived from what Comm tells it (AgentState, NewTask, TaskState,
Transfer, Conference, Snapshot); what it decides leaves through `emit(type, body)`. Work
is conserved: whenever a task arrives, reaches a new step or comes back, or an agent may
have become eligible, waiting tasks are offered at once.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import OrderedDict
from typing import Any, Callable

from wire import states as S
from wire.codec import WireError, routing_params

from .explain import Explainer
from .index import Key
from .slots import AgentSlot, MrdRouter, QueueRouter, TaskSlot

log = logging.getLogger("mroute.mre")

Emit = Callable[[str, dict[str, Any]], None]
CallLater = Callable[..., Any]
CUSTOMERS_KEPT = 200_000  # returning customers whose last agent is remembered


class Engine:
    def __init__(self, mrds: dict[str, dict[str, Any]], emit: Emit, *, queues: dict[str, dict[str, Any]] | None = None,
                 directory: dict[str, dict[str, Any]] | None = None, clock: Callable[[], float] = time.monotonic,
                 call_later: CallLater | None = None, resync: Callable[[str], None] | None = None):
        self.mrd_specs = mrds
        self.queue_specs = queues or {}
        self.directory = directory or {}
        self.emit = emit
        self.clock = clock
        self.call_later = call_later
        self.resync = resync
        self.offers = itertools.count(1)
        self.task_seq = itertools.count()
        self.last_agent: OrderedDict[tuple[str, str], str] = OrderedDict()  # (MRD, customer) -> who served it last
        self.counters = {"selected": 0, "requeued": 0, "closed": 0, "snapshots": 0}
        self.explainer = Explainer(lambda: self.clock(), lambda task_id: self.tasks.get(task_id))
        self.reset()

    def reset(self) -> None:
        self.routers: dict[str, MrdRouter] = {}
        for name, spec in self.mrd_specs.items():
            router = self.routers[name] = MrdRouter(name, spec)
            for qname, qspec in self.queue_specs.items():
                if qspec["mrd"] == name:
                    router.queues[qname] = QueueRouter(qname, qspec, router)
            if not router.queues:  # no queue configured: one that takes any agent
                router.queues[f"{name}-default"] = QueueRouter(f"{name}-default", {}, router)
            if router.default_queue not in router.queues:
                router.default_queue = next(iter(router.queues))
        self.tasks: dict[str, TaskSlot] = {}

    def router(self, mrd: str) -> MrdRouter:
        router = self.routers.get(mrd)
        if router is None:
            raise WireError(S.NOT_FOUND, f"no MRD named {mrd!r}", field="MRD")
        return router

    # agents --------------------------------------------------------------------------
    def agent(self, router: MrdRouter, agent_id: str) -> AgentSlot:
        agent = router.agents.get(agent_id)
        if agent is None:
            attributes = self.directory.get(agent_id, {}).get("attributes", {})
            agent = router.agents[agent_id] = AgentSlot(agent_id, attributes, since=self.clock())
            # Back from a logout before Comm said what became of our last offer to it: Comm
            # may have made it (the decision reached it after the agent was back), so the
            # agent holds it until Comm accepts or sends it back (on main, forgetting it meant
            # offering the agent task after task, each refused: thousands within seconds).
            offered = router.offered_before_logout.pop(agent_id, None)
            task = self.tasks.get(offered) if offered is not None else None
            if task is not None and task.offered_to == agent_id:
                agent.offer = offered
            for queue in router.queues.values():
                for step, expr in enumerate(queue.exprs):
                    if expr(attributes):
                        agent.steps.append((queue, step))
                if agent.steps and agent.steps[-1][0] is queue:
                    agent.queues.append(queue)
        return agent

    def reindex(self, router: MrdRouter, agent: AgentSlot) -> None:
        if router.eligible(agent):
            for queue, step in agent.steps:
                queue.indexes[step].put(agent.agent_id, queue.key(agent))
        else:
            for queue, step in agent.steps:
                queue.indexes[step].remove(agent.agent_id)

    def agent_changed(self, router: MrdRouter, agent: AgentSlot) -> None:
        self.reindex(router, agent)
        if router.eligible(agent):
            for queue in agent.queues:
                self.dispatch(queue)

    def on_agent_state(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        agent_id, state = body["AgentId"], body["State"]
        if state == S.LOGOUT:
            agent = router.agents.pop(agent_id, None)
            if agent is not None:
                for queue, step in agent.steps:
                    queue.indexes[step].remove(agent_id)
                if agent.offer is not None:
                    router.offered_before_logout[agent_id] = agent.offer
            return
        agent = self.agent(router, agent_id)
        if state == S.READY and agent.state not in S.ROUTABLE:
            agent.since = self.clock()
        agent.state = state
        self.agent_changed(router, agent)

    # tasks -----------------------------------------------------------------------------
    def queue_for(self, router: MrdRouter, params: dict[str, Any]) -> QueueRouter:
        name = params.get("queue") or router.default_queue
        queue = router.queues.get(name)
        if queue is None:
            raise WireError(S.NOT_FOUND, f"no queue {name!r} on MRD {router.name}", field="params")
        return queue

    def new_slot(self, router: MrdRouter, task_id: str, params: dict[str, Any], client_id: str) -> TaskSlot:
        try:
            priority = float(params.get("priority", 0))
        except (TypeError, ValueError):
            priority = 0.0
        task = TaskSlot(task_id, router.name, self.queue_for(router, params), routing_params(params), client_id,
                        priority,
                        enqueued=self.clock())
        self.tasks[task_id] = task
        return task

    def on_new_task(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        if body["TaskId"] in self.tasks:
            return  # Comm's retry of a task we have
        task = self.new_slot(router, body["TaskId"], body.get("params") or {}, body.get("ClientUniqueId") or "")
        self.record(task, "queued", queue=task.queue.name, priority=task.priority)
        self.enqueue(task)
        self.dispatch(task.queue)

    def on_task_state(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        state, agent_id = body["State"], body.get("AgentId")
        task = self.tasks.get(body["TaskId"])
        if task is None:
            if state == S.QUEUED:  # a task we never saw: take it as new, at the head
                task = self.new_slot(router, body["TaskId"], body.get("params") or {}, "")
                task.head = True
                self.enqueue(task)
                self.dispatch(task.queue)
            return
        if state == S.QUEUED:
            freed = self.release_all(router, task)
            self.counters["requeued"] += 1
            task.head = True
            self.record(task, "requeued", code=body.get("Code"), agent=agent_id)
            self.enqueue(task)  # back at the head before anyone freed here is offered anything
            self.dispatch(task.queue)
            self.settle(router, freed)
        elif state == S.ACTIVE:
            agent = router.agents.get(agent_id) if agent_id else None
            if agent is None or task.offered_to != agent_id:
                # Comm's view and ours have drifted apart: take Comm's, whole.
                log.warning("task %s accepted by %s, but offered to %s: resynchronising", task.task_id, agent_id,
                            task.offered_to)
                if self.resync is not None:
                    self.resync(f"{task.task_id} accepted by {agent_id}, offered to {task.offered_to}")
                return
            agent.offer = None
            agent.active.add(task.task_id)
            task.offered_to = None
            task.agents = [agent_id]
            if task.client_id:
                self.last_agent[(router.name, task.client_id)] = agent_id
                self.last_agent.move_to_end((router.name, task.client_id))
                if len(self.last_agent) > CUSTOMERS_KEPT:
                    self.last_agent.popitem(last=False)
            self.record(task, "accepted", agent=agent_id)
            self.agent_changed(router, agent)
        elif state == S.CLOSED:
            if body.get("Scope") == "PARTICIPANT" and agent_id:
                self.settle(router, self.release(router, task, agent_id))
                return
            freed = self.release_all(router, task)
            self.dequeue(task)
            del self.tasks[task.task_id]
            self.counters["closed"] += 1
            self.record(task, "closed", code=body.get("Code"))
            self.settle(router, freed)

    def on_transfer(self, body: dict[str, Any]) -> None:
        router = self.router(body["MRD"])
        task = self.tasks.get(body["TaskId"])
        owner, recipient = body["OwnerAgentId"], body["RecipientAgentId"]
        if task is None:
            log.warning("transfer of unknown task %s", body["TaskId"])
            return
        self.record(task, "transferred", agent=recipient, previous=owner)
        self.hold(router, task, recipient, first=True)
        self.emit("TaskAgentTransferred", {"TaskId": task.task_id, "AgentId": recipient, "PreviousAgentId": owner})
        self.settle(router, self.release(router, task, owner))

    def on_conference(self, body: dict[str, Any]) -> None:
        router = self.router(body["Mrd"])
        task = self.tasks.get(body["TaskId"])
        if task is None:
            log.warning("conference on unknown task %s", body["TaskId"])
            return
        self.record(task, "conferenced", agent=body["ConferenceParticipant"])
        self.hold(router, task, body["ConferenceParticipant"], first=False)
        self.emit("TaskConferenced", {"TaskId": task.task_id, "OwnerAgentId": body["ConferenceOwner"],
                                      "ParticipantAgentId": body["ConferenceParticipant"]})

    def on_snapshot(self, body: dict[str, Any]) -> None:
        """Forget everything and rebuild from Comm's view (the Clone pattern's snapshot)."""
        for task in self.tasks.values():
            if task.timer is not None:
                task.timer.cancel()
        self.reset()
        for entry in body["Agents"]:
            router = self.routers.get(entry["MRD"])
            if router is None:
                continue
            agent = self.agent(router, entry["AgentId"])
            agent.state, agent.active, agent.offer = entry["State"], set(entry["Tasks"]), entry["Offer"]
        for entry in body["Tasks"]:
            router = self.routers.get(entry["MRD"])
            if router is None:
                continue
            try:
                task = self.new_slot(router, entry["TaskId"], entry.get("params") or {},
                                     entry.get("ClientUniqueId") or "")
            except WireError:
                continue
            if entry["State"] == S.QUEUED:
                task.enqueued -= float(entry.get("Waited", 0.0))
                self.enqueue(task)
            elif entry["State"] == S.RESERVED:
                task.offered_to = entry["Agents"][0] if entry["Agents"] else None
            else:
                task.agents = list(entry["Agents"])
        for router in self.routers.values():
            for agent in router.agents.values():
                self.reindex(router, agent)
            for queue in router.queues.values():
                self.dispatch(queue)
        self.counters["snapshots"] += 1

    # bookkeeping -----------------------------------------------------------------------
    def enqueue(self, task: TaskSlot, at_least: int = 0) -> None:
        if task.waiting:
            return
        queue = task.queue
        task.waiting = True
        queue.waiting_count += 1
        # the step reached by now: a task that waited before (a requeue) keeps what it reached;
        # a step's timer firing reaches the next step even if float sums say a hair less
        waited = self.clock() - task.enqueued
        level, until = 0, queue.timeouts[0]
        while level + 1 < len(queue.timeouts) and (level < at_least or waited >= until):
            level += 1
            until += queue.timeouts[level]
        task.level = level
        heapq.heappush(queue.levels[level], (task.urgency(queue.ageing), next(self.task_seq), task.task_id))
        if level + 1 < len(queue.timeouts) and self.call_later is not None:
            task.timer = self.call_later(until - waited, self.next_step, task.task_id)

    def next_step(self, task_id: str) -> None:
        """A step's timeout passed: the next step's agents qualify too."""
        task = self.tasks.get(task_id)
        if task is None or not task.waiting:
            return
        self.dequeue(task)
        self.enqueue(task, at_least=task.level + 1)
        self.record(task, "step", step=task.level, expr=task.queue.exprs[task.level].text)
        self.dispatch(task.queue)

    def dequeue(self, task: TaskSlot) -> None:
        if task.waiting:
            task.waiting = False
            task.queue.waiting_count -= 1
        if task.timer is not None:
            task.timer.cancel()
            task.timer = None

    def hold(self, router: MrdRouter, task: TaskSlot, agent_id: str, first: bool) -> None:
        agent = self.agent(router, agent_id)
        agent.active.add(task.task_id)
        if agent_id not in task.agents:
            task.agents.insert(0, agent_id) if first else task.agents.append(agent_id)
        self.reindex(router, agent)

    def release(self, router: MrdRouter, task: TaskSlot, agent_id: str) -> list[AgentSlot]:
        """End one agent's part in a task (its offer, or its accepted task); returns the
        agent, for `settle` once the task is where it belongs."""
        agent = router.agents.get(agent_id)
        if agent_id in task.agents:
            task.agents.remove(agent_id)
        if task.offered_to == agent_id:
            task.offered_to = None
        if agent is None:
            if router.offered_before_logout.get(agent_id) == task.task_id:
                del router.offered_before_logout[agent_id]
            return []
        if agent.offer == task.task_id:
            agent.offer = None
        elif task.task_id in agent.active:
            agent.active.discard(task.task_id)
            agent.since = self.clock()  # just finished a task
        self.reindex(router, agent)
        return [agent]

    def release_all(self, router: MrdRouter, task: TaskSlot) -> list[AgentSlot]:
        return [agent for agent_id in [*task.agents, *([task.offered_to] if task.offered_to else [])]
                for agent in self.release(router, task, agent_id)]

    def settle(self, router: MrdRouter, agents: list[AgentSlot]) -> None:
        """Freed agents look for waiting work."""
        for agent in agents:
            if router.agents.get(agent.agent_id) is agent:
                self.agent_changed(router, agent)

    # the decision ----------------------------------------------------------------------
    def choose(self, task: TaskSlot) -> tuple[str | None, list[tuple[int, Key, str]]]:
        """The agent for `task` among the steps it reached, and the best of each step."""
        queue, reached = task.queue, range(task.level + 1)
        candidates = [(step, *best) for step in reached if (best := queue.indexes[step].best()) is not None]
        if task.client_id:
            last = self.last_agent.get((task.mrd, task.client_id))
            if last is not None and any(last in queue.indexes[step] for step in reached):
                return last, candidates
        if not candidates:
            return None, candidates
        return min(candidates, key=lambda c: c[1])[2], candidates

    def dispatch(self, queue: QueueRouter) -> None:
        """Offer waiting tasks, most urgent first, while an agent of a reached step is free."""
        while queue.waiting_count:
            heads = [task for level in range(len(queue.levels)) if (task := queue.head(level, self.tasks))]
            heads.sort(key=lambda t: t.urgency(queue.ageing))
            for task in heads:
                agent_id, candidates = self.choose(task)
                if agent_id is not None:
                    self.offer(queue, task, agent_id, candidates)
                    break
            else:
                return

    def offer(self, queue: QueueRouter, task: TaskSlot, agent_id: str, candidates: list[tuple[int, Key, str]]) -> None:
        router = queue.mrd
        agent = router.agents[agent_id]
        self.dequeue(task)
        task.head = False
        agent.offer = task.task_id
        agent.last_offered = next(self.offers)
        task.offered_to = agent_id
        self.reindex(router, agent)
        self.counters["selected"] += 1
        returning = bool(task.client_id) and self.last_agent.get((task.mrd, task.client_id)) == agent_id
        self.record(task, "offered", agent=agent_id, queue=queue.name, policy=queue.policy, step=task.level,
                    why="returning customer's last agent" if returning else f"best by {queue.policy}",
                    candidates=[{"step": s, "agent": a, "key": list(k)} for s, k, a in candidates], clock=self.clock())
        self.explainer.offered(queue, task, agent_id, returning)
        self.emit("TaskAgentSelected", {"TaskId": task.task_id, "AgentId": agent_id,
                                        "Status": S.SELECTED_RESERVED})

    # explain ---------------------------------------------------------------------------
    def record(self, task: TaskSlot, event: str, **details: Any) -> None:
        self.explainer.record(task.task_id, event, details)

    def explain(self, task_id: str) -> dict[str, Any]:
        return self.explainer.explain(task_id)

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "tasks_waiting": sum(q.waiting_count for r in self.routers.values()
                                                      for q in r.queues.values()),
                "mrds": {name: {"agents": len(r.agents),
                                "queues": {q.name: {"waiting": q.waiting_count,
                                                    "eligible": [len(i) for i in q.indexes]}
                                           for q in r.queues.values()}}
                         for name, r in self.routers.items()}}
