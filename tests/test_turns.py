"""A turn of an actor's loop is short even when its input is not (issue 15).

Everything a turn causes leaves at its end (commit, then flush), so a turn is the latency
of one hop for everything in it. A reader that took thousands of messages in one turn made
Comm and the MRE wait on each other's 20-50 ms turns, and agents wait for their next offer.
Each read now stops after DRAIN_SLICE seconds with input still waiting; the loop wakes again
at once, and the turns that follow one another like this are one busy period (Comm's
admission control counts from its start)."""

from __future__ import annotations

import time
from pathlib import Path

import zmq

from actors.runtime import DRAIN_SLICE, Actor, ActorConfig, Loop

WORK = 0.001  # each message costs a millisecond of the reader's time


class Worker(Actor):
    role = "worker"

    def start_reading(self, endpoint: str) -> None:
        pull = self.socket(zmq.PULL, bind=endpoint)
        self.handled = 0
        self.serve("Work", pull, {"Work": self.work}, decode=lambda frames: ("Work", {}))

    def work(self, _body: dict) -> None:
        until = time.perf_counter() + WORK
        while time.perf_counter() < until:  # simulated work, not a wait for anything
            pass
        self.handled += 1


def test_a_flooded_reader_yields_within_its_slice_and_its_turns_are_one_busy_period(tmp_path: Path):
    ctx = zmq.Context()
    loop = Loop()
    loop.track_cpu = True
    worker = Worker(ctx, ActorConfig("worker.1", "worker", 1, str(tmp_path), {}, {}), loop)
    endpoint = f"inproc://work-{tmp_path.name}"
    worker.start_reading(endpoint)
    push = ctx.socket(zmq.PUSH)
    turns: list[tuple[int, float]] = []  # (handled so far, start of the busy period) as each turn ends
    loop.before_poll.append(lambda: turns.append((worker.handled, loop.busy_since_cpu)))
    try:
        push.connect(endpoint)
        flood = 300
        for _ in range(flood):  # all queued before the loop runs: one read could take them all
            push.send_multipart([b"Work", b"{}"])
        assert loop.run(until=lambda: worker.handled == flood, timeout=30)
        done = [handled for handled, _ in turns if handled]
        sizes = [b - a for a, b in zip([0, *done], done) if b > a]
        per_slice = int(DRAIN_SLICE / WORK) + 1
        assert sum(sizes) == flood
        assert max(sizes) <= per_slice, f"a turn took {max(sizes)} messages, more than a slice's {per_slice}"
        assert len(sizes) >= flood // per_slice
        periods = {since for handled, since in turns if 0 < handled < flood}
        assert len(periods) == 1, "turns with input left waiting must continue one busy period"

        # caught up: the next message begins a busy period of its own
        flood_period = periods.pop()
        push.send_multipart([b"Work", b"{}"])
        assert loop.run(until=lambda: worker.handled == flood + 1, timeout=10)
        assert turns[-1][1] > flood_period
    finally:
        push.close(0)
        worker.close()
        loop.close()
        ctx.term()
