"""What the pages are told as it happens: named channels (`overview`, `events`, `load`,
`team`, `voice`, `agent:ID`, `chat:ID`), each event a JSON object, sent to every page that
listens as Server-Sent Events. A page that reads too slowly loses its oldest events, never stalls
the others (zeromq-rules' slow subscriber, in HTTP)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson

QUEUE_LIMIT = 256   # events a page may have unread before its oldest are dropped
CLOSING = b""       # put to every listener when the console stops: its stream ends
# Every view of a desk, a chat or the voice client is numbered (`v`): a page draws none older
# than the one it drew last, since an action's answer may reach it after the news that
# followed the action on the event stream (a TaskAgentSelected right after a READY).
VERSIONS = itertools.count(1)


class Hub:
    def __init__(self) -> None:
        self.listeners: list[tuple[set[str], asyncio.Queue[bytes]]] = []

    def listen(self, channels: set[str]) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_LIMIT)
        self.listeners.append((channels, queue))
        return queue

    def leave(self, queue: asyncio.Queue[bytes]) -> None:
        self.listeners = [(c, q) for c, q in self.listeners if q is not queue]

    def listening(self, channel: str) -> bool:
        """Whether any page listens to `channel` (what costs to make is made only then)."""
        return any(channel in channels for channels, _queue in self.listeners)

    def close(self) -> None:
        for _channels, queue in self.listeners:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(CLOSING)

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        data = b"event: " + channel.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
        for channels, queue in self.listeners:
            if channel in channels:
                if queue.full():
                    queue.get_nowait()   # the oldest goes: a slow page misses, it does not hold us up
                queue.put_nowait(data)
