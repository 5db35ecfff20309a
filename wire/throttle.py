"""Client-side throttling of new Tasks: a client refuses some Tasks itself while Comm refuses
them OVERLOADED, so that an overloaded Comm spends its time on the tasks it holds, not on
reading and refusing the ones it cannot take.

The rule is the one Google's SRE book gives for a backend under overload ("Handling
Overload", adaptive throttling): over the last `window` seconds, count the Tasks the client
meant to send (`requests`, those it refused itself among them) and those Comm took
(`accepts`: answered with anything but OVERLOADED); refuse a new one here with probability

    max(0, (requests - k * accepts) / (requests + 1))

Under overload Comm then sees about `k` times what it takes: the surplus tells it the demand
is there. Measured (issue 28): at twice the peak offered, a Task Comm reads and refuses costs
it about 40 us, against about 150 us for a whole lifecycle, so the book's k = 2 keeps Comm
refusing as many Tasks as it completes; 1.1 refuses one in ten.

Two departures from the book, both for what a k near 1 does:
- Only while Comm has refused a Task within the window. Counting the client's own refusals
  as requests keeps the probability where it is once Comm could take everything again (it
  moves away from there by a factor k a window: 24 windows at 1.1); a window without
  Comm's refusal opens the way at once.
- It needs Comm's room for Tasks to hold some tens of milliseconds of what Comm completes
  (comm.max_waiting, the door's comm.admission_budget do), since a surplus of a tenth cannot
  fill a room that bursts overflow: with room for one Task, 1.1 lets Comm take a seventh of
  what it could (tests/inprocess/test_throttle.py models both).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable

BUCKET = 0.25   # seconds of counts kept together: the window moves in these steps


class Throttle:
    def __init__(self, k: float, window: float = 2.0, rand: Callable[[], float] = random.random):
        if k < 1:
            raise ValueError(f"k must be at least 1 (a client that sends fewer than Comm takes starves it), not {k}")
        self.k = k
        self.window = window
        self.rand = rand
        self.buckets: deque[list[float]] = deque()   # [start, requests, accepts, refusals], oldest first
        self.requests = self.accepts = self.refusals = 0.0   # over the buckets kept
        self.refused = 0                             # Tasks refused here, ever

    def _bucket(self, now: float) -> list[float]:
        buckets = self.buckets
        while buckets and buckets[0][0] <= now - self.window:
            _, requests, accepts, refusals = buckets.popleft()
            self.requests -= requests
            self.accepts -= accepts
            self.refusals -= refusals
        if not buckets or now >= buckets[-1][0] + BUCKET:
            buckets.append([now, 0, 0, 0])
        return buckets[-1]

    def refusal_chance(self, now: float) -> float:
        self._bucket(now)
        if not self.refusals:
            return 0.0
        return max(0.0, (self.requests - self.k * self.accepts) / (self.requests + 1))

    def allow(self, now: float) -> bool:
        """Whether to send a new Task now; counted as a request either way."""
        chance = self.refusal_chance(now)
        self.buckets[-1][1] += 1
        self.requests += 1
        if chance > 0 and self.rand() < chance:
            self.refused += 1
            return False
        return True

    def answered(self, now: float, overloaded: bool) -> None:
        """Comm answered a Task: refused it OVERLOADED, or took it (any other answer)."""
        bucket = self._bucket(now)
        if overloaded:
            bucket[3] += 1
            self.refusals += 1
        else:
            bucket[2] += 1
            self.accepts += 1
