"""What became of each queue's tasks: the rows of a load report and of `mroute top`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from wire import states as S
from wire.stats import Histogram

from .state import Task


@dataclass
class QueueFigures:
    """A queue's tasks over the journal's life: created, accepted (at least once), left
    (closed while waiting, never accepted: cancelled, expired); and their waits for an
    agent since this process started."""
    created: int = 0
    accepted: int = 0
    left: int = 0
    wait: Histogram = field(default_factory=Histogram)

    def counts(self) -> list[int]:
        return [self.created, self.accepted, self.left]

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "accepted": self.accepted, "left": self.left, "wait": self.wait.to_json()}


def queue_rows(configured: Iterable[str], by_queue: dict[str, QueueFigures], live: Iterable[Task],
               waited: Callable[[Task], float]) -> dict[str, dict[str, Any]]:
    """Queue -> its figures, the tasks waiting in it and the oldest wait (s): every queue,
    an empty one too (it reads 0, it does not vanish from top and the metrics)."""
    rows: dict[str, dict[str, Any]] = {name: {"waiting": 0, "oldest_wait_s": 0.0} for name in configured}
    for name, figures in by_queue.items():
        rows.setdefault(name, {"waiting": 0, "oldest_wait_s": 0.0}).update(figures.to_json())
    for task in live:
        if task.state == S.QUEUED:
            row = rows.setdefault(task.queue, {"waiting": 0, "oldest_wait_s": 0.0})
            row["waiting"] += 1
            row["oldest_wait_s"] = max(row["oldest_wait_s"], round(waited(task), 3))
    return rows
