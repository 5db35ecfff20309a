"""Admission control: Comm refuses new Tasks at the door while it cannot keep up, instead
of taking more work than it can do and slowing every task it already holds.

Comm is behind when a wake-up takes all it may take from General in one turn (the
runtime's batch) and more is waiting: the queue grows faster than Comm empties it. Once it
has been behind for `lag` seconds without a turn that emptied the queue, a new `Task` is
refused `Error OVERLOADED` (a retry of one already acknowledged is still answered with its
state: the ledger answers those before any handler runs), until a turn empties the queue.
Everything else is still taken: the changes to tasks Comm holds are how it catches up.

Measured without it (`mroute bench`, 2 cores): offered twice what it completes, Comm took
every Task, the queues and the live tasks grew, Chat Servers resent what went unanswered
for a second, and completed/s fell to 77 % of the peak.
"""

from __future__ import annotations

import time
from typing import Any, Callable

ADMISSION_LAG = 0.2  # s behind before new Tasks are refused (topology comm.admission_lag)


class Admission:
    def __init__(self, lag: float = ADMISSION_LAG, clock: Callable[[], float] = time.monotonic):
        self.lag = lag
        self.clock = clock
        self.behind_since: float | None = None
        self.refused = 0      # Tasks refused while behind
        self.episodes = 0     # times Comm started refusing
        self.refusing = False

    def took(self, emptied: bool) -> None:
        """The end of a turn on General: whether it took everything that was waiting."""
        if emptied:
            self.behind_since = None
            self.refusing = False
        elif self.behind_since is None:
            self.behind_since = self.clock()

    def refusal(self) -> str:
        """Why a new Task is refused now, or "" when it is admitted."""
        since = self.behind_since
        if since is None:
            return ""
        behind = self.clock() - since
        if behind < self.lag:
            return ""
        if not self.refusing:
            self.refusing = True
            self.episodes += 1
        self.refused += 1
        return (f"Comm has had more waiting than it takes in a turn for {behind * 1000:.0f} ms "
                f"(comm.admission_lag {self.lag * 1000:.0f} ms): try again later")

    def stats(self) -> dict[str, Any]:
        return {"admission": {"refused": self.refused, "episodes": self.episodes,
                              "behind_ms": round((self.clock() - self.behind_since) * 1000)
                              if self.behind_since is not None else 0}}
