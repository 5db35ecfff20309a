"""Comm's journal: its state in SQLite (WAL), written before anything it caused is sent.

Comm is the system of record (design.md section 6). After each wake-up's messages are
handled, the agents and tasks their owners marked as changed are written in one transaction, and only then
is the outbox flushed: whatever a Chat Server or the MRE has heard of is on disk. A Comm
restarted after a crash (kill -9 included) loads it and carries on under the same epoch,
so Chat Servers see no restart: their agents stay logged in, queued tasks stay queued.

`synchronous=NORMAL` in WAL mode survives the death of the process (the WAL is in the
page cache); a power cut may lose the last transactions before a checkpoint. SQLite
checkpoints (and fsyncs) inside a commit, every CHECKPOINT_PAGES pages of WAL: the routing
latency's tail is those commits. At SQLite's default of 1,000 pages a checkpoint held Comm
for several milliseconds (p99 routing at 1,000 tasks/s 5.8-6.0 ms; at 10,000 pages 19 ms);
at 256, more of them and shorter (p99 3.1-3.9 ms, p50 and throughput unchanged within the
noise). A checkpointing thread, and a thread for all the writes, were tried: they cost more
in contention for Python's lock than they saved (throughput 4,400/s against 5,550/s).

A write that fails (disk full, read-only, I/O error) raises JournalError and leaves the
journal as the last successful save left it; what Comm does then is storage.py's.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from .ledger import SEEN_KEPT
from .state import CommState, Presence, Session, Task
from .tasks import CLOSED_KEPT

log = logging.getLogger("mroute.comm")

CHECKPOINT_PAGES = 256  # WAL pages between checkpoints (module docstring)

# Agents and live tasks are found by their id only: WITHOUT ROWID keeps each in one B-tree
# instead of a table and its key's index (a journal write per lifecycle: 101 -> 89 us).
# Closed tasks and MsgIds are never looked up in the journal, only read back whole at a
# start, in order: they are appended to plain rowid tables (a task closes once; the ledger
# adds a MsgId again only after it forgot it, and the later row wins) and trimmed oldest
# first, by rowid. An index on their random keys made every insert land on a random page:
# 3 MsgIds and a closed task per lifecycle were a third of the journal's cost (issue 15).
SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (agent_id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS closed (task_id TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seen (msg_id TEXT NOT NULL, task_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SCHEMA_VERSION = 2  # PRAGMA user_version; 0: a journal whose closed and seen had a key index (1 was never used)

# A journal of version 0 keeps its rows, in their order, in the tables of today.
MIGRATE_FROM_0 = """
BEGIN;
CREATE TABLE closed_v2 (task_id TEXT NOT NULL, data BLOB NOT NULL);
INSERT INTO closed_v2 SELECT task_id, data FROM closed ORDER BY rowid;
DROP TABLE closed;
ALTER TABLE closed_v2 RENAME TO closed;
CREATE TABLE seen_v2 (msg_id TEXT NOT NULL, task_id TEXT NOT NULL);
INSERT INTO seen_v2 SELECT msg_id, task_id FROM seen ORDER BY rowid;
DROP TABLE seen;
ALTER TABLE seen_v2 RENAME TO seen;
PRAGMA user_version = 2;
COMMIT;
"""


class JournalError(Exception):
    """A write the journal could not make; its text is SQLite's ("database or disk is full")."""


@dataclass
class Changes:
    """What the journal must write: exactly what the owners marked since it last wrote."""
    agents: dict[str, Session | None] = field(default_factory=dict)
    tasks: dict[str, Task | None] = field(default_factory=dict)   # None: no longer live
    closed: dict[str, Task] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)  # meta key -> its new value, as stored

    def __bool__(self) -> bool:
        return bool(self.agents or self.tasks or self.seen or self.meta)


