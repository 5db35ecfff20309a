"""The loop's timer heap holds what is still to run, not every timer ever cancelled: a
timer armed per task and cancelled when the task ends (Comm's time to live) must not keep
an entry per task for its whole delay."""

from __future__ import annotations

import random

from wire.kernel.loop import Loop


def test_cancelled_timers_leave_the_heap_once_they_are_most_of_it_and_the_rest_run_in_order():
    loop = Loop()
    ran: list[int] = []
    rng = random.Random(7)
    live = {}
    most = 0
    for n in range(20_000):   # a task arms its timer; most end before it is due
        live[n] = loop.call_later(0.5 + rng.random() * 0.2, ran.append, n)
        if rng.random() < 0.95:
            live.pop(rng.choice(list(live))).cancel()
        most = max(most, len(loop.timers) - 2 * len(live))
    assert most <= 200   # never much more than twice what is live (before: every timer ever armed)
    ended = list(live.values())[:5]   # cancelled twice: counted once
    for timer in ended:
        timer.cancel()
        timer.cancel()
    live = {n: timer for n, timer in live.items() if timer not in ended}
    soon = loop.call_later(0.0, ran.append, -1)
    loop.run(until=lambda: -1 in ran, timeout=5)
    soon.cancel()  # it ran: no longer in the heap, not counted
    assert loop.cancelled_timers == sum(entry[2].cancelled for entry in loop.timers)
    loop.run(until=lambda: len(ran) == len(live) + 1, timeout=10)
    assert ran == [-1, *sorted(live, key=lambda n: live[n].when)]
