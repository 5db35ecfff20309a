"""A refused message leaves no garbage that only Python's cycle collector frees. Each
refusal was held in a cycle through its traceback (the frame that caught it kept it in a
local), with the frames and the message: at twice the peak Comm refuses about 5,000 Tasks a
second, and its collections found 40,000-84,000 such objects each (issue 28)."""

from __future__ import annotations

import gc

import orjson
import pytest

from actors.runtime import Actor, ActorConfig
from wire.codec import WireError

from .test_turns import reading


class Refuser(Actor):
    role = "refuser"

    def start_reading(self, endpoint: str) -> None:
        import zmq
        pull = self.socket(zmq.PULL, bind=endpoint)
        self.handled = 0
        self.told: list[str] = []
        self.serve("Work", pull, {"Refused": self.refused, "Broken": self.broken, "Bad": self.bad},
                   decode=lambda frames: (frames[0].decode(), orjson.loads(frames[1])),
                   refusals=(ValueError,))

    def refuse(self, err: WireError, body: dict) -> None:
        self.handled += 1
        self.told.append(err.code)

    def refused(self, body: dict) -> None:
        raise WireError("OVERLOADED", "try again later")

    def bad(self, body: dict) -> None:
        raise ValueError("a codec's own refusal")

    def broken(self, body: dict) -> None:
        raise KeyError("a bug")

    def as_refusal(self, exc: Exception) -> WireError:
        return WireError("BAD_MESSAGE", str(exc))


@pytest.fixture
def no_automatic_collection():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_refusals_of_every_kind_leave_no_cyclic_garbage(tmp_path, no_automatic_collection):
    with reading(Refuser, "refuser.1", tmp_path) as (actor, loop, push):
        def refuse_some(n: int) -> None:
            for kind in ("Refused", "Bad", "Broken") * n:
                push.send_multipart([kind.encode(), orjson.dumps({"MsgId": "m", "TaskId": "t"})])
            target = actor.handled + 3 * n
            assert loop.run(until=lambda: actor.handled == target, timeout=30)
        refuse_some(10)   # the first of each kind may make what lives on (caches, log state)
        gc.collect()
        refuse_some(300)
        assert gc.collect() == 0
        assert set(actor.told) == {"OVERLOADED", "BAD_MESSAGE", "GENERAL_ERROR"}


def no_cycles_after(refuse_once, caught: type[BaseException]) -> int:
    """Cyclic garbage left by 300 refusals, each raised and caught as a reader would."""
    for _ in range(10):   # what the first ones make that lives on
        try:
            refuse_once()
        except caught:
            pass
    gc.collect()
    for _ in range(300):
        try:
            refuse_once()
        except caught:
            pass
    return gc.collect()


def test_the_refusals_raised_by_comm_and_the_gc_themselves_leave_no_cyclic_garbage(no_automatic_collection):
    from types import SimpleNamespace

    from actors.comm.admission import TaskLimits
    from actors.comm.server import Comm
    from actors.comm.turn import Turn

    # a Task too big to decode (Comm refuses it from its bytes)
    comm = SimpleNamespace(core=SimpleNamespace(admission=SimpleNamespace(limits=TaskLimits(max_params_bytes=100))))
    big = orjson.dumps({"Mrd": "chat", "ReplyTo": "chat.1", "MsgId": "m", "params": {"k": "x" * 1000}})
    assert no_cycles_after(lambda: Comm.decode_general(comm, [b"Task", big]), WireError) == 0
    # a request naming a destination its key may not use
    turn = SimpleNamespace(requests=[])
    def stated_elsewhere() -> None:
        turn.requests.clear()
        Turn.request(turn, "TaskState", {"ReplyTo": "chat.2", "TaskId": "t"}, "chat.1")
    assert no_cycles_after(stated_elsewhere, WireError) == 0


class CommandReader(Refuser):
    """The GC's way with a command it cannot parse: decoded as Unparsed, refused by its handler."""
    role = "gc"

    def start_reading(self, endpoint: str) -> None:
        import zmq

        from actors.gc.server import UNPARSED, GenericConnector, Unparsed
        from wire import gc as G
        pull = self.socket(zmq.PULL, bind=endpoint)
        self.handled = 0
        self.told = []
        self.serve("GC", pull, {UNPARSED: Unparsed.refuse}, decode=GenericConnector.decode,
                   refusals=(G.CommandError,))

    def as_refusal(self, exc: Exception) -> WireError:
        from actors.gc.server import GenericConnector
        return GenericConnector.as_refusal(self, exc)


def test_a_command_the_gc_cannot_parse_leaves_no_cyclic_garbage(tmp_path, no_automatic_collection):
    with reading(CommandReader, "gc.1", tmp_path) as (actor, loop, push):
        def refuse_some(n: int) -> None:
            for _ in range(n):
                push.send_multipart([b"Dance#alice", b"{}"])
            target = actor.handled + n
            assert loop.run(until=lambda: actor.handled == target, timeout=30)
        refuse_some(10)
        gc.collect()
        refuse_some(300)
        assert gc.collect() == 0
        assert actor.told and all(code == actor.told[0] for code in actor.told)
