"""A turn of an actor's loop is short even when its input is not (issue 15).

Everything a turn causes leaves at its end (commit, then flush), so a turn is the latency
of one hop for everything in it. A reader that took thousands of messages in one turn made
Comm and the MRE wait on each other's 20-50 ms turns, and agents wait for their next offer.
Each read now stops after DRAIN_SLICE seconds with input still waiting (the next poll finds
it at once)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


@contextmanager
def reading(kind: type["Worker"], name: str, tmp_path: Path) -> Iterator[tuple["Worker", Loop, zmq.Socket]]:
    """An actor of `kind` reading in this process, its loop, and a PUSH connected to it."""
    ctx = zmq.Context()
    loop = Loop()
    actor = kind(ctx, ActorConfig(name, name.split(".")[0], 1, str(tmp_path), {}, {}), loop)
    endpoint = f"inproc://{name}-{tmp_path.name}"
    actor.start_reading(endpoint)
    push = ctx.socket(zmq.PUSH)
    try:
        push.connect(endpoint)
        yield actor, loop, push
    finally:
        push.close(0)
        actor.close()
        loop.close()
        ctx.term()


def test_a_flooded_reader_yields_within_its_slice(tmp_path: Path):
    with reading(Worker, "worker.1", tmp_path) as (worker, loop, push):
        turns: list[int] = []  # handled so far, as each turn ends
        loop.before_poll.append(lambda: turns.append(worker.handled))
        flood = 300
        for _ in range(flood):  # all queued before the loop runs: one read could take them all
            push.send_multipart([b"Work", b"{}"])
        assert loop.run(until=lambda: worker.handled == flood, timeout=30)
        done = [handled for handled in turns if handled]
        sizes = [b - a for a, b in zip([0, *done], done) if b > a]
        per_slice = int(DRAIN_SLICE / WORK) + 1
        assert sum(sizes) == flood
        assert max(sizes) <= per_slice, f"a turn took {max(sizes)} messages, more than a slice's {per_slice}"
        assert len(sizes) >= flood // per_slice


class Door(Worker):
    """Comm's arrangement of its General queue: new Tasks wait in an intake (actors/comm/
    intake.py), taken each turn for at most a slice, after what else was read."""

    def start_reading(self, endpoint: str) -> None:
        from actors.comm.intake import Intake
        self.order: list[str] = []
        self.handled = 0
        self.intake = Intake(lambda: self.loop.wakes, stale_after=60.0)
        pull = self.socket(zmq.PULL, bind=endpoint)
        self.intake.take = self.serve("General", pull, {"Task": self.task, "AgentState": self.desk},
                                      decode=lambda frames: (frames[0].decode(), {}),
                                      defer=(b"Task", self.intake.keep))
        self.loop.before_poll.insert(0, self.handle_intake)

    def handle_intake(self) -> None:
        if self.intake.handle(DRAIN_SLICE):
            self.loop.behind = True

    def task(self, _body: dict) -> None:
        self.work(_body)
        self.order.append("Task")

    def desk(self, _body: dict) -> None:
        self.order.append("AgentState")


def test_what_a_desk_says_after_a_flood_of_tasks_is_handled_before_them(tmp_path: Path):
    """An agent's acceptance queued behind a flood of new Tasks was handled only after all
    of them (a read took its Tasks last, but reads came in queue order): under overload,
    agents waited on it for their next task. Now it is handled as it is read."""
    with reading(Door, "comm.1", tmp_path) as (door, loop, push):
        flood = 1000
        for _ in range(flood):
            push.send_multipart([b"Task", b"{}"])
        push.send_multipart([b"AgentState", b"{}"])  # an agent's desk, after the flood
        assert loop.run(until=lambda: len(door.order) == flood + 1, timeout=60)
        waited_for = door.order.index("AgentState")
        assert waited_for < flood // 10, f"the desk's message waited for {waited_for} of the {flood} Tasks before it"
        assert not door.intake.waiting  # every Task taken in the end
