"""A task's two clocks: its time to live while it waits, and its offer's time to be accepted.

Timers are not state: after a restart they are armed again from the tasks (`resume`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from wire import states as S

from .state import Task

if TYPE_CHECKING:
    from .tasks import Tasks

log = logging.getLogger("mroute.comm")


class TaskTimers:
    def __init__(self, tasks: "Tasks", call_later: Callable[..., Any] | None):
        self.tasks = tasks
        self.call_later = call_later
        self.ttl: dict[str, Any] = {}     # task id -> its time-to-live timer
        self.offer: dict[str, Any] = {}   # task id -> its offer's RONA timer

    def spec(self, task: Task) -> dict[str, Any]:
        return self.tasks.queues.get(task.queue, {})

    def arm_ttl(self, task: Task) -> None:
        ttl = self.spec(task).get("ttl")
        if ttl and self.call_later is not None:
            self.cancel(self.ttl, task.task_id)
            self.ttl[task.task_id] = self.call_later(max(0.0, ttl - self.tasks.waited(task)), self.expire, task.task_id)

    def arm_offer(self, task: Task) -> None:
        timeout = self.spec(task).get("offer_timeout")
        if timeout and self.call_later is not None:
            self.offer[task.task_id] = self.call_later(timeout, self.rona, task.task_id, task.owner)

    def resume(self) -> None:
        """After a reload from the journal: waiting tasks keep what is left of their time to
        live (an offer's task too: it may come back); offers get a whole offer timeout."""
        for task in self.tasks.live.values():
            if task.state in (S.QUEUED, S.RESERVED):
                self.arm_ttl(task)
            if task.state == S.RESERVED:
                self.arm_offer(task)

    @staticmethod
    def cancel(timers: dict[str, Any], task_id: str) -> None:
        timer = timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()

    def disarm(self, task_id: str) -> None:
        self.cancel(self.offer, task_id)
        self.cancel(self.ttl, task_id)

    def disarm_offer(self, task_id: str) -> None:
        self.cancel(self.offer, task_id)

    def expired(self, task: Task) -> bool:
        ttl = self.spec(task).get("ttl")
        return bool(ttl) and self.tasks.waited(task) >= ttl

    def expire(self, task_id: str) -> None:
        """Time to live ran out: a waiting task closes NO_AGENT_AVAILABLE; one on offer or
        held is left to finish (an offer that comes back closes then, in requeue)."""
        self.ttl.pop(task_id, None)
        task = self.tasks.live.get(task_id)
        if task is not None and task.state == S.QUEUED:
            self.tasks.counters["expired"] += 1
            self.tasks.close(task, S.NO_AGENT_AVAILABLE)

    def rona(self, task_id: str, agent_id: str) -> None:
        """Redirect on no answer: the offer was not accepted in time. The agent goes
        NOT_READY (reason RONA) and the task back to the head of its queue."""
        self.offer.pop(task_id, None)
        tasks = self.tasks
        task = tasks.live.get(task_id)
        if task is None or task.state != S.RESERVED or task.owner != agent_id:
            return
        tasks.counters["rona"] += 1
        log.debug("%s not accepted by %s in time: RONA", task_id, agent_id,
                  extra={"TaskId": task_id, "AgentId": agent_id})
        presence = tasks.agents.find(agent_id, task.mrd)
        if presence is not None:
            tasks.agents.want(presence, S.NOT_READY, S.RONA)
        tasks.requeue(task, S.RONA)
