"""Admission control: Comm refuses new Tasks at the door when it cannot take them without
slowing what it already holds.

New Tasks wait in Comm's intake (intake.py) while everything said about the tasks and agents
Comm holds is handled as it is read. A Task that has waited there longer than `budget` of
Comm's CPU (its thread's: a machine busy with other work stretches the wait in wall time,
and refusing Tasks would not give that time back) is refused `Error OVERLOADED`: Comm takes
new work only while it keeps up with it. So does a Task that finds the door full
(intake.MAX_AT_DOOR). A retry of a Task already acknowledged is still answered with its
state (the ledger answers those before any handler runs).

Measured without any (2 cores, 2 simulated Chat Servers of 250 agents): offered 16,000
tasks/s, about four times what it completes, Comm took every Task, its live tasks grew by
13,000 a second, every agent sat RESERVED waiting for its acceptance to be read, and
completed/s fell to 1,700-2,500 (40-60 % of the peak). Admitting by the length of Comm's
turn lifted that to 96-100 %; the intake keeps desks' messages from waiting behind Tasks.
"""

from __future__ import annotations

from typing import Any

from .intake import Intake


class Admission:
    def __init__(self, intake: Intake):
        self.intake = intake
        self.refused = 0  # Tasks refused
        self.exempt = False  # the Task being handled is a retry of one Comm could not journal: it is served

    def refusal(self) -> str:
        """Why the new Task being handled is refused, or "" when it is admitted."""
        intake = self.intake
        if self.exempt:
            return ""
        if intake.full:
            self.refused += 1
            return f"{len(intake.waiting):,} new Tasks wait at Comm's door already; try again later"
        waited, budget = intake.lag(), intake.stale_after
        if waited < budget:
            return ""
        self.refused += 1
        return (f"Comm is over its load: this Task waited {waited * 1000:.0f} ms of Comm's CPU at its door, "
                f"past comm.admission_budget ({budget * 1000:.0f} ms); try again later")

    def stats(self) -> dict[str, Any]:
        return {"admission": {"refused": self.refused, "budget_ms": round(self.intake.stale_after * 1000, 1),
                              "at_door": len(self.intake.waiting), "door_full": self.intake.door_full}}
