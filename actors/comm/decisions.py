"""The MRE's decisions, applied once and in order, and confirmed.

The MRE numbers what it decides (`Seq` within its `Stream`: one per MRE process) and sends
again whatever Comm has not confirmed in time, oldest first (go-back-N): a decision dropped
at a full socket is late, never lost. So Comm applies the next number only, ignores one it
has applied (a resend), and drops one that skips a number (its predecessor will come
again). Confirmations leave after the journal has written what the decisions changed, and
where each stream stands.
"""

from __future__ import annotations

from typing import Any

STREAMS_KEPT = 16  # MRE processes remembered (one live; the rest restarted long ago)


class DecisionGate:
    def __init__(self, applied: dict[str, int] | None = None) -> None:
        # MRE stream -> the last decision applied; journaled, so that a restarted Comm knows a
        # resend of what it applied before it died (and confirms it, without applying it again)
        self.applied: dict[str, int] = dict(applied or {})
        self.due: set[str] = set()           # streams whose confirmation has not gone out
        self.dirty = False                   # `applied` changed since the journal last took it
        self.repeated = 0
        self.early = 0

    def admit(self, body: dict[str, Any]) -> bool:
        stream, seq = body.get("Stream"), body.get("Seq")
        if stream.__class__ is not str or seq.__class__ is not int:
            return True  # not numbered (an operator's `mroute send`): take it as it comes
        # A stream starts at 1: an MRE numbers afresh after every snapshot it applies (the
        # one a restarted Comm sends it unasked included), so a first decision lost is
        # resent, never skipped.
        last = self.applied.get(stream, 0)
        if seq <= last:
            self.repeated += 1
            self.due.add(stream)  # our confirmation was lost: say it again
            return False
        if seq != last + 1:
            self.early += 1
            return False
        if stream not in self.applied and len(self.applied) >= STREAMS_KEPT:
            del self.applied[next(iter(self.applied))]
        self.applied[stream] = seq
        self.due.add(stream)
        self.dirty = True
        return True

    def confirmations(self) -> list[dict[str, Any]]:
        """Confirm bodies owed, one per stream; clears them."""
        owed = [{"Decisions": stream, "Through": self.applied[stream]} for stream in self.due if stream in self.applied]
        self.due.clear()
        return owed

    def stats(self) -> dict[str, Any]:
        return {"decisions_repeated": self.repeated, "decisions_early": self.early}
