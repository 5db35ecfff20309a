"""The MRE actor's wiring of its decision outbox, in this process: a real MRE (its loop and
sockets) against a stand-in for Comm made of two sockets, no other process."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import zmq

from actors.mre.server import Mre
from actors.runtime import ActorConfig, Loop, recv_frames
from wire import codec
from wire.catalogue import COMMUNICATION_SERVER, ROUTING_ENGINE


class FakeComm:
    """What the MRE pushes to Comm, and a way to push to the MRE as Comm does."""

    def __init__(self, ctx: zmq.Context, endpoints: dict[str, str]):
        self.inbox = ctx.socket(zmq.PULL)
        self.inbox.linger = 0
        self.inbox.bind(endpoints[COMMUNICATION_SERVER])
        self.to_mre = ctx.socket(zmq.PUSH)
        self.to_mre.linger = 0
        self.to_mre.connect(endpoints[ROUTING_ENGINE])
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.seq = 0

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        while (frames := recv_frames(self.inbox)) is not None:
            self.received.append(codec.decode(frames, COMMUNICATION_SERVER))
        return self.received

    def of(self, type: str) -> list[dict[str, Any]]:
        return [body for t, body in self.take() if t == type]

    def send(self, type: str, body: dict[str, Any]) -> None:
        """An update, numbered as Comm numbers those it sends the MRE."""
        self.seq += 1
        self.to_mre.send_multipart(codec.encode(type, {**body, "Seq": self.seq, "Stream": "comm-a"}))

    def snapshot(self, request: str | None, agents: list[str], tasks: list[str]) -> None:
        self.to_mre.send_multipart(codec.encode("Snapshot", {
            "Epoch": "e1", "Request": request, "Seq": self.seq, "Stream": "comm-a",
            "Agents": [{"AgentId": a, "MRD": "chat", "State": "READY", "Tasks": [], "Offer": None} for a in agents],
            "Tasks": [{"TaskId": t, "MRD": "chat", "params": {}, "State": "QUEUED", "Agents": [],
                       "ClientUniqueId": "", "Waited": 0.0} for t in tasks]}))

    def close(self) -> None:
        self.inbox.close()
        self.to_mre.close()


@pytest.fixture
def mre_and_comm(tmp_path: Path) -> Iterator[tuple[Mre, Loop, FakeComm]]:
    endpoints = {COMMUNICATION_SERVER: f"ipc://{tmp_path}/cs", ROUTING_ENGINE: f"ipc://{tmp_path}/re"}
    topology = {"mrds": {"chat": {"max_tasks": 1}}, "queues": {},
                "agents": [{"id": name, "attributes": {}} for name in ("a1", "a2")]}
    ctx = zmq.Context()
    loop = Loop()
    comm = FakeComm(ctx, endpoints)
    loop.add_reader(comm.inbox, comm.take)  # the loop wakes when "Comm" receives, so waits end at once
    mre = Mre(ctx, ActorConfig("mre.1", "mre", 1, str(tmp_path), endpoints, topology), loop)
    try:
        mre.start()
        yield mre, loop, comm
    finally:
        mre.close()
        comm.close()
        loop.close()
        ctx.term()


def test_decisions_are_numbered_resent_until_confirmed_and_renumbered_after_a_snapshot(mre_and_comm):
    mre, loop, comm = mre_and_comm
    assert loop.run(until=lambda: comm.of("Resync"), timeout=5)
    resync = comm.of("Resync")[-1]
    assert "Seq" not in resync and "Stream" not in resync  # requests are not decisions

    comm.snapshot(resync["Request"], agents=["a1"], tasks=["t1"])
    assert loop.run(until=lambda: comm.of("TaskAgentSelected"), timeout=5)
    first = comm.of("TaskAgentSelected")[0]
    stream = mre.decisions.stream
    assert (first["TaskId"], first["AgentId"], first["Seq"], first["Stream"]) == ("t1", "a1", 1, stream)

    # not confirmed: the same decision again, same number
    assert loop.run(until=lambda: len(comm.of("TaskAgentSelected")) == 2, timeout=5)
    assert comm.of("TaskAgentSelected")[1] == first

    comm.send("Confirm", {"Decisions": stream, "Through": 1})
    assert loop.run(until=lambda: mre.stats()["decisions"]["confirmed"] == 1, timeout=5)
    assert mre.stats()["decisions"]["unconfirmed"] == 0

    # a restarted Comm's snapshot, unasked: decisions made from it start a new stream at 1
    comm.snapshot(None, agents=["a2"], tasks=["t2"])
    assert loop.run(until=lambda: len(comm.of("TaskAgentSelected")) == 3, timeout=5)
    again = comm.of("TaskAgentSelected")[2]
    assert (again["TaskId"], again["AgentId"], again["Seq"]) == ("t2", "a2", 1)
    assert again["Stream"] == mre.decisions.stream != stream

    comm.send("Confirm", {"Decisions": stream, "Through": 5})  # of the stream before the snapshot
    assert loop.run(until=lambda: mre.stats()["decisions"]["foreign"] == 1, timeout=5)
    assert mre.stats()["decisions"]["unconfirmed"] == 1


def test_a_confirm_before_the_first_snapshot_is_dropped_like_any_update(mre_and_comm):
    mre, loop, comm = mre_and_comm
    comm.send("Confirm", {"Decisions": mre.decisions.stream, "Through": 1})
    assert loop.run(until=lambda: mre.sync.dropped == 1, timeout=5)
    assert mre.stats()["decisions"]["foreign"] == 0 and mre.stats()["decisions"]["confirmed"] == 0
