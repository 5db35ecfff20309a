"""Admission control: Comm refuses new Tasks at the door when it cannot take them without
slowing what it already holds.

A turn of Comm's loop takes what waits on its queues (each for at most a time slice:
runtime DRAIN_SLICE), handles it, journals it and sends what it caused; every message that
arrives meanwhile waits. While Comm keeps up, a turn ends with its queues empty. When it
does not, turns follow each other at once with input left waiting: Comm is behind, and how
long it has been behind is the latency it adds, which agents wait on twice a task (their
acceptance, their close): agents kept from their next task complete fewer tasks. New Tasks
are handled after everything else a read takes (runtime `serve`, `last`), and once Comm has
been behind for `budget` seconds of its CPU (its thread's: a machine busy with other work
stretches it in wall time, and refusing Tasks would not give that time back), each further
new Task is refused `Error OVERLOADED`: what is said about the tasks and agents Comm holds
is always taken, new work only while Comm keeps up. A retry of a Task already acknowledged
is still answered with its state (the ledger answers those before any handler runs).

Measured without it (2 cores, 2 simulated Chat Servers of 250 agents): offered 16,000
tasks/s, about four times what it completes, Comm took every Task, its live tasks grew by
13,000 a second, every agent sat RESERVED waiting for its acceptance to be read, and
completed/s fell to 1,700-2,500 (40-60 % of the peak). With it: 96-100 % of the peak.
Before the slices, a busy period was one long turn, and the budget was counted from the
turn's start: the same figure, now that turns are short.
"""

from __future__ import annotations

import time
from typing import Any, Callable

ADMISSION_BUDGET = 0.025  # s of CPU behind its input after which new Tasks are refused (comm.admission_budget)


class Admission:
    def __init__(self, busy_since: Callable[[], float], budget: float = ADMISSION_BUDGET,
                 clock: Callable[[], float] = time.thread_time):
        self.busy_since = busy_since  # `clock` when Comm last began a turn with nothing left behind (Loop)
        self.budget = budget
        self.clock = clock
        self.refused = 0         # Tasks refused
        self.busy_periods_refusing = 0  # busy periods that refused some
        self.last_refusing = -1.0
        self.reason = ""

    def refusal(self) -> str:
        """Why a new Task is refused now, or "" when it is admitted. A busy period that
        refuses refuses until it ends: under a flood most Tasks are refused, and each costs
        only this comparison (the reason says when the refusing began)."""
        began = self.busy_since()
        if began == self.last_refusing:
            self.refused += 1
            return self.reason
        spent = self.clock() - began
        if spent < self.budget:
            return ""
        self.last_refusing = began
        self.busy_periods_refusing += 1
        self.refused += 1
        self.reason = (f"Comm is over its load: it has been behind its input for {spent * 1000:.0f} ms of its "
                       f"CPU, past comm.admission_budget ({self.budget * 1000:.0f} ms); try again later")
        return self.reason

    def stats(self) -> dict[str, Any]:
        return {"admission": {"refused": self.refused, "busy_periods_refusing": self.busy_periods_refusing,
                              "budget_ms": round(self.budget * 1000, 1)}}
