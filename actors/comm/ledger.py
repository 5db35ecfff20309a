"""The request ledger: which MsgIds were handled (so a retry is answered, never applied
twice) and which answers wait for the MRE (a Transfer is answered once the MRE has counted
the move). The only owner of `seen`; what it adds is what the journal writes.
"""

from __future__ import annotations

from collections import OrderedDict

from .outbox import Reply

SEEN_KEPT = 200_000      # handled MsgIds remembered: a retry later than that is applied again
PENDING_KEPT = 10_000    # answers waiting for the MRE; past that the oldest sender retries


class Ledger:
    def __init__(self, seen: OrderedDict[str, str] | None = None):
        self.seen: OrderedDict[str, str] = seen if seen is not None else OrderedDict()  # MsgId -> TaskId or ""
        self.new: list[tuple[str, str]] = []      # handled since the journal last wrote
        self.pending: dict[tuple[str, str], Reply] = {}   # (answer type, TaskId) -> the reply owed
        self.duplicates = 0

    def handled_already(self, msg_id: object) -> bool:
        if msg_id is not None and msg_id in self.seen:
            self.duplicates += 1
            return True
        return False

    def remember(self, msg_id: str, task_id: str = "") -> None:
        if msg_id in self.seen:
            return
        self.seen[msg_id] = task_id
        self.new.append((msg_id, task_id))
        if len(self.seen) > SEEN_KEPT:
            self.seen.popitem(last=False)

    def task_of(self, msg_id: str) -> str:
        return self.seen.get(msg_id, "")

    def defer(self, reply: Reply, task_id: str) -> None:
        """Answer later, when the MRE reports: keyed by what the report will be about."""
        if len(self.pending) >= PENDING_KEPT:
            del self.pending[next(iter(self.pending))]
        self.pending[(reply.answer_type, task_id)] = reply

    def owed(self, answer_type: str, task_id: str) -> Reply | None:
        return self.pending.pop((answer_type, task_id), None)
