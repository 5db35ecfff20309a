"""Our customers' tasks counted by the queue they chose (a load scenario's `customers.queues`):
created, refused, accepted, and how each ended, with the wait for an agent (Task sent ->
TaskAgentSelected received, the routing latency of customers.py) by queue. `mroute load`
sums them over its Chat Servers for the report's `queues`. A task that names no queue (the
MRD's default: no scenario) is not counted here."""

from __future__ import annotations

from typing import Any

from wire.stats import Histogram

COUNTS = ("created", "refused", "accepted", "closed", "abandoned", "expired", "closed_other", "lost")


class ByQueue:
    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.wait: dict[str, Histogram] = {}
        self.of_request: dict[str, str] = {}   # MsgId of our Task -> its queue, until Comm answers it
        self.of_task: dict[str, str] = {}      # TaskId -> its queue, until it ends

    def count(self, queue: str | None, key: str) -> None:
        if queue is not None:
            if queue not in self.counts:
                self.counts[queue] = dict.fromkeys(COUNTS, 0)
                self.wait[queue] = Histogram()
            self.counts[queue][key] += 1

    def created(self, msg_id: str | None, queue: str | None) -> None:
        self.count(queue, "created")
        if msg_id is not None and queue is not None:
            self.of_request[msg_id] = queue

    def refused(self, msg_id: str | None, queue: str | None = None) -> None:
        self.count(self.of_request.pop(msg_id, None) if msg_id is not None else queue, "refused")

    def answered(self, msg_id: str, task_id: str) -> None:
        queue = self.of_request.pop(msg_id, None)
        if queue is not None:
            self.of_task[task_id] = queue

    def task(self, task_id: str, key: str) -> None:
        self.count(self.of_task.get(task_id), key)

    def waited(self, task_id: str, seconds: float) -> None:
        queue = self.of_task.get(task_id)
        if queue is not None:
            self.wait[queue].record(seconds)

    def ended(self, task_id: str, outcome: str) -> None:
        self.count(self.of_task.pop(task_id, None), outcome)

    def forget_requests(self) -> None:
        """A Comm that lost our tasks: their queues' counts stay, our maps of them go."""
        self.of_request.clear()
        self.of_task.clear()

    def stats(self) -> dict[str, Any]:
        return {queue: {**counts, "wait": self.wait[queue].to_json()} for queue, counts in self.counts.items()}