class Journal:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self.wall = wall
        self.db = self.connect()
        self.create_or_migrate()
        self.seen_rows = self.db.execute("SELECT count(*) FROM seen").fetchone()[0]
        self.closed_rows = self.db.execute("SELECT count(*) FROM closed").fetchone()[0]

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)  # transactions are ours
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        return db

    def create_or_migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise JournalError(f"{self.path} was written by a newer mroute (journal version {version}, "
                               f"this one reads {SCHEMA_VERSION})")
        exists = self.db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'seen'").fetchone()[0]
        try:
            if exists:
                log.info("journal: %s: moving closed tasks and MsgIds to unindexed tables (version %d -> %d)",
                         self.path, version, SCHEMA_VERSION)
                self.db.executescript(MIGRATE_FROM_0)
            self.db.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        except sqlite3.Error as exc:  # the journal stays as it was: SQLite rolls the copy back
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise JournalError(f"{self.path}: cannot bring the journal from version {version} to "
                               f"{SCHEMA_VERSION}: {exc}") from exc

    # monotonic times mean nothing to another process: they are kept as wall-clock times
    def to_wall(self, monotonic: float | None) -> float | None:
        return None if monotonic is None else self.wall() - (self.clock() - monotonic)

    def from_wall(self, wall: float | None) -> float | None:
        return None if wall is None else self.clock() - (self.wall() - wall)

    def load(self) -> CommState | None:
        """The state journaled by an earlier Comm, or None when there is none."""
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        if "task_prefix" not in meta:
            return None
        state = CommState(task_prefix=meta["task_prefix"], task_number=int(meta.get("task_number", "0")),
                          watched=set(orjson.loads(meta.get("watched", "[]"))),
                          decisions=orjson.loads(meta.get("decisions", "{}")))
        for agent_id, data in self.db.execute("SELECT agent_id, data FROM agents"):
            raw = orjson.loads(data)
            session = Session(agent_id, raw["destination"], raw.get("extension", ""))
            for mrd, p in raw["mrds"].items():
                session.mrds[mrd] = Presence(mrd, agent_id, p["state"], p["reason"], p["changed"], p["wants"],
                                             set(p["tasks"]), p["offer"], p["external"], p["on_call"])
            state.sessions[agent_id] = session
        for task_id, data in self.db.execute("SELECT task_id, data FROM closed ORDER BY rowid"):
            state.closed[task_id] = self.task_of(task_id, orjson.loads(data))
        live = [(task_id, orjson.loads(data)) for task_id, data in self.db.execute("SELECT task_id, data FROM tasks")]
        for task_id, data in sorted(live, key=lambda row: row[1]["created"]):  # in the order they came
            state.tasks[task_id] = self.task_of(task_id, data)
        for msg_id, task_id in self.db.execute("SELECT msg_id, task_id FROM seen ORDER BY rowid"):
            state.seen.pop(msg_id, None)  # seen again after the ledger forgot it: where the ledger put it
            state.seen[msg_id] = task_id
        return state

    def task_of(self, task_id: str, t: dict[str, Any]) -> Task:
        created = self.from_wall(t["created"])
        return Task(task_id, t["mrd"], t["client_id"], t["name"], t["params"], t["origin"], t["state"], t["owner"],
                    t["participants"], t["code"], t["queue"], created if created is not None else self.clock(),
                    self.from_wall(t["queued_since"]), t["waited"])

    def save(self, changes: Changes) -> None:
        """Write what the owners marked as changed, in one transaction. A write that fails
        (disk full, read-only, I/O error) raises JournalError and leaves the journal as the
        last save left it."""
        db = self.db
        closed_rows, seen_rows = self.closed_rows, self.seen_rows  # counted as written only once committed
        try:
            db.execute("BEGIN")
            # one statement per table and kind of change: a call per row was a third of the commit
            agents, tasks = changes.agents.items(), changes.tasks.items()
            db.executemany("DELETE FROM agents WHERE agent_id = ?", [(a,) for a, s in agents if s is None])
            db.executemany("INSERT OR REPLACE INTO agents VALUES (?, ?)",
                           [(a, self.agent_blob(s)) for a, s in agents if s is not None])
            db.executemany("DELETE FROM tasks WHERE task_id = ?", [(t,) for t, task in tasks if task is None])
            db.executemany("INSERT OR REPLACE INTO tasks VALUES (?, ?)",
                           [(t, self.task_blob(task)) for t, task in tasks if task is not None])
            if changes.closed:  # kept, as Comm keeps them, to answer late questions
                db.executemany("INSERT INTO closed VALUES (?, ?)",
                               [(t, self.task_blob(task)) for t, task in changes.closed.items()])
                closed_rows += len(changes.closed)
            if closed_rows > 2 * CLOSED_KEPT:
                db.execute("DELETE FROM closed WHERE rowid <= (SELECT max(rowid) FROM closed) - ?", (CLOSED_KEPT,))
                closed_rows = CLOSED_KEPT
            if changes.seen:
                db.executemany("INSERT INTO seen VALUES (?, ?)", changes.seen)
                seen_rows += len(changes.seen)
                if seen_rows > 2 * SEEN_KEPT:  # trim now and then, not every time
                    db.execute("DELETE FROM seen WHERE rowid <= (SELECT max(rowid) FROM seen) - ?", (SEEN_KEPT,))
                    seen_rows = SEEN_KEPT
            if changes.meta:  # the keys that changed, encoded (core.take_changes)
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", changes.meta.items())
            db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self.abandon()
            raise JournalError(str(exc)) from exc
        except BaseException:
            self.abandon()
            raise
        self.closed_rows, self.seen_rows = closed_rows, seen_rows

    def probe(self, size: int) -> None:
        """Write `size` bytes and take them back: whether a commit of about that size can be
        made now (a degraded Comm asks before it takes changes again). Raises JournalError."""
        try:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('probe', ?)", (bytes(size),))
            self.db.execute("DELETE FROM meta WHERE key = 'probe'")
        except (sqlite3.Error, OSError) as exc:
            self.abandon()
            raise JournalError(str(exc)) from exc

    def abandon(self) -> None:
        """Undo the transaction a failure interrupted. A COMMIT that hit a full disk has been
        rolled back by SQLite already, and ROLLBACK then fails ("cannot rollback - no
        transaction is active"): roll back only what is still open. A ROLLBACK that fails
        too (an I/O error) leaves the connection unusable: a new one is opened, and the
        transaction dies with the old (SQLite rolls back what a closed connection left)."""
        if not self.db.in_transaction:
            return
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("journal: rollback failed (%s): opening the journal again", exc)
            try:
                self.db.close()
                self.db = self.connect()
            except sqlite3.Error as again:  # the next write fails and tries again
                log.error("journal: cannot open %s again: %s", self.path, again)

    @staticmethod
    def agent_blob(session: Session) -> bytes:
        return orjson.dumps({"destination": session.destination, "extension": session.extension, "mrds": {
            mrd: {"state": p.state, "reason": p.reason, "changed": p.changed, "wants": p.wants,
                  "tasks": sorted(p.tasks), "offer": p.offer, "external": p.external, "on_call": p.on_call}
            for mrd, p in session.mrds.items()}})

    def task_blob(self, task: Task) -> bytes:
        return orjson.dumps({"mrd": task.mrd, "client_id": task.client_id, "name": task.name, "params": task.params,
                             "origin": task.origin, "state": task.state, "owner": task.owner,
                             "participants": task.participants, "code": task.code, "queue": task.queue,
                             "created": self.to_wall(task.created), "queued_since": self.to_wall(task.queued_since),
                             "waited": task.waited})

    def close(self) -> None:
        try:  # a checkpoint needs room; without it the WAL stays, and is read at the next start
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("journal: no checkpoint on close: %s", exc)
        self.db.close()
