"""The request ledger: which MsgIds were handled (so a retry is answered, never applied
twice) and which answers wait for the MRE (a Transfer is answered once the MRE has counted
the move). The only owner of `seen`; what it adds is what the journal writes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .outbox import Reply

SEEN_KEPT = 200_000      # handled MsgIds remembered: a retry later than that is applied again
PENDING_KEPT = 10_000    # answers waiting for the MRE; past that the oldest sender retries


class Ledger:
    def __init__(self, seen: OrderedDict[str, str] | None = None):
        self.seen: OrderedDict[str, str] = seen if seen is not None else OrderedDict()  # MsgId -> TaskId or ""
        self.new: list[tuple[str, str]] = []      # handled since the journal last wrote
        # TaskId -> the replies owed for it, in the order the MRE will report (it takes its
        # queue in order); MsgId -> the same replies, for a retry
        self.pending: dict[str, list[Reply]] = {}
        self.pending_by_msg: dict[str, Reply] = {}
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
        """Answer later, when the MRE reports about `task_id`."""
        if len(self.pending_by_msg) >= PENDING_KEPT:  # the oldest sender's retry is answered from our state
            self.forget(next(iter(self.pending_by_msg.values())))
        self.pending.setdefault(task_id, []).append(reply)
        if reply.msg_id is not None:
            self.pending_by_msg[reply.msg_id] = reply

    def owed(self, answer_type: str, report: dict[str, Any]) -> Reply | None:
        """The first reply waiting for this report (same type, same TaskId, AgentId ...)."""
        for reply in self.pending.get(report["TaskId"], ()):
            if reply.answer_type == answer_type and all(report.get(k) == v for k, v in reply.key.items()):
                self.forget(reply)
                return reply
        return None

    def waiting(self, msg_id: str) -> Reply | None:
        return self.pending_by_msg.get(msg_id)

    def forget(self, reply: Reply) -> None:
        task_id = reply.key["TaskId"]
        replies = self.pending.get(task_id, [])
        if reply in replies:
            replies.remove(reply)
        if not replies:
            self.pending.pop(task_id, None)
        if reply.msg_id is not None:
            self.pending_by_msg.pop(reply.msg_id, None)
