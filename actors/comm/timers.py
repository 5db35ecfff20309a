"""A task's two clocks: its time to live while it waits, and its offer's time to be accepted.

Only the clocks live here: what happens when one runs out (NO_AGENT_AVAILABLE, RONA) is
the tasks' owner's to decide. Timers are not state: after a restart they are armed again
from the tasks (`Tasks.resume_timers`).
"""

from __future__ import annotations

from typing import Any, Callable


class TaskTimers:
    def __init__(self, call_later: Callable[..., Any] | None, *, on_ttl: Callable[[str], None],
                 on_offer: Callable[[str, str], None]):
        self.call_later = call_later
        self.on_ttl = on_ttl              # task id: its time to live ran out
        self.on_offer = on_offer          # task id, agent id: the offer was not accepted in time
        self.ttl: dict[str, Any] = {}     # task id -> its time-to-live timer
        self.offer: dict[str, Any] = {}   # task id -> its offer's RONA timer

    def arm_ttl(self, task_id: str, left: float) -> None:
        if self.call_later is not None:
            self.cancel(self.ttl, task_id)
            self.ttl[task_id] = self.call_later(max(0.0, left), self.ttl_ran_out, task_id)

    def arm_offer(self, task_id: str, agent_id: str, timeout: float) -> None:
        if self.call_later is not None:
            self.offer[task_id] = self.call_later(timeout, self.offer_ran_out, task_id, agent_id)

    def ttl_ran_out(self, task_id: str) -> None:
        self.ttl.pop(task_id, None)
        self.on_ttl(task_id)

    def offer_ran_out(self, task_id: str, agent_id: str) -> None:
        self.offer.pop(task_id, None)
        self.on_offer(task_id, agent_id)

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

    def cancel_all(self) -> None:
        for timer in (*self.ttl.values(), *self.offer.values()):
            timer.cancel()
        self.ttl.clear()
        self.offer.clear()
