"""A budget of log lines: the first `burst` lines of each `window` seconds are written, the
rest only counted. An actor refusing every message of a flood (a sender gone wrong, a Comm
whose journal cannot write) would otherwise write a line per message, and the log grows as
fast as the flood, on the disk that may be the very thing that is full.
"""

from __future__ import annotations

import time
from typing import Callable

BURST = 20       # lines written at most per window
WINDOW = 10.0    # seconds


class LogBudget:
    def __init__(self, burst: int = BURST, window: float = WINDOW, clock: Callable[[], float] = time.monotonic):
        self.burst, self.window, self.clock = burst, window, clock
        self.started = clock()
        self.used = 0
        self.unlogged = 0          # lines not written since the last one that was
        self.unlogged_total = 0

    def take(self) -> tuple[bool, int]:
        """(whether to write this line, how many were not written since the last one that
        was: the line that is written says so)."""
        now = self.clock()
        if now - self.started >= self.window:
            self.started, self.used = now, 0
        if self.used < self.burst:
            self.used += 1
            unlogged, self.unlogged = self.unlogged, 0
            return True, unlogged
        self.unlogged += 1
        self.unlogged_total += 1
        return False, 0
