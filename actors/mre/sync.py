"""Whether the MRE's view may be used: the Clone pattern's snapshot bookkeeping.

Until the first snapshot arrives the MRE's view is empty, and routing on it could offer
what Comm has already given away, so updates are dropped until then. Only the snapshot
answering the latest Resync (or one a restarted Comm sends unasked, with no Request) is
applied: an older one predates offers made since, and applying it would offer them again.
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
        return True

    def take_update(self) -> bool:
        if not self.synced:
            self.dropped += 1
        return self.synced
