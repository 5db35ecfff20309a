"""The journal's checkpoints, in a thread of their own with a connection of its own (issue 28).

A WAL commit appends pages to the -wal; a checkpoint copies them into the database file and
fsyncs it. Made by Comm's writer (SQLite's wal_autocheckpoint, every 256 pages), each
checkpoint ran inside a commit, on Comm's thread: at 1,000 lifecycles/s about 30 commits a
second took over 1 ms (p99 1.5 ms, up to 3.8), 46 ms a second in all, every route behind them
waiting. Here a thread asks for a PASSIVE checkpoint every CHECKPOINT_EVERY: it never blocks
the writer (SQLite lets one writer and one checkpointer work at once), SQLite runs it
without Python's lock, and a page the turns of those 50 ms wrote many times (the agents' and
live tasks' pages) is copied once.

The writer still checkpoints, past BACKSTOP_PAGES, and under steady load it must: the -wal
starts over only at a write that finds every frame copied, and a checkpoint of the thread's
is never complete then (commits land while it copies and syncs). So the writer checkpoints
inside a commit every 4,096 pages instead of every 256, and copies only what came since the
thread's last; then the -wal starts over. The -wal file grows to about 16-20 MB, and keeps
that size until Comm closes the journal.

Measured alternating with the writer's checkpoints, same hour (2 cores): lifecycles/s at the
peak 7,329 and 7,210 against 6,446 and 5,905, Comm's CPU 126-131 us a lifecycle against
136-147; route p99 at 1,000/s 2.6-3.5 ms (median 2.9) against 3.2-4.2 (median 3.3) in 6 rounds
each, p50 unchanged. (An earlier checkpointing thread, before this one, cost throughput; how
it was made is not on record.)

The same backstop bounds the -wal should this thread stop or fall behind. A checkpoint that
fails (a full disk) is counted, logged within a budget, and tried again at the next tick;
what is journaled stays in the -wal, as durable as it was.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from actors.lograte import LogBudget

log = logging.getLogger("mroute.comm")

CHECKPOINT_EVERY = 0.05  # seconds between checkpoints
BACKSTOP_PAGES = 4096    # -wal pages past which the writer checkpoints itself (16 MB of 4 KB pages)


class Checkpointer:
    def __init__(self, path: Path, every: float = CHECKPOINT_EVERY):
        self.path, self.every = path, every
        self.stopping = threading.Event()
        self.checkpoints = 0
        self.failures = 0
        self.lines = LogBudget()
        self.thread = threading.Thread(target=self.run, name="journal-checkpoints", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            log.error("journal: no checkpointing thread (%s): the writer checkpoints past %d pages",
                      exc, BACKSTOP_PAGES)
            return
        try:
            while not self.stopping.wait(self.every):
                try:  # fetchall: a statement left open would hold a read mark, and the -wal could not restart
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    self.failures += 1
                    write, unlogged = self.lines.take()
                    if write:
                        log.warning("journal: checkpoint failed: %s%s", exc,
                                    f" ({unlogged} failures before this one not logged)" if unlogged else "")
        finally:
            db.close()  # never the journal's last connection: the writer closes after (Journal.close)

    def stop(self, timeout: float = 10.0) -> bool:
        """Whether the thread has ended (a checkpoint under way is waited for up to `timeout`).
        If not (a checkpoint hung on a stalled disk), the journal must not close its writer:
        the thread's connection, closing later as the last, would checkpoint the -wal into
        the file and delete it, a damaged file too. Both are left to the process's end."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=timeout)
        if self.thread.is_alive():
            log.error("journal: a checkpoint has not ended in %.0f s: %s left open until this process ends",
                      timeout, self.path)
            return False
        return True

    def stats(self) -> dict[str, Any]:
        return {"journal_checkpoints": self.checkpoints, "journal_checkpoint_failures": self.failures}
