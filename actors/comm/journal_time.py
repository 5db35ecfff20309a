"""The journal's time: task instants on Comm's monotonic clock, kept across a restart.

A task's time to live runs on Comm's monotonic clock, which no step of the wall clock
moves (issue 24: with wall-clock times in the journal, a +1 h step then a restart expired
every queued task at once). The journal keeps those instants as they are, with the boot
they belong to and the clock's reading, taken at most CLOCK_EVERY seconds apart while Comm
runs (meta `boot`, `clock`). Loaded on the same boot, the clock is the same: the instants
hold, and the time Comm was down counts as time waited (it was). On another boot (a
reboot, another machine) the clock started again and says nothing of the time between:
the instants are moved so that the last reading is now, as if time had stood still from
the journal's last write to the restart. Either way nothing expires early. Journals of
version 2 kept wall-clock times: they are read as they always were, once, when the journal
is brought to version 3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import orjson

log = logging.getLogger("mroute.comm")

CLOCK_EVERY = 1.0       # seconds between readings of the clock kept in the journal (module docstring)
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

Instant = Callable[[float | None], float | None]   # a journal's instant -> ours


def boot_id() -> str:
    """This boot of this machine ("" when unknown: never taken for the same boot)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


class JournalTime:
    def __init__(self, clock: Callable[[], float], wall: Callable[[], float], boot: str | None = None):
        self.clock = clock
        self.wall = wall              # read only to bring a version 2 journal's times over
        self.boot = boot_id() if boot is None else boot
        self.written: float | None = None  # our clock when the journal last took its reading

    def due(self, now: float | None = None) -> bool:
        """Whether the journal's reading of the clock is CLOCK_EVERY old (storage.py writes
        one when nothing else is written)."""
        now = self.clock() if now is None else now
        return self.written is None or now - self.written >= CLOCK_EVERY

    def reading(self, now: float) -> list[tuple[str, str]]:
        """The meta rows of a reading taken at `now` (written with it: taken())."""
        return [("boot", self.boot), ("clock", repr(now))]

    def taken(self, now: float) -> None:
        self.written = now

    def instants(self, meta: dict[str, str], version: int, path: Path) -> Instant:
        """How a journal's instants become ours: version 2's wall-clock times as version 2
        read them, later ones moved by shift()."""
        if version < 3:
            return self.from_wall
        shift = self.shift(meta, path)
        return lambda at: None if at is None else at + shift

    def shift(self, meta: dict[str, str], path: Path) -> float:
        """What makes the journal's instants ours (module docstring): nothing on the same
        boot; on another, the time from its last reading to now."""
        try:
            written = float(meta["clock"])
        except (KeyError, ValueError):
            return 0.0  # never read the clock: it never wrote a task either
        now = self.clock()
        if self.boot and meta.get("boot") == self.boot and written <= now:
            return 0.0
        log.warning("journal: %s was written on another boot: its tasks' waits go on from its last write, "
                    "the time since does not count", path)
        return now - written

    def from_v2(self, data: bytes) -> bytes:
        """A version 2 task row with its times made instants of our clock."""
        t = orjson.loads(data)
        created = self.from_wall(t["created"])
        t["created"] = created if created is not None else self.clock()
        t["queued_since"] = self.from_wall(t["queued_since"])
        return orjson.dumps(t)

    def from_wall(self, wall: float | None) -> float | None:
        """A version 2 time, as version 2 read it: so long ago by the wall clock now."""
        return None if wall is None else self.clock() - (self.wall() - wall)
