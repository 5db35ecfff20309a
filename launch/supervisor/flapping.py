"""Crash-loop protection (Circus's `flapping`): when to restart a process that exited, and
when to give up on it (zeromq-rules 4). Pure logic: no processes, no clock of its own.

A process counts as started once it ran STARTED_AFTER seconds; each exit before that is a
quick failure. Restarts back off exponentially (BACKOFF_FIRST doubling to BACKOFF_CAP);
MAX_QUICK_FAILURES quick failures in a row put it in FATAL until an operator starts it.
"""

from __future__ import annotations

from dataclasses import dataclass

STARTED_AFTER = 1.0        # a child that ran this long counts as started (resets its backoff)
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 5.0
MAX_QUICK_FAILURES = 5     # consecutive failed starts before FATAL


@dataclass(frozen=True)
class Verdict:
    fatal: bool
    delay: float = 0.0     # seconds before the restart, when not fatal


@dataclass
class Flapping:
    started_after: float = STARTED_AFTER
    first: float = BACKOFF_FIRST
    cap: float = BACKOFF_CAP
    max_quick_failures: int = MAX_QUICK_FAILURES
    quick_failures: int = 0

    def exited(self, ran: float, was_started: bool) -> Verdict:
        """A process exited after running `ran` seconds; `was_started`: it had reported
        READY. Restart it after the verdict's delay, or give up."""
        if was_started and ran >= self.started_after:
            self.quick_failures = 0
        else:
            self.quick_failures += 1
        if self.quick_failures >= self.max_quick_failures:
            return Verdict(fatal=True)
        return Verdict(fatal=False, delay=self.backoff())

    def backoff(self) -> float:
        return min(self.cap, self.first * 2 ** max(0, self.quick_failures - 1))

    def reset(self) -> None:
        """An operator started it: a fresh budget of failures."""
        self.quick_failures = 0
