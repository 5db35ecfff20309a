"""Whether the MRE's view may be used: the Clone pattern's snapshot bookkeeping.

Until the first snapshot arrives the MRE's view is empty, and routing on it could offer
what Comm has already given away, so updates are dropped until then. Only the snapshot
answering the latest Resync (or one a restarted Comm sends unasked, with no Request) is
applied: an older one predates offers made since, and applying it would offer them again.

Comm numbers its updates (`Seq`, within a `Stream`: one per Comm process) and a snapshot
says the number of the last update it includes. Updates already in the snapshot are
dropped; one that skips a number means an update was lost, and a new snapshot is needed.
"""

from __future__ import annotations

from typing import Any


class SnapshotSync:
    def __init__(self, name: str):
        self.name = name
        self.synced = False
        self.awaiting: str | None = None   # the Request of the Resync whose answer we wait for
        self.asked = 0
        self.stale = 0                     # snapshots ignored as older than our latest request
        self.dropped = 0                   # updates dropped before the first snapshot
        self.stream: str | None = None     # whose numbering we follow
        self.seq = 0                       # the last update applied (or included in the snapshot)
        self.gaps = 0

    def request(self) -> str:
        self.asked += 1
        self.awaiting = f"{self.name}-{self.asked}"
        return self.awaiting

    def take_snapshot(self, body: dict[str, Any]) -> bool:
        """Whether to apply this snapshot."""
        request = body.get("Request")
        if request is not None and request != self.awaiting:
            self.stale += 1
            return False
        self.awaiting = None
        self.synced = True
        self.stream, self.seq = body.get("Stream"), body.get("Seq") or 0
        return True

    def take_update(self, body: dict[str, Any]) -> bool | None:
        """True: apply it. False: drop it. None: a gap, ask for a snapshot."""
        if not self.synced:
            self.dropped += 1
            return False
        seq, stream = body.get("Seq"), body.get("Stream")
        if seq is None:  # not numbered (an operator's `mroute send`): take it as it comes
            return True
        if stream == self.stream and seq <= self.seq:
            return False  # the snapshot had it already
        if stream != self.stream or seq != self.seq + 1:
            self.gaps += 1
            self.synced = False
            return None
        self.seq = seq
        return True
