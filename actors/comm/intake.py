"""Comm's door: new Tasks read from General and not handled yet, oldest first.

A Chat Server's queue to Comm carries both what its desks say about tasks and agents Comm
holds (an acceptance, a close) and its customers' new Tasks, in the order it sent them. Under
a flood of Tasks, a desk's acceptance waited in that queue behind every Task sent before it:
at three times the Tasks Comm completes, 23 ms (p50) from the desk's hearing of its offer to
Comm reading its ACTIVE, against 8.5 ms at one and a half times; agents waited on it twice a
task and completed fewer.
So the runtime hands Comm each new Task unread (runtime `serve`, `defer`) and everything
else is handled as it is read; the Tasks wait here, and each turn takes them for at most a
time slice after the rest. How long a Task has waited here, in Comm's CPU time (admission.py),
is what decides whether it is taken.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

MAX_AT_DOOR = 10_000  # Tasks waiting here at most; past it each new one is handled (refused) at once
STAMP_EVERY = 64     # Tasks kept between two reads of the clock (a read costs about as much as 1 keep)


class Intake:
    def __init__(self, wakes: Callable[[], int], stale_after: float,
                 clock: Callable[[], float] = time.thread_time):
        self.waiting: deque[tuple[float, list[bytes], str | None]] = deque()  # (read at, Task, its sender)
        self.stale_after = stale_after  # CPU seconds after which a waiting Task is refused (admission.py)
        self.wakes = wakes      # the loop's count of wake-ups: one clock read per wake-up's reads
        self.clock = clock      # this thread's CPU time: a machine busy with other work must not count
        self.take: Callable[[list[bytes], str | None], None] = lambda frames, peer: None  # the runtime's, once serving
        # a Task that waited past its budget, refused from its bytes if they say plainly who
        # sent it (server.py): True when it was; else it is taken the whole way
        self.refuse_unread: Callable[[list[bytes], str | None], bool] = lambda frames, peer: False
        self.read_wake = -1
        self.read_at = 0.0
        self.kept = 0
        self.now = 0.0          # the CPU time while Tasks are handled (read every few Tasks)
        self.current = 0.0      # when the Task being handled was read
        self.full = False       # the Task being handled found the door full
        self.door_full = 0      # Tasks that did

    def keep(self, frames: list[bytes], peer: str | None = None) -> None:
        wake = self.wakes()
        self.kept += 1
        if wake != self.read_wake or self.kept % STAMP_EVERY == 0:
            self.read_wake, self.read_at = wake, self.clock()
        if len(self.waiting) < MAX_AT_DOOR:
            self.waiting.append((self.read_at, frames, peer))
            return
        self.door_full += 1
        self.full = True
        try:
            self.take(frames, peer)
        finally:
            self.full = False

    def restamp(self) -> None:
        """The Tasks waiting start their wait again: what Comm did meanwhile (reloading its
        journal after a failed write) was not them waiting for their turn."""
        now = self.clock()
        self.waiting = deque((now, frames, peer) for _, frames, peer in self.waiting)

    def lag(self) -> float:
        """How long the Task being handled has waited here, in Comm's CPU seconds."""
        return self.now - self.current

    def handle(self, slice_s: float) -> bool:
        """Take the waiting Tasks, oldest first: those that waited too long all (each is a
        refusal, a fraction of taking one, and a backlog of them must not keep the fresh
        ones from the door), the rest for at most `slice_s` seconds. True when some are
        left for the next turn."""
        waiting = self.waiting
        if not waiting:
            return False
        clock = time.perf_counter
        over = clock() + slice_s
        taken = 0
        while waiting:
            if taken % 16 == 0:
                self.now = self.clock()
            taken += 1
            read_at = waiting[0][0]
            stale = self.now - read_at >= self.stale_after
            if not stale and clock() > over:
                break
            self.current, frames, peer = waiting.popleft()
            if not (stale and self.refuse_unread(frames, peer)):
                self.take(frames, peer)
        return bool(waiting)
