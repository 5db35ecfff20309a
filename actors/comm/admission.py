"""Admission control: Comm refuses new Tasks at the door when it cannot take them without
slowing what it already holds.

A turn of Comm's loop takes what waits on its queues, handles it, journals it and sends
what it caused; every message that arrives meanwhile waits for the next turn. So the length
of a turn is the latency Comm adds, and agents wait on it twice a task (their acceptance,
their close): long turns keep agents from their next task and fewer tasks complete. New
Tasks are handled after everything else of the turn (runtime `serve`, `last`), and once the
turn has taken `budget` seconds of Comm's CPU (its thread's: a machine busy with other
work stretches a turn in wall time, and refusing Tasks would not give that time back), each
further new Task is refused `Error OVERLOADED`: what is said about the tasks and agents
Comm holds is always taken, new work only as far as the turn has room. A retry of a Task already acknowledged is still answered with its
state (the ledger answers those before any handler runs).

Measured without it (2 cores, 2 simulated Chat Servers of 250 agents): offered 16,000
tasks/s, about four times what it completes, Comm took every Task, its live tasks grew by
13,000 a second, every agent sat RESERVED waiting for its acceptance to be read, and
completed/s fell to 1,700-2,500 (40-60 % of the peak). With it: 96-100 % of the peak.
"""

from __future__ import annotations

import time
from typing import Any, Callable

ADMISSION_BUDGET = 0.025  # s of a turn after which new Tasks are refused (topology comm.admission_budget)


class Admission:
    def __init__(self, turn_began: Callable[[], float], budget: float = ADMISSION_BUDGET,
                 clock: Callable[[], float] = time.thread_time):
        self.turn_began = turn_began  # `clock` when the current turn of the loop began (Loop.woke_cpu)
        self.budget = budget
        self.clock = clock
        self.refused = 0         # Tasks refused
        self.turns_refusing = 0  # turns that refused some
        self.last_refusing = -1.0

    def refusal(self) -> str:
        """Why a new Task is refused now, or "" when it is admitted."""
        began = self.turn_began()
        spent = self.clock() - began
        if spent < self.budget:
            return ""
        if began != self.last_refusing:
            self.last_refusing = began
            self.turns_refusing += 1
        self.refused += 1
        return (f"Comm is over its load: this turn has taken {spent * 1000:.0f} ms of its CPU, past "
                f"comm.admission_budget ({self.budget * 1000:.0f} ms); try again later")

    def stats(self) -> dict[str, Any]:
        return {"admission": {"refused": self.refused, "turns_refusing": self.turns_refusing,
                              "budget_ms": round(self.budget * 1000, 1)}}
