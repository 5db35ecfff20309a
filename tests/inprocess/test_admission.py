"""Admission control (issue 15): Comm refuses a new Task once it has waited at Comm's door
(its intake) past its budget of Comm's CPU, answers every one, and takes everything else
first. A burst against a real Comm: tests/processes/test_admission.py."""

from __future__ import annotations

from actors.comm.core import CommCore
from actors.comm.intake import Intake
from wire.codec import WireError
from wire.states import OVERLOADED

from ..fakeclock import FakeClock


def door_with_a_budget_of(budget: float):
    """Comm's intake and its door on a CPU clock and wake-up count the test moves; each
    Task taken adds the door's answer ("" when admitted) to `answers`."""
    cpu, wake = FakeClock(100.0), [1]   # Comm's CPU time, as the monotonic clock moves
    intake = Intake(lambda: wake[0], stale_after=budget, clock=cpu.clock)
    admission = CommCore({}, {"chat": {"max_tasks": 1, "interruptible": True}}, send_event=print, send_mre=print,
                         stream="s", intake=intake).admission
    answers: list[str] = []

    def take(frames: list[bytes], peer: str | None) -> None:
        try:
            admission.admit(None)
            answers.append("")
        except WireError as refused:
            assert refused.code == OVERLOADED
            answers.append(refused.reason)
    intake.take = take
    return cpu, wake, intake, admission, answers


def test_a_new_task_is_refused_once_it_has_waited_at_the_door_past_the_budget():
    cpu, wake, intake, admission, answers = door_with_a_budget_of(0.025)
    for n in range(3):
        intake.keep([b"Task", b"{}"])  # read at CPU 100.0, in one wake-up
    cpu.advance(0.020)
    intake.handle(slice_s=60.0)
    assert answers == ["", "", ""]      # 20 ms waited: within the budget
    wake[0] += 1
    intake.keep([b"Task", b"{}"])
    cpu.advance(0.030)
    intake.handle(slice_s=60.0)
    assert "waited 30 ms of Comm's CPU at its door" in answers[-1] and "comm.admission_budget (25 ms)" in answers[-1]
    assert admission.stats()["admission"] == {"refused": 1, "refused_unread": 0, "budget_ms": 25.0, "at_door": 0,
                                              "door_full": 0}


def test_a_backlog_of_tasks_past_their_budget_is_refused_at_once_and_fresh_ones_still_come_in():
    """Refusals are not held to a turn's slice: under a flood that outruns them, a backlog
    of stale Tasks would otherwise refuse every Task that reaches the door, fresh ones too."""
    cpu, wake, intake, admission, answers = door_with_a_budget_of(0.025)
    for _ in range(500):
        intake.keep([b"Task", b"{}"])
    cpu.advance(0.1)   # they have waited 100 ms
    wake[0] += 1
    for _ in range(5):
        intake.keep([b"Task", b"{}"])  # and five fresh ones behind them
    assert intake.handle(slice_s=0.0)  # no time left for fresh Tasks this turn: they wait
    assert len(answers) == 500 and all("waited 100 ms" in a for a in answers)
    assert len(intake.waiting) == 5
    assert not intake.handle(slice_s=60.0)
    assert answers[500:] == [""] * 5
