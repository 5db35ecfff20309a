"""What the two sides of a simulated Chat Server (its customers, its agents' desk) need from
the server that hosts them: a way to send requests, timers, randomness, its counts and the
current settings. The server (sim.py) is one; tests give a fake without sockets."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from wire.behaviour import Behaviour
from wire.dist import Distribution


class Timer(Protocol):
    when: float

    def cancel(self) -> None: ...


class Timers(Protocol):
    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer: ...


class Host(Protocol):
    name: str
    mrd: str
    loop: Timers
    rng: Any                        # random.Random
    counts: dict[str, int]          # replaced when a new run starts: look it up each time
    error_codes: dict[str, int]     # "Type Code" -> refusals, likewise
    handle: Distribution
    think: Distribution
    patience: Distribution | None
    behaviour: Behaviour            # a load scenario's: queues, priority, RONA, breaks, shifts
    hooks: Any                      # its Python hook's calls (hooked.py HookCalls), or None

    def request(self, type: str, body: dict[str, Any]) -> str:
        """Send until answered (at least once); returns the MsgId. A new Task refused by the
        client's throttle raises WireError OVERLOADED, unsent."""
        ...
