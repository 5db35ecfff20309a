"""Following Comm's numbered stream (the README, "A numbered stream to every
destination"), without sockets: fed the `Seq` and `Stream` of each message received, it
says whether the message came in order, after a gap, or from a new Comm process.

A subscriber's own destination is numbered 1, 2, 3, ... under the `Stream` of the Comm
process that sent it. Comm's heartbeat (topic `mroute.comm`, heard by every subscriber)
carries the `Stream` but no `Seq`: it is not numbered, since one full subscriber keeps it
from all, but it tells an idle desk at once that another Comm process speaks. The follower
keeps one `Stream` and, within it, the last `Seq` of each numbered line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIRST = "first"            # the first numbered message on its line within the stream: nothing to compare
IN_ORDER = "in_order"
GAP = "gap"                # `missed` messages to this line were lost before this one
NEW_STREAM = "new_stream"  # another Comm process: what the old one (or this one, before we heard it) sent may be lost
REWOUND = "rewound"        # Seq not above the last of the same stream: the numbering restarted, losses unknown
UNNUMBERED = "unnumbered"  # no usable Seq and Stream (a Comm that does not number): nothing can be said


@dataclass(frozen=True, slots=True)
class Seen:
    """What one message says about the stream."""
    kind: str
    missed: int = 0  # messages known lost just before it (GAP only)

    @property
    def lost_track(self) -> bool:
        """Messages to us may have been lost: what we hold must be checked (a Resync)."""
        return self.kind in (GAP, NEW_STREAM, REWOUND)


_FIRST = Seen(FIRST)
_IN_ORDER = Seen(IN_ORDER)
_NEW_STREAM = Seen(NEW_STREAM)
_REWOUND = Seen(REWOUND)
_UNNUMBERED = Seen(UNNUMBERED)


class StreamFollower:
    """Counts `gaps` (messages after which some were missing, and rewound numberings),
    `missed` (messages known lost: the sum of the gaps' sizes) and `streams` (changes of
    Stream after the first one heard).

    A new Stream is not counted as missed messages: the Seq it starts at says how many the
    new process sent before our subscription heard it, but those were sent to nobody (Comm
    does not count them dropped) and the resync that follows recovers what mattered. So
    `missed` stays comparable with Comm's count of messages it could not deliver."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.last: dict[str, int] = {}  # line -> the Seq of its last message in `stream`
        self.gaps = 0
        self.missed = 0
        self.streams = 0

    def observe(self, body: dict[str, Any], line: str = "") -> Seen:
        seq, stream = body.get("Seq"), body.get("Stream")
        if not (stream.__class__ is str or stream.__class__ is int):
            return _UNNUMBERED
        if seq is None:  # a beat: it says only which Comm process speaks
            if stream == self.stream:
                return _UNNUMBERED
        elif seq.__class__ is not int or seq < 0:
            return _UNNUMBERED  # (bool is not int here: `True` is no Seq)
        if stream != self.stream:
            heard_before = self.stream is not None
            self.stream = stream
            self.last = {line: seq} if seq is not None else {}
            if not heard_before:
                return _FIRST
            self.streams += 1
            return _NEW_STREAM
        last = self.last.get(line)
        self.last[line] = seq
        if last is None:
            return _FIRST
        if seq == last + 1:
            return _IN_ORDER
        self.gaps += 1
        if seq <= last:
            return _REWOUND
        missed = seq - last - 1
        self.missed += missed
        return Seen(GAP, missed)

    def counts(self) -> dict[str, int]:
        return {"gaps": self.gaps, "missed": self.missed, "streams": self.streams}

    def count_afresh(self) -> None:
        """Counts from now on; where each line stands is kept (it is not a count)."""
        self.gaps = self.missed = self.streams = 0
