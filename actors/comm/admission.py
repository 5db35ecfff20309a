"""Admission: the one door a new Task passes, or is refused `OVERLOADED` at, before any
of the request machinery runs (under several times the load Comm can take, refusals are
most of what it handles).

A Task is refused when Comm holds as many as it may (comm.max_live_tasks), when as many
wait for an agent as may (comm.max_waiting), when their params would take more than
comm.max_live_bytes, or when Comm cannot take it without slowing what it already holds:
new Tasks wait in Comm's intake (intake.py) while everything said about the tasks and
agents Comm holds is handled as it is read, and a Task that has waited there longer than
comm.admission_budget of Comm's CPU (its thread's: a machine busy with other work stretches
the wait in wall time, and refusing Tasks would not give that time back) is refused, as is
one that finds the intake full (intake.MAX_AT_DOOR). A retry of a Task already acknowledged
is not new: the ledger answers it with the task's state before it reaches the door. A Task
refused UNAVAILABLE (the journal could not write) and sent again does not wait its turn
again: after a full disk, 596 retries coming back at once were refused OVERLOADED.

Measured without any (2 cores, 2 simulated Chat Servers of 250 agents): offered 16,000
tasks/s, about four times what it completes, Comm took every Task, its live tasks grew by
13,000 a second, every agent sat RESERVED waiting for its acceptance to be read, and
completed/s fell to 1,700-2,500 (40-60 % of the peak). Admitting by the length of Comm's
turn lifted that to 96-100 %; the intake keeps desks' messages from waiting behind Tasks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from wire import states as S
from wire.codec import WireError
from wire.kernel.settings import COMM_DEFAULTS, CommSettings

from .intake import Intake
from .tasks import Tasks

UNAVAILABLE_KEPT = 100_000  # Tasks refused UNAVAILABLE remembered, their retries served


@dataclass(frozen=True)
class TaskLimits:
    """What one client's Task may cost Comm (topology keys under comm:, said in CommSettings)."""
    max_live_tasks: int = COMM_DEFAULTS.max_live_tasks
    max_params: int = COMM_DEFAULTS.max_params
    max_params_bytes: int = COMM_DEFAULTS.max_params_bytes
    max_live_bytes: int = COMM_DEFAULTS.max_live_bytes
    max_waiting: int = COMM_DEFAULTS.max_waiting

    @classmethod
    def of(cls, settings: CommSettings) -> TaskLimits:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


class Admission:
    def __init__(self, tasks: Tasks, limits: TaskLimits, intake: Intake | None = None):
        self.tasks = tasks
        self.limits = limits
        self.intake = intake      # None: Comm without its process (tests, benchmarks): no wait to judge
        self.unavailable: OrderedDict[str, None] = OrderedDict()  # Tasks refused UNAVAILABLE, by ledger key
        self.overloaded = 0       # Tasks refused for what Comm holds (the limits)
        self.refused = 0          # Tasks refused for their wait at the intake
        self.unread = 0           # ... of which refused from their bytes, undecoded (server.py refuse_unread)

    def admit(self, handled: str | None) -> None:
        """Refuse (WireError OVERLOADED) the new Task the ledger knows as `handled`, unless
        Comm can take it now."""
        tasks, limits = self.tasks, self.limits
        if tasks.waiting >= limits.max_waiting:
            self.overloaded += 1
            raise WireError(S.OVERLOADED, f"{tasks.waiting} tasks wait for an agent, the most Comm lets wait "
                                          f"(comm.max_waiting): try again later")
        if len(tasks.live) >= limits.max_live_tasks:
            self.overloaded += 1
            raise WireError(S.OVERLOADED, f"{len(tasks.live)} live tasks, the most Comm holds "
                                          f"(comm.max_live_tasks): try again later")
        retry = self.unavailable and handled is not None and self.unavailable.pop(handled, False) is None
        if self.intake is not None and not retry:
            self.judge_wait(self.intake)

    def judge_wait(self, intake: Intake) -> None:
        if intake.full:
            self.refused += 1
            raise WireError(S.OVERLOADED, f"{len(intake.waiting):,} new Tasks wait at Comm's door already; "
                                          f"try again later")
        if intake.lag() >= intake.stale_after:
            raise self.waited_too_long(intake)

    def waited_too_long(self, intake: Intake, **salvage: str) -> WireError:
        """The refusal of a Task that waited at the intake past its budget (counted)."""
        self.refused += 1
        return WireError(S.OVERLOADED, f"Comm is over its load: this Task waited {intake.lag() * 1000:.0f} ms of "
                                       f"Comm's CPU at its door, past comm.admission_budget "
                                       f"({intake.stale_after * 1000:.0f} ms); try again later", **salvage)

    def admit_params(self, size: int) -> None:
        """Refuse a Task whose params (`size` bytes, encoded) would take the live tasks' past
        comm.max_live_bytes."""
        if self.tasks.params_bytes + size > self.limits.max_live_bytes:
            self.overloaded += 1
            raise WireError(S.OVERLOADED, f"the live tasks' params take {self.tasks.params_bytes:,} bytes, the "
                                          f"most Comm holds (comm.max_live_bytes): try again later")

    def refused_unavailable(self, handled: str) -> None:
        """A Task refused UNAVAILABLE: its retry is served without waiting its turn again."""
        self.unavailable[handled] = None
        if len(self.unavailable) > UNAVAILABLE_KEPT:
            self.unavailable.popitem(last=False)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"overloaded": self.overloaded}
        if self.intake is not None:
            stats["admission"] = {"refused": self.refused, "refused_unread": self.unread,
                                  "budget_ms": round(self.intake.stale_after * 1000, 1),
                                  "at_door": len(self.intake.waiting), "door_full": self.intake.door_full}
        return stats
