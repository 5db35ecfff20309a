"""Tasks and their lifecycle: the only owner of `Task`, live and recently closed.

QUEUED -> RESERVED (offered) -> ACTIVE (accepted) -> WRAP_UP -> CLOSED, and back to QUEUED
on RONA or AGENT_LOGOUT (protocol.md 1.4). Each change is published to everyone concerned
(the task's creator and the agents holding it) and forwarded to the MRE, and marks the task
dirty: the journal writes exactly the tasks marked.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from typing import Any, Callable

import orjson

from wire import states as S
from wire.codec import WireError, routing_params
from wire.stats import Histogram
from actors.lograte import LogBudget

from .agents import Agents
from .figures import QueueFigures, queue_rows
from .streams import Streams
from .state import CommState, Task
from .timers import TaskTimers

log = logging.getLogger("mroute.comm")

CLOSED_KEPT = 20_000  # closed tasks remembered, to answer late questions about them
COUNTERS = ("tasks_created", "tasks_routed", "tasks_accepted", "tasks_closed", "tasks_requeued", "offers",
            "offers_refused", "rona", "expired")


def params_size(params: dict[str, Any]) -> int:
    return len(orjson.dumps(params))


def new_prefix() -> str:
    return format(int(time.time() * 1000), "x")


class Tasks:
    def __init__(self, agents: Agents, out: Streams, queues: dict[str, dict[str, Any]], *,
                 clock: Callable[[], float], call_later: Callable[..., Any] | None):
        self.agents = agents
        self.out = out
        self.queues = queues
        self.clock = clock
        self.timers = TaskTimers(call_later, on_ttl=self.expire, on_offer=self.rona)
        # this process's: waits for an agent since this start (until accepted, or until the
        # task left), and offers refused
        self.queue_wait = Histogram()
        self.by_queue: dict[str, QueueFigures] = {}  # queue -> its tasks and their waits: a load report's row
        self.refusal_lines = LogBudget()  # offers refused: a line each, up to a budget
        self.refused_because: dict[str, int] = {}  # offers refused, by why (Agents.cannot_take)
        self.load(CommState())

    def load(self, saved: CommState) -> None:
        """What the journal holds (at the start, and again after a write was undone): the
        tasks, their numbering and what became of them over the journal's life (journaled
        with every change, so that a restart, or a write undone, never leaves them counting
        other than the tasks do: created = closed + live). tasks_routed and tasks_accepted
        count tasks, each once, however often it was offered or accepted again; offers
        counts every offer, tasks_requeued every return to a queue. The timers of the
        tasks before are cancelled (resume_timers arms the loaded ones')."""
        self.timers.cancel_all()
        self.live: dict[str, Task] = dict(saved.tasks)
        self.closed: OrderedDict[str, Task] = OrderedDict(saved.closed)
        self.prefix = saved.task_prefix or new_prefix()   # the epoch: task ids never repeat across restarts
        self.number = saved.task_number                     # the last task id given out
        self.dirty: set[str] = set()
        counters = saved.counters
        self.counters = {**dict.fromkeys(COUNTERS, 0), **counters.get("tasks", {})}
        queues = counters.get("queues", {})
        for name in [*queues, *(name for name in self.by_queue if name not in queues)]:  # this process's waits stay
            figures = self.figures(name)
            figures.created, figures.accepted, figures.left = queues.get(name, (0, 0, 0))
        self.params_bytes = sum(params_size(task.params) for task in self.live.values())  # the budget's measure
        self.waiting = sum(task.queued_since is not None for task in self.live.values())  # queued or on offer

    def counts(self) -> tuple[Any, ...]:
        """The counters the journal keeps, as a value that compares."""
        return tuple(self.counters.values()), [(q, f.counts()) for q, f in self.by_queue.items()]

    def figures(self, queue: str) -> "QueueFigures":
        figures = self.by_queue.get(queue)
        if figures is None:
            figures = self.by_queue[queue] = QueueFigures()
        return figures

    # lookups ----------------------------------------------------------------------------
    def task(self, task_id: str) -> Task:
        task = self.live.get(task_id)
        if task is None:
            if task_id in self.closed:
                raise WireError(S.INVALID_STATE, f"task {task_id} is CLOSED", field="TaskId")
            raise WireError(S.NOT_FOUND, f"no task {task_id}", field="TaskId")
        return task

    def known(self, task_id: str) -> Task | None:
        return self.live.get(task_id) or self.closed.get(task_id)

    def wrapping_up(self, task_id: str) -> bool:
        return self.live[task_id].state == S.WRAP_UP

    def waited(self, task: Task) -> float:
        """Time spent waiting for an agent (queued or on offer), over all its visits to the queue."""
        return task.waited + (self.clock() - task.queued_since if task.queued_since is not None else 0.0)

    # its clocks: time to live while it waits, time to accept an offer ----------------------
    def arm_ttl(self, task: Task) -> None:
        ttl = self.queues.get(task.queue, {}).get("ttl")
        if ttl:
            self.timers.arm_ttl(task.task_id, ttl - self.waited(task))

    def arm_offer(self, task: Task) -> None:
        timeout = self.queues.get(task.queue, {}).get("offer_timeout")
        if timeout:
            self.timers.arm_offer(task.task_id, task.owner, timeout)  # type: ignore[arg-type]

    def expired(self, task: Task) -> bool:
        ttl = self.queues.get(task.queue, {}).get("ttl")
        return bool(ttl) and self.waited(task) >= ttl

    def resume_timers(self) -> None:
        """After a reload from the journal: waiting tasks keep what is left of their time to
        live (an offer's task too: it may come back); offers get a whole offer timeout."""
        for task in self.live.values():
            if task.state in (S.QUEUED, S.RESERVED):
                self.arm_ttl(task)
            if task.state == S.RESERVED:
                self.arm_offer(task)

    def expire(self, task_id: str) -> None:
        """Time to live ran out: a waiting task closes NO_AGENT_AVAILABLE; one on offer or
        held is left to finish (an offer that comes back closes then, in requeue)."""
        task = self.live.get(task_id)
        if task is not None and task.state == S.QUEUED:
            self.counters["expired"] += 1
            self.close(task, S.NO_AGENT_AVAILABLE)

    def rona(self, task_id: str, agent_id: str) -> None:
        """Redirect on no answer: the offer was not accepted in time. The agent goes
        NOT_READY (reason RONA) and the task back to the head of its queue."""
        task = self.live.get(task_id)
        if task is None or task.state != S.RESERVED or task.owner != agent_id:
            return
        self.counters["rona"] += 1
        log.debug("%s not accepted by %s in time: RONA", task_id, agent_id, extra={"TaskId": task_id, "AgentId": agent_id})
        presence = self.agents.find(agent_id, task.mrd)
        if presence is not None:
            self.agents.want(presence, S.NOT_READY, S.RONA)
        self.requeue(task, S.RONA)

    def destinations(self, task: Task, *extra: str | None) -> list[str]:
        """Who hears of a change: the task's creator and the desks of the agents it names."""
        dests = [task.origin]
        destination = self.agents.destination
        for agent_id in (task.owner, *task.participants, *extra):
            if agent_id:
                dest = destination(agent_id)
                if dest and dest not in dests:
                    dests.append(dest)
        return dests

    @staticmethod
    def state_body(task: Task, **fields: Any) -> dict[str, Any]:
        """A task's state as the Chat Servers hear it (TaskState, #11 + MRD)."""
        return {"TaskId": task.task_id, "AgentId": task.owner, "State": task.state, "MRD": task.mrd,
                "Code": task.code, "Participants": task.participants, "ClientUniqueId": task.client_id, **fields}

    # the lifecycle ----------------------------------------------------------------------
    def create(self, mrd: str, client_id: str, name: str, params: dict[str, Any], origin: str,
               params_bytes: int) -> Task:
        """A new task; `params_bytes` is params_size(params), measured by the request's checks."""
        now = self.clock()
        self.number += 1
        # the epoch and a number (never repeated), then 48 random bits: an id cannot be guessed
        # from another one, so a client acts only on the tasks it was told of
        task = Task(f"{self.prefix}-{self.number}-{secrets.token_hex(6)}", mrd, client_id, name, params, origin,
                    queue=params["queue"], created=now, queued_since=now)
        self.live[task.task_id] = task
        self.params_bytes += params_bytes
        self.waiting += 1
        self.dirty.add(task.task_id)
        self.counters["tasks_created"] += 1
        self.figures(task.queue).created += 1
        self.arm_ttl(task)
        self.out.publish(origin, "TaskState", {"TaskId": task.task_id, "State": S.QUEUED, "MRD": mrd,
                                               "ClientUniqueId": client_id})
        self.out.to_mre("NewTask", {"MRD": mrd, "TaskId": task.task_id, "params": routing_params(params),
                                    "ClientUniqueId": client_id})
        return task

    def select(self, task: Task, agent_id: str) -> str:
        """The MRE chose `agent_id`: offer the task, unless the agent moved meanwhile.
        Returns why it was not offered (Agents.cannot_take's kind), or ""."""
        presence = self.agents.find(agent_id, task.mrd)
        kind, why = self.agents.cannot_take(presence, agent_id, task.mrd)
        if kind:
            # The MRE's view was behind ours (the agent moved meanwhile): the task goes back.
            self.counters["offers_refused"] += 1
            self.refused_because[kind] = self.refused_because.get(kind, 0) + 1
            write, unlogged = self.refusal_lines.take()
            if write:
                log.warning("offer of %s to %s refused: %s%s", task.task_id, agent_id, why,
                            f" ({unlogged} refusals before this one not logged)" if unlogged else "",
                            extra={"TaskId": task.task_id, "AgentId": agent_id})
            self.out.to_mre("TaskState", {"TaskId": task.task_id, "AgentId": agent_id, "State": S.QUEUED,
                                          "MRD": task.mrd, "Code": S.RONA})
            return kind
        task.state, task.owner, task.code = S.RESERVED, agent_id, ""
        self.dirty.add(task.task_id)
        self.agents.offer(presence, task.task_id)
        self.counters["offers"] += 1
        if not task.routed:
            task.routed = True
            self.counters["tasks_routed"] += 1
        self.arm_offer(task)
        self.out.fan_out(self.destinations(task), "TaskAgentSelected",
                         {"TaskId": task.task_id, "AgentId": agent_id, "Status": S.SELECTED_RESERVED, "MRD": task.mrd})
        self.agents.refresh(agent_id, task.mrd)
        return ""

    def accept(self, task: Task, agent_id: str) -> None:
        presence = self.agents.presence(agent_id, task.mrd)
        self.agents.hold(presence, task.task_id)
        task.state, task.code = S.ACTIVE, ""
        task.waited, task.queued_since = self.waited(task), None
        self.waiting -= 1
        self.dirty.add(task.task_id)
        self.timers.disarm(task.task_id)
        if not task.accepted:  # a task's wait, and its acceptance, count once: it is one task
            task.accepted = True
            self.counters["tasks_accepted"] += 1
            self.queue_wait.record(task.waited)
            figures = self.figures(task.queue)
            figures.accepted += 1
            figures.wait.record(task.waited)
        self.agents.refresh(agent_id, task.mrd)
        self.changed(task, agent_id)

    def wrap_up(self, task: Task, agent_id: str) -> None:
        task.state = S.WRAP_UP
        self.dirty.add(task.task_id)
        for agent in task.agents():
            self.agents.refresh(agent, task.mrd)
        self.changed(task, agent_id)

    def changed(self, task: Task, agent_id: str | None, *, extra: tuple[str | None, ...] = (),
                **fields: Any) -> None:
        """Publish a task's new state to everyone concerned and forward it to the MRE."""
        body = {"TaskId": task.task_id, "AgentId": agent_id, "State": task.state, "MRD": task.mrd,
                "Code": task.code, **fields}
        self.out.fan_out(self.destinations(task, agent_id, *extra), "TaskState", body)
        self.out.to_mre("TaskState", body)

    def detach(self, task: Task) -> list[str]:
        """Take a task from every agent holding it or offered it; returns those agents."""
        agents = task.agents()
        for agent_id in agents:
            self.agents.release(agent_id, task.mrd, task.task_id)
        task.owner, task.participants = None, []
        self.dirty.add(task.task_id)
        return agents

    def requeue(self, task: Task, code: str) -> None:
        """Back to the head of its queue (RONA, AGENT_LOGOUT), unless its time ran out."""
        if self.expired(task):
            self.counters["expired"] += 1
            self.close(task, S.NO_AGENT_AVAILABLE)
            return
        self.timers.disarm_offer(task.task_id)
        agents = self.detach(task)
        task.state, task.code = S.QUEUED, code
        if task.queued_since is None:  # back from an agent who held it: waiting again
            task.queued_since = self.clock()
            self.waiting += 1
            self.arm_ttl(task)
        self.counters["tasks_requeued"] += 1
        for agent_id in agents:  # agents' new states reach the MRE before the task does
            self.agents.refresh(agent_id, task.mrd)
        self.changed(task, agents[0] if agents else None, extra=tuple(agents))

    def close(self, task: Task, code: str) -> None:
        self.timers.disarm(task.task_id)
        owner = task.owner
        agents = self.detach(task)
        if task.queued_since is not None:  # it left while it waited (cancelled, expired)
            self.waiting -= 1
            if not task.accepted:  # ... without ever being accepted
                waited = self.waited(task)
                self.queue_wait.record(waited)
                figures = self.figures(task.queue)
                figures.left += 1
                figures.wait.record(waited)
        task.state, task.code = S.CLOSED, code
        self.counters["tasks_closed"] += 1
        del self.live[task.task_id]
        self.params_bytes -= params_size(task.params)
        task.params = routing_params(task.params)  # a closed task is kept to answer questions, not its data
        self.closed[task.task_id] = task
        if len(self.closed) > CLOSED_KEPT:
            self.closed.popitem(last=False)
        self.changed(task, owner, extra=tuple(agents))
        for agent_id in agents:
            self.agents.refresh(agent_id, task.mrd)

    def leave(self, task: Task, agent_id: str, code: str) -> None:
        """A conference participant's part ends; the task stays with its owner."""
        task.participants.remove(agent_id)
        self.dirty.add(task.task_id)
        self.agents.release(agent_id, task.mrd, task.task_id)
        body = {"TaskId": task.task_id, "AgentId": agent_id, "State": S.CLOSED, "MRD": task.mrd,
                "Code": code, "Scope": "PARTICIPANT"}
        self.out.fan_out(self.destinations(task, agent_id), "TaskState", body)
        self.out.to_mre("TaskState", body)
        self.agents.refresh(agent_id, task.mrd)

    def end_part(self, task: Task, agent_id: str, code: str) -> None:
        """The agent is done with the task: it closes if the agent owns it, else its part ends."""
        if agent_id == task.owner:
            self.close(task, code)
        else:
            self.leave(task, agent_id, code)

    def give_back(self, task: Task, agent_id: str, code: str) -> None:
        """The agent can no longer hold the task (logged out): it goes back, or its part ends."""
        if task.owner == agent_id:
            self.requeue(task, code)
        else:
            self.leave(task, agent_id, code)

    # transfers and conferences ----------------------------------------------------------------
    def second_agent(self, task: Task, owner: str, other: str, owner_field: str, other_field: str) -> Any:
        """Validate a transfer or conference: the owner's task, an agent able to take it."""
        if task.state != S.ACTIVE:
            raise WireError(S.INVALID_STATE, f"task {task.task_id} is {task.state}, not ACTIVE", field="TaskId")
        if owner != task.owner:
            raise WireError(S.AUTHORIZATION_FAILURE, f"{owner} does not own task {task.task_id}", field=owner_field)
        if other in task.agents():
            raise WireError(S.INVALID_STATE, f"{other} already has task {task.task_id}", field=other_field)
        presence = self.agents.presence(other, task.mrd, other_field)
        if not self.agents.can_take(presence):
            raise WireError(S.INVALID_STATE, f"{other} cannot take task {task.task_id}: {presence.state} "
                            f"with {len(presence.tasks)} of {self.agents.mrds[task.mrd]['max_tasks']} tasks"
                            f"{' and an offer pending' if presence.offer else ''}", field=other_field)
        return presence

    # Comm validates and applies a transfer or conference, and tells the desks at once: the
    # MRE's report (TaskAgentTransferred, TaskConferenced) only says it counted the move, so
    # a report lost or late can never keep a desk from hearing of it.
    def transfer(self, task: Task, owner: str, recipient: str) -> None:
        target = self.second_agent(task, owner, recipient, "OwnerAgentId", "RecipientAgentId")
        self.agents.release(owner, task.mrd, task.task_id)
        self.agents.hold(target, task.task_id)
        task.owner, task.code = recipient, S.TRANSFERRED
        self.dirty.add(task.task_id)
        # The MRE counts the move before it hears either agent's new state.
        self.out.to_mre("Transfer", {"TaskId": task.task_id, "OwnerAgentId": owner, "RecipientAgentId": recipient,
                                     "MRD": task.mrd})
        self.agents.refresh(owner, task.mrd)
        self.agents.refresh(recipient, task.mrd)
        dests = self.destinations(task, owner)
        self.out.fan_out(dests, "TaskAgentTransferred",
                         {"TaskId": task.task_id, "AgentId": recipient, "PreviousAgentId": owner})
        self.out.fan_out(dests, "TaskState", self.state_body(task, PreviousAgentId=owner))

    def conference(self, task: Task, owner: str, participant: str) -> None:
        target = self.second_agent(task, owner, participant, "ConferenceOwner", "ConferenceParticipant")
        self.agents.hold(target, task.task_id)
        task.participants.append(participant)
        self.dirty.add(task.task_id)
        self.out.to_mre("Conference", {"TaskId": task.task_id, "ConferenceOwner": owner,
                                       "ConferenceParticipant": participant, "Mrd": task.mrd})
        self.agents.refresh(participant, task.mrd)
        self.out.fan_out(self.destinations(task), "TaskConferenced",
                         {"TaskId": task.task_id, "OwnerAgentId": owner, "ParticipantAgentId": participant})

    def stats(self) -> dict[str, Any]:
        queues = queue_rows(self.queues, self.by_queue, self.live.values(), self.waited)
        return {**self.counters, "offers_refused_because": self.refused_because, "tasks_live": len(self.live),
                "queues": queues, "tasks_waiting": sum(q["waiting"] for q in queues.values()), "epoch": self.prefix,
                "task_number": self.number, "queue_wait": self.queue_wait.to_json()}
