"""The MRE's decisions to Comm, numbered and kept until Comm confirms them (spec 105).

The MRE pushes its decisions (TaskAgentSelected, TaskAgentTransferred, TaskConferenced)
without blocking, and a PUSH past its high-water mark drops them (zeromq-rules 8). A lost
`TaskAgentSelected` would leave the agent's offer held here until the task's time to live,
so every decision carries `Seq` (1, 2, 3, ...) and `Stream`, is kept until Comm's `Confirm
{Decisions: <stream>, Through: <seq>}` covers it, and is sent again when none comes.

Comm applies a stream strictly in order and drops a decision that skips a number. So once
one is lost, every later one that reached Comm was dropped too (a PUSH connection keeps
order): the resend is go-back-N, everything unconfirmed from the oldest on. Resending only
the overdue ones would let each newer decision arrive ahead of an older resend and be
dropped in turn, for as long as decisions keep coming.

A Comm that is gone or stuck confirms nothing; resending up to KEPT_MAX decisions every
half second to it would keep this process busy encoding what is dropped anyway, so the wait
doubles after each resend that brought no confirmation (up to RESEND_MAX) and is back to
RESEND_AFTER as soon as a confirmation moves on.

`reset()` is for a snapshot from Comm: the snapshot is Comm's truth, and what it did not
apply the engine decides again from it. Numbering then starts again, at 1, on the stream
the snapshot names (`Decisions`: Comm takes decisions only on streams it named, so that
nothing a client pushes onto CommunicationServer passes for the MRE's):
Comm's last applied number of the old stream is not ours to know (a restarted Comm has
none), and a decision numbered after the forgotten ones would wait forever behind them.

`hold()` is for the moment a snapshot is asked for. Comm builds it when the request
arrives; a decision sent after the request (new, or a resend) would reach Comm after that,
be applied there and be missing from the snapshot, and the engine, rebuilt from it, would
decide the same task again. So from the request until `reset()` nothing is sent, and what
the engine decides meanwhile is dropped: it decides again from the snapshot.

No sockets here: the wire is `send(type, body)`, time is `clock()` and timers are
`call_later(delay, fn, *args)`, so tests drive it with plain callables.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("mroute.mre")

RESEND_AFTER = 0.5   # seconds a decision may go unconfirmed before the go-back-N resend
RESEND_MAX = 5.0     # the longest wait, after resends that brought no confirmation
KEPT_MAX = 100_000   # unconfirmed decisions kept; past that a snapshot is asked for instead

Send = Callable[[str, dict[str, Any]], None]
CallLater = Callable[..., Any]


def new_stream(previous: str | None = None) -> str:
    """A stream name no earlier numbering of this or another MRE process used."""
    while True:
        stream = f"{os.getpid()}-{time.time_ns()}"
        if stream != previous:
            return stream


@dataclass(slots=True)
class Unconfirmed:
    seq: int
    type: str
    body: dict[str, Any]
    sent_at: float  # when it last left, first time or resent


class DecisionStream:
    """The MRE's decisions to Comm: numbered on a stream of their own, kept until Comm
    confirms them, and resent go-back-N (module docstring)."""

    def __init__(self, send: Send, call_later: CallLater, *, clock: Callable[[], float] = time.monotonic,
                 on_full: Callable[[str], None] | None = None, kept_max: int = KEPT_MAX,
                 resend_after: float = RESEND_AFTER, resend_max: float = RESEND_MAX):
        self.send = send
        self.call_later = call_later
        self.clock = clock
        self.on_full = on_full          # asks Comm for a snapshot: called once each time the bound is reached
        self.kept_max = kept_max
        self.resend_after = resend_after
        self.resend_max = resend_max
        self.stream = new_stream()
        self.seq = 0                    # the last number given out on `stream`
        self.unconfirmed: deque[Unconfirmed] = deque()
        self.wait = resend_after        # how long the oldest may go unconfirmed before the next resend
        self.armed = False              # one timer at most, whatever the traffic
        self.full = False               # the bound was reached and a snapshot asked for since the last reset
        self.held = False               # a snapshot is asked for: nothing leaves until reset()
        self.counters = {"sent": 0, "resent": 0, "confirmed": 0, "forgotten": 0, "overflowed": 0,
                         "foreign": 0, "held": 0}

    def emit(self, type: str, body: dict[str, Any]) -> None:
        """Number the decision, keep it and send it. `body` becomes the stream's (it is
        stamped in place and sent again as it is): callers build a fresh one each time."""
        if self.held:
            self.counters["held"] += 1
            return
        if len(self.unconfirmed) >= self.kept_max:
            self.overflow(type, body)
            return
        self.seq += 1
        body["Seq"] = self.seq
        body["Stream"] = self.stream
        self.unconfirmed.append(Unconfirmed(self.seq, type, body, self.clock()))
        self.counters["sent"] += 1
        self.send(type, body)
        self.arm(self.wait)

    def overflow(self, type: str, body: dict[str, Any]) -> None:
        """Comm has confirmed nothing for KEPT_MAX decisions: rather than grow, drop this one
        unsent and unnumbered (so no gap is made in the stream) and ask for Comm's truth,
        from which the engine decides again."""
        overflowed = self.counters["overflowed"] = self.counters["overflowed"] + 1
        if overflowed in (1, 10, 100, 1000) or overflowed % 10000 == 0:
            log.warning("%d decisions unconfirmed by Comm: %s for %s not sent (%d so far); asking for a snapshot",
                        len(self.unconfirmed), type, body.get("TaskId"), overflowed)
        if not self.full:
            self.full = True
            if self.on_full is not None:
                self.on_full(f"{len(self.unconfirmed)} decisions unconfirmed")

    def confirm(self, stream: str, through: int) -> int:
        """Comm applied every decision of `stream` up to `through`: let them go. A confirm of
        another stream (one before our last reset, or another MRE process's) says nothing
        about ours. Returns how many were let go."""
        if stream != self.stream:
            self.counters["foreign"] += 1
            return 0
        unconfirmed = self.unconfirmed
        count = 0
        while unconfirmed and unconfirmed[0].seq <= through:
            unconfirmed.popleft()
            count += 1
        if count:
            self.counters["confirmed"] += count
            self.wait = self.resend_after  # Comm is taking them: back to the short wait
        return count

    def hold(self) -> None:
        """A snapshot has just been asked for: send nothing, new or again, until reset()
        (see the module's docstring)."""
        self.held = True

    def reset(self, stream: str | None = None) -> None:
        """A snapshot from Comm is being applied: forget what it did not confirm and number
        afresh on a new stream, the one the snapshot names (Comm takes decisions only on the
        streams it named: see the module's docstring)."""
        self.counters["forgotten"] += len(self.unconfirmed)
        self.unconfirmed.clear()
        self.stream = stream if stream is not None and stream != self.stream else new_stream(self.stream)
        self.seq = 0
        self.wait = self.resend_after
        self.full = False
        self.held = False
        # a timer already armed stays: it finds nothing due, or the new stream's oldest

    def arm(self, delay: float) -> None:
        if not self.armed:
            self.armed = True
            self.call_later(delay, self.tick)

    def tick(self) -> None:
        self.armed = False
        if not self.unconfirmed or self.held:  # held: reset() comes next and forgets them
            return
        now = self.clock()
        due = self.unconfirmed[0].sent_at + self.wait
        if now >= due:
            self.resend(now)
            self.wait = min(self.wait * 2, self.resend_max)
            due = now + self.wait
        self.arm(due - now)

    def resend(self, now: float) -> None:
        """Go-back-N: everything unconfirmed, oldest first (Comm dropped whatever followed a
        lost one). A copy is walked, so a `send` that confirms at once cannot upset it."""
        pending = list(self.unconfirmed)
        log.info("Comm confirmed no decision of %s after %d for %.1f s: sending %d again", self.stream,
                 pending[0].seq - 1, self.wait, len(pending))
        for decision in pending:
            decision.sent_at = now
            self.send(decision.type, decision.body)
        self.counters["resent"] += len(pending)

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "unconfirmed": len(self.unconfirmed), "stream": self.stream, "seq": self.seq}
