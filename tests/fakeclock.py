"""The tests' one fake time: what the product takes as its clocks, moved only by the test.

The product reads time through what it is given: `clock` (the monotonic clock: Comm, the
MRE, the GC, sessions, the journal, the log and refusal budgets), `wall` (the journal's
wall clock) and `call_later(delay, fn, *args)` (the loop's timers, each with `cancel()`).
A FakeClock gives all three:

    time = FakeClock()              # monotonic 0.0; the wall reads WALL_START then
    Journal(path, clock=time.clock, wall=time.wall)
    time.call_later(5.0, fn, arg)   # runs when time reaches 5.0
    time.advance(10.0)              # both clocks move on; due timers run in time order
    time.at(50.0)                   # the monotonic clock reads 50.0 (back too: a reboot)
    time.step_wall(3600.0)          # the wall clock jumps (NTP, `date -s`); monotonic does not
    time.now = 7.0                  # set the monotonic reading outright, no timer run

Subclass it when the fake time belongs to a bigger fake (the harness's Comm + MRE, the GC's
voice centre): `after_timer()` runs after each timer an `advance` ran.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable

WALL_START = 1_700_000_000.0  # the wall clock when the monotonic one reads its start (2023-11-14)


class Timer:
    """A timer `call_later` armed: it runs when time reaches `when`, unless cancelled first.
    Timers due at the same instant run in the order they were armed, as the loop's do.
    `cancelled` once it can run no more: cancelled, or run (so a test can tell a live timer
    the product keeps, e.g. the GC's wrap-up timer, from a spent one)."""

    def __init__(self, when: float, order: int, fn: Callable[..., Any], args: tuple[Any, ...]):
        self.when, self.order, self.fn, self.args, self.cancelled = when, order, fn, args, False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self.order) < (other.when, other.order)


class FakeClock:
    """Monotonic time `now` (from `start`), a wall clock `wall()` that reads `wall_start`
    then and moves with it unless stepped, and timers that run only when `advance` (or `at`)
    reaches them."""

    def __init__(self, start: float = 0.0, wall_start: float = WALL_START):
        self.now = start
        self.wall_offset = wall_start - start   # wall() - now: moved by step_wall only
        self.timers: list[Timer] = []           # a heap: the next due first
        self.armed = itertools.count()

    def clock(self) -> float:
        """The monotonic clock, as the product's `clock=` takes it."""
        return self.now

    def wall(self) -> float:
        """The wall clock, as the product's `wall=` takes it."""
        return self.wall_offset + self.now

    def step_wall(self, seconds: float) -> None:
        """The wall clock jumps by `seconds` (either way); the monotonic clock does not."""
        self.wall_offset += seconds

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(self.now + delay, next(self.armed), fn, args)
        heapq.heappush(self.timers, timer)
        return timer

    def advance(self, seconds: float) -> float:
        """Move time on by `seconds`, running the timers that fall due in time order (those
        they arm too, when due within it), each at its own instant; the new time."""
        return self._run_until(self.now + seconds)

    def at(self, t: float) -> float:
        """The monotonic clock reads `t`: forward as `advance` goes; back (a reboot, another
        machine) with no timer run. `t`."""
        if t < self.now:
            self.now = t
            return t
        return self._run_until(t)

    def _run_until(self, end: float) -> float:
        while self.timers and self.timers[0].when <= end:
            timer = heapq.heappop(self.timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, timer.when)
            timer.cancelled = True   # spent
            timer.fn(*timer.args)
            self.after_timer()
        self.now = end
        return end

    def after_timer(self) -> None:
        """Called after each timer `advance` ran: nothing here (a subclass delivers what it caused)."""
