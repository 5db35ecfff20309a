"""The request ledger: which MsgIds were handled, so that a retry is answered, never
applied twice. The only owner of `seen`; what it adds is what the journal writes.
"""

from __future__ import annotations

from collections import OrderedDict

SEEN_KEPT = 200_000      # handled MsgIds remembered: a retry later than that is applied again


def ledger_key(sender: str, msg_id: str) -> str:
    """What the ledger remembers a request by: its sender and its MsgId (a MsgId is its
    sender's: the same one from another desk is another request)."""
    return f"{sender}\x00{msg_id}"


class Ledger:
    def __init__(self) -> None:
        self.duplicates = 0   # retries answered, since this process started
        self.load(OrderedDict())

    def load(self, seen: OrderedDict[str, str]) -> None:
        """What the journal holds (at the start, and again after a write was undone)."""
        self.seen = seen                          # sender and MsgId -> TaskId or ""
        self.new: list[tuple[str, str]] = []      # handled since the journal last wrote

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
