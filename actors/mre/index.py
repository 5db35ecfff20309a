"""The index of eligible agents that makes choosing one cost O(log n), not a scan.

LONGEST_AVAILABLE (protocol.md 1.5): fewest active tasks first, then the agent available
longest. Keys are (active tasks, available since, sequence); a binary heap with lazy
deletion keeps the best on top, and an agent's current key lives in a dict, so a change of
key is one push and a removal is one dict delete.
"""

from __future__ import annotations

import heapq
import itertools

Key = tuple[int, float, int]


class AgentIndex:
    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, float, int, str]] = []
        self._live: dict[str, Key] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, agent_id: str) -> bool:
        return agent_id in self._live

    def put(self, agent_id: str, active: int, since: float) -> None:
        """Add an agent, or move it to its new key."""
        live = self._live.get(agent_id)
        if live is not None and live[0] == active and live[1] == since:
            return
        key = (active, since, next(self._seq))
        self._live[agent_id] = key
        heapq.heappush(self._heap, (*key, agent_id))
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def remove(self, agent_id: str) -> None:
        self._live.pop(agent_id, None)

    def best(self) -> str | None:
        heap, live = self._heap, self._live
        while heap:
            active, since, seq, agent_id = heap[0]
            key = live.get(agent_id)
            if key is not None and key[2] == seq:
                return agent_id
            heapq.heappop(heap)
        return None

    def _compact(self) -> None:
        self._heap = [(*key, agent_id) for agent_id, key in self._live.items()]
        heapq.heapify(self._heap)
