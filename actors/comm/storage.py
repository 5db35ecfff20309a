"""Whether Comm can make its changes durable now: the only owner of the journal's health.

Comm acknowledges nothing it has not journaled (design.md 6), and a failed write degrades,
it never ends the process. A write that fails (disk full, read-only file system, I/O error)
leaves the journal as it was and makes Comm degraded: `reason` says why ("journal write
failed: database or disk is full"). While it lasts, Comm refuses every change with
`Error UNAVAILABLE` and answers queries from what it holds (core.py), and every
PROBE_EVERY seconds the server asks `probe` whether a write of PROBE_BYTES goes through;
the first that does ends it. Probing with some room to spare, rather than with the smallest
write, keeps a disk with a few free pages from taking Comm in and out of degraded mode on
every wake-up (each entry undoes a wake-up and reloads the journal: server.py).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from .journal import Changes, Journal, JournalError
from .state import CommState

log = logging.getLogger("mroute.comm")

PROBE_EVERY = 1.0          # seconds between probes while degraded
PROBE_BYTES = 256 * 1024   # what a probe writes (and deletes): a commit of a busy wake-up fits
LOG_AGAIN_AFTER = 60.0     # seconds between "still degraded" lines


class Storage:
    def __init__(self, journal: Journal | None, clock: Callable[[], float] = time.monotonic):
        self.journal = journal     # None: `comm: {journal: false}`, nothing to fail
        self.clock = clock
        self.failure = ""          # why the last write failed, while writes fail; "" when they succeed
        self.since: float | None = None
        self.logged_at = 0.0
        self.counters = {"journal_write_failures": 0, "journal_probes_failed": 0, "degraded_episodes": 0}
        self.degraded_s = 0.0      # seconds degraded, in episodes that ended

    @property
    def reason(self) -> str:
        """Why Comm is degraded, or "" when it is not."""
        return f"journal write failed: {self.failure}" if self.failure else ""

    def load(self) -> CommState | None:
        return self.journal.load() if self.journal is not None else None

    def write(self, changes: Changes) -> bool:
        """Journal `changes`: True when written (or nothing to write), False when the write
        failed (then Comm is degraded, and the journal is as it was)."""
        if self.journal is None:
            return True
        if not changes:
            if not self.failure and self.journal.time.due():
                self.read_clock()
            return True
        try:
            self.journal.save(changes)
        except JournalError as exc:
            self.counters["journal_write_failures"] += 1
            if not self.failure:
                self.counters["degraded_episodes"] += 1
                self.since = self.logged_at = self.clock()
                log.error("journal write failed: %s: refusing changes (UNAVAILABLE) until it can write again", exc)
            self.failure = str(exc)
            return False
        return True

    def read_clock(self) -> None:
        """The journal's reading of the clock, kept fresh while nothing else is written: after
        a reboot, time stands still from it (journal_time.py). Its failure degrades nothing: the
        next change will find out, and say so."""
        try:
            self.journal.save(Changes())  # type: ignore[union-attr]
        except JournalError as exc:
            log.debug("journal: no reading of the clock: %s", exc)

    def probe(self) -> bool:
        """While degraded: True when a write went through and Comm is degraded no more."""
        if not self.failure or self.journal is None:
            return True
        try:
            self.journal.probe(PROBE_BYTES)
        except JournalError as exc:
            self.counters["journal_probes_failed"] += 1
            self.failure = str(exc)
            now = self.clock()
            if now - self.logged_at >= LOG_AGAIN_AFTER:
                self.logged_at = now
                log.error("journal still cannot write (%s) after %.0f s", exc,
                          now - self.since if self.since is not None else 0.0)
            return False
        now = self.clock()
        lasted = now - self.since if self.since is not None else 0.0
        self.degraded_s += lasted
        log.warning("journal writes again after %.1f s: serving changes again", lasted)
        self.failure, self.since = "", None
        return True

    def stats(self) -> dict[str, object]:
        now = self.clock()
        checkpointer = self.journal.checkpointer if self.journal is not None else None
        checkpoints = checkpointer.stats() if checkpointer is not None else {}
        return {**self.counters, **checkpoints, "degraded": self.reason,
                "degraded_s": round(self.degraded_s + (now - self.since if self.since is not None else 0.0), 3)}
