"""An index of eligible agents that makes choosing one cost O(log n), never a scan.

Each precision-queue step keeps one, keyed by its queue's policy (lower is better: for
LONGEST_AVAILABLE, fewest active tasks and then available longest). A binary heap with
lazy deletion keeps the best on top; an agent's current key lives in a dict, so a new key
is one push and a removal one dict delete.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

Key = tuple[Any, ...]


class AgentIndex:
    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[Key, int, str]] = []
        self._live: dict[str, tuple[Key, int]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, agent_id: str) -> bool:
        return agent_id in self._live

    def put(self, agent_id: str, key: Key) -> None:
        """Add an agent, or move it to its new key."""
        live = self._live.get(agent_id)
        if live is not None and live[0] == key:
            return
        seq = next(self._seq)
        self._live[agent_id] = (key, seq)
        heapq.heappush(self._heap, (key, seq, agent_id))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def remove(self, agent_id: str) -> None:
        self._live.pop(agent_id, None)

    def key(self, agent_id: str) -> Key | None:
        live = self._live.get(agent_id)
        return live[0] if live else None

    def best(self) -> tuple[Key, str] | None:
        """(key, agent) of the best agent, or None when the index is empty."""
        heap, live = self._heap, self._live
        while heap:
            key, seq, agent_id = heap[0]
            current = live.get(agent_id)
            if current is not None and current[1] == seq:
                return key, agent_id
            heapq.heappop(heap)
        return None

    def _compact(self) -> None:
        self._heap = [(key, seq, agent_id) for agent_id, (key, seq) in self._live.items()]
        heapq.heapify(self._heap)
