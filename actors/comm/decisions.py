"""The MRE's decisions, applied once and in order, confirmed, and only the MRE's.

The MRE numbers what it decides (`Seq` within its `Stream`) and sends again whatever Comm
has not confirmed in time, oldest first (go-back-N): a decision dropped at a full socket is
late, never lost. So Comm applies the next number only, ignores one it has applied (a
resend), and drops one that skips a number (its predecessor will come again).
Confirmations leave after the journal has written what the decisions changed, and where
each stream stands.

Which streams are the MRE's is Comm's to say, not the decisions': every Snapshot Comm sends
the MRE names the stream the MRE numbers on after applying it (`Decisions`, a random token,
`issue`), and only those streams are taken. A decision on any other stream, or with no
number, did not come from the MRE (under CURVE the server also checks the sender's key):
it changes nothing, evicts nothing, and is counted (`foreign`). On main, 16 forged
TaskAgentSelected on 16 new streams pushed the MRE's own out of the 16 kept, and every real
decision after that was dropped as early: routing stopped until the MRE restarted.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any

STREAMS_KEPT = 16    # streams decisions were applied on: the one in use, and those it followed
ISSUED_KEPT = 64     # streams named in snapshots and not used yet: the MRE takes the latest it applied
RETIRED_KEPT = 128   # streams retired (issue), remembered as such


class DecisionGate:
    def __init__(self) -> None:
        self.load({})
        self.issued: OrderedDict[str, None] = OrderedDict()  # named in a snapshot, no decision on it yet
        self.due: set[str] = set()           # streams whose confirmation has not gone out
        self.retired: OrderedDict[str, None] = OrderedDict()  # streams that may only repeat (issue)
        self.repeated = 0
        self.early = 0
        self.foreign = 0                     # decisions on a stream Comm never named: not the MRE's
        self.late = 0                        # new decisions on a retired stream: made before a snapshot

    def load(self, applied: dict[str, int]) -> None:
        """What the journal holds (at the start, and again after a write was undone): MRE
        stream -> the last decision applied, so that a restarted Comm knows a resend of what
        it applied before it died (and confirms it, without applying it again). What was
        issued and retired is this process's: a snapshot sent unasked retires it all."""
        self.applied: dict[str, int] = dict(applied)
        self.dirty = False                   # `applied` changed since the journal last took it

    def issue(self, unasked: bool = False) -> str:
        """A stream for the MRE to number its decisions on, for a snapshot to name. Only Comm
        makes these, so none can be pushed out by what a client sends; a snapshot the MRE
        ignored leaves one unused, the oldest of which go first.

        A snapshot Comm sends `unasked` (at its start, after an undone write, for a drift)
        the MRE always applies, and forgets what it decided before: a new decision on an
        earlier stream reaching Comm after it was built is not in it, and is refused (those
        streams are retired: they may only repeat what Comm applied, which it confirms). One
        the MRE asked for comes after everything it decided before asking (it sends nothing
        more until the snapshot comes: actors/mre/decisions.py `hold`)."""
        stream = secrets.token_hex(8)
        if unasked:
            self.retired.update(dict.fromkeys([*self.applied, *self.issued]))
            self.issued.clear()
            while len(self.retired) > RETIRED_KEPT:
                self.retired.popitem(last=False)
        self.issued[stream] = None
        if len(self.issued) > ISSUED_KEPT:
            self.issued.popitem(last=False)
        return stream

    def admit(self, body: dict[str, Any]) -> bool:
        stream, seq = body.get("Stream"), body.get("Seq")
        last = self.applied.get(stream) if stream.__class__ is str else None  # type: ignore[call-overload]
        if last is None:
            if seq.__class__ is int and stream in self.retired:   # named once, never used, retired since
                self.late += 1
                return False
            if seq.__class__ is not int or stream not in self.issued:
                self.foreign += 1
                return False
            self.adopt(stream)  # type: ignore[arg-type]
            last = 0
        # A stream starts at 1: the MRE numbers afresh after every snapshot it applies (the
        # one a restarted Comm sends it unasked included), so a first decision lost is
        # resent, never skipped.
        if seq <= last:  # type: ignore[operator]
            self.repeated += 1
            self.due.add(stream)  # type: ignore[arg-type]  # our confirmation was lost: say it again
            return False
        if stream in self.retired:
            self.late += 1
            return False
        if seq != last + 1:
            self.early += 1
            return False
        self.applied[stream] = seq  # type: ignore[index]
        self.due.add(stream)  # type: ignore[arg-type]
        self.dirty = True
        return True

    def adopt(self, stream: str) -> None:
        """The MRE numbers on `stream` now: the streams named before it will not be used."""
        while self.issued:
            older, _ = self.issued.popitem(last=False)
            if older == stream:
                break
        self.applied[stream] = 0
        if len(self.applied) > STREAMS_KEPT:
            del self.applied[next(iter(self.applied))]

    def confirmations(self) -> list[dict[str, Any]]:
        """Confirm bodies owed, one per stream; clears them."""
        owed = [{"Decisions": stream, "Through": self.applied[stream]} for stream in self.due if stream in self.applied]
        self.due.clear()
        return owed

    def stats(self) -> dict[str, Any]:
        return {"decisions_repeated": self.repeated, "decisions_early": self.early,
                "decisions_foreign": self.foreign, "decisions_late": self.late}
