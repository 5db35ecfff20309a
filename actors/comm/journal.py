"""Comm's journal: its state in SQLite (WAL), written before anything it caused is sent.

Comm is the system of record (design.md section 6). After each wake-up's messages are
handled, the agents and tasks their owners marked as changed are written in one transaction, and only then
is the outbox flushed: whatever a Chat Server or the MRE has heard of is on disk. A Comm
restarted after a crash (kill -9 included) loads it and carries on under the same epoch,
so Chat Servers see no restart: their agents stay logged in, queued tasks stay queued.

`synchronous=NORMAL` in WAL mode survives the death of the process (the WAL is in the
page cache); a power cut may lose the last transactions before a checkpoint. Comm's journal
is checkpointed by a thread of its own (checkpointer.py), never inside a commit. Without one
(`checkpoints=False`: tools, tests) SQLite checkpoints inside a commit every CHECKPOINT_PAGES
pages of WAL: at its default of 1,000 pages a checkpoint held Comm for several milliseconds
(p99 routing at 1,000 tasks/s 5.8-6.0 ms; at 10,000 pages 19 ms); at 256, more of them and
shorter (p99 3.1-3.9 ms). A thread for all the writes was tried: it cost more in contention
for Python's lock than it saved (throughput 4,400/s against 5,550/s).

A write that fails (disk full, read-only, I/O error) raises JournalError and leaves the
journal as the last successful save left it; what Comm does then is storage.py's.

Time: journal_time.py (no step of the wall clock, no reboot, expires a task early).

Damage. Before anything writes to it, the file is checked (quick_check) and read as found,
read-only (journal_cli.open_read_only), and opened for writing only once both passed: a
failed start never writes to a damaged journal or its -wal. Opened read-write, closing the
last connection would checkpoint the -wal into the file and delete it, the evidence an
operator needs gone with the only copy of the last transactions. A damaged journal raises
JournalUnusable, whose message is the whole story (actors/__main__.py shows no traceback).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

import orjson

from .checkpointer import BACKSTOP_PAGES, Checkpointer
from .journal_cli import damage, is_corruption, open_read_only, wal_of
from .journal_time import JournalTime
from .ledger import SEEN_KEPT
from .state import CommState, Presence, Session, Task
from .tasks import CLOSED_KEPT

log = logging.getLogger("mroute.comm")

CHECKPOINT_PAGES = 256  # WAL pages between the writer's checkpoints, when no thread makes them

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
# PRAGMA user_version; 0: closed and seen had a key index (1 was never used); 2: wall-clock times
SCHEMA_VERSION = 3

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


class JournalUnusable(JournalError, sqlite3.DatabaseError):
    """A journal Comm will not start from, left as it was found. Its message says what to do;
    `explained`: actors/__main__.py shows it alone, without a traceback. A DatabaseError too:
    a Comm that reloads its journal while running (server.py) treats it as any read failure."""
    explained = True


def damaged(path: Path, words: str) -> JournalUnusable:
    return JournalUnusable(
        f"the journal {path} is damaged ({words}); it was left as it is. Ways out: restore a copy made by "
        f"`mroute backup` (`mroute down`, copy it over {path.name}, `mroute up`), or `mroute reset`, which "
        f"starts empty and keeps the damaged file beside it as {path.name}.damaged-<time>")


UNREAD = object()  # Journal.found: nothing read at open that load() may hand out


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
                 wall: Callable[[], float] = time.time, boot: str | None = None, checkpoints: bool = False):
        self.path = Path(path)
        # made before connect(), which it tells how often the writer must checkpoint
        self.checkpointer = Checkpointer(self.path) if checkpoints else None
        self.clock = clock
        self.time = JournalTime(clock, wall, boot)
        self.damaged = False          # found damaged while open: closed without a checkpoint
        self.found: Any = self.read_as_found()   # the state load() hands out first, or UNREAD
        try:
            self.db = self.connect()
        except sqlite3.Error as exc:  # a read-only file system, a file we may not write
            raise JournalUnusable(f"cannot open the journal {self.path} for writing: {exc}") from exc
        if self.create_or_migrate():
            self.found = UNREAD       # rewritten: read again from what it holds now
        self.seen_rows = self.db.execute("SELECT count(*) FROM seen").fetchone()[0]
        self.closed_rows = self.db.execute("SELECT count(*) FROM closed").fetchone()[0]
        if self.checkpointer is not None:  # only once the file is checked, and ours to write
            self.checkpointer.start()

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)  # transactions are ours
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        backstop = BACKSTOP_PAGES if self.checkpointer is not None else CHECKPOINT_PAGES
        db.execute(f"PRAGMA wal_autocheckpoint={backstop}")
        return db

    def read_as_found(self) -> Any:
        """The state an earlier Comm left, checked and read without writing to the file or
        its -wal (module docstring); UNREAD when there is no file. Raises JournalUnusable."""
        path = self.path
        if not path.exists():
            return UNREAD
        wal = wal_of(path)
        if path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size > 0):
            log.warning("journal: %s is empty (0 bytes): starting with no agents and no tasks", path)
            return UNREAD
        try:
            db = open_read_only(path)
        except sqlite3.Error as exc:
            raise JournalUnusable(f"cannot read the journal {path}: {exc}") from exc
        try:
            words = damage(db)
            if words:
                raise damaged(path, words)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalUnusable(f"{path} was written by a newer mroute (journal version {version}, this "
                                      f"one reads {SCHEMA_VERSION}); it was left as it is")
            return self.read(db, version)
        except JournalUnusable:
            raise
        except sqlite3.Error as exc:
            raise (damaged(path, str(exc)) if is_corruption(exc) else
                   JournalUnusable(f"cannot read the journal {path}: {exc}")) from exc
        finally:
            db.close()

    def create_or_migrate(self) -> bool:
        """Bring the journal to SCHEMA_VERSION; whether anything was written."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return False
        if version > SCHEMA_VERSION:
            raise JournalUnusable(f"{self.path} was written by a newer mroute (journal version {version}, "
                                  f"this one reads {SCHEMA_VERSION})")
        exists = self.db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'seen'").fetchone()[0]
        try:
            if exists and version == 0:
                log.info("journal: %s: moving closed tasks and MsgIds to unindexed tables (version 0 -> 2)",
                         self.path)
                self.db.executescript(MIGRATE_FROM_0)
            if exists:
                self.migrate_times()
            self.db.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:  # SQLite rolls a copy back
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise JournalUnusable(f"{self.path}: cannot bring the journal from version {version} to "
                                  f"{SCHEMA_VERSION}: {exc}") from exc
        return True

    def migrate_times(self) -> None:
        """Version 2 kept wall-clock times: each is read as it always was (so long ago, by
        the wall clock now) and kept as an instant of our clock, with its reading."""
        log.info("journal: %s: keeping task times on the monotonic clock (version 2 -> 3)", self.path)
        db = self.db
        db.execute("BEGIN")
        for table, key in (("tasks", "task_id"), ("closed", "rowid")):
            rows = db.execute(f"SELECT {key}, data FROM {table}").fetchall()
            db.executemany(f"UPDATE {table} SET data = ? WHERE {key} = ?",
                           [(self.time.from_v2(d), k) for k, d in rows])
        now = self.clock()
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", self.time.reading(now))
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
        self.time.taken(now)

    def load(self) -> CommState | None:
        """The state journaled by an earlier Comm, or None when there is none. Raises
        JournalUnusable (a DatabaseError) on a damaged journal."""
        if self.found is not UNREAD:
            state, self.found = self.found, UNREAD
            return state
        try:
            return self.read(self.db, SCHEMA_VERSION)
        except JournalUnusable:
            self.damaged = True
            if self.checkpointer is not None:  # nothing more is written to a damaged file
                self.checkpointer.stop()
            raise

    def read(self, db: sqlite3.Connection, version: int) -> CommState | None:
        try:
            return self.read_rows(db, version)
        except sqlite3.Error as exc:
            if is_corruption(exc):
                raise damaged(self.path, str(exc)) from exc
            raise
        except (ValueError, KeyError, TypeError) as exc:  # a row that does not decode: damaged too
            raise damaged(self.path, f"a row does not decode: {exc!r}") from exc

    def read_rows(self, db: sqlite3.Connection, version: int) -> CommState | None:
        if not db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0]:
            return None  # created, never written
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if "task_prefix" not in meta:
            return None
        ours = self.time.instants(meta, version, self.path)
        state = CommState(task_prefix=meta["task_prefix"], task_number=int(meta.get("task_number", "0")),
                          watched=set(orjson.loads(meta.get("watched", "[]"))),
                          decisions=orjson.loads(meta.get("decisions", "{}")),
                          counters=orjson.loads(meta.get("counters", "{}")))
        for agent_id, data in db.execute("SELECT agent_id, data FROM agents"):
            raw = orjson.loads(data)
            session = Session(agent_id, raw["destination"], raw.get("extension", ""))
            for mrd, p in raw["mrds"].items():
                session.mrds[mrd] = Presence(mrd, agent_id, p["state"], p["reason"], p["changed"], p["wants"],
                                             set(p["tasks"]), p["offer"], p["external"], p["on_call"])
            state.sessions[agent_id] = session
        for task_id, data in db.execute("SELECT task_id, data FROM closed ORDER BY rowid"):
            state.closed[task_id] = self.task_of(task_id, orjson.loads(data), ours)
        live = [(task_id, orjson.loads(data)) for task_id, data in db.execute("SELECT task_id, data FROM tasks")]
        for task_id, data in sorted(live, key=lambda row: row[1]["created"]):  # in the order they came
            state.tasks[task_id] = self.task_of(task_id, data, ours)
        for msg_id, task_id in db.execute("SELECT msg_id, task_id FROM seen ORDER BY rowid"):
            state.seen.pop(msg_id, None)  # seen again after the ledger forgot it: where the ledger put it
            state.seen[msg_id] = task_id
        return state

    def task_of(self, task_id: str, t: dict[str, Any], ours: Callable[[float | None], float | None]) -> Task:
        created = ours(t["created"])
        return Task(task_id, t["mrd"], t["client_id"], t["name"], t["params"], t["origin"], t["state"], t["owner"],
                    t["participants"], t["code"], t["queue"], created if created is not None else self.clock(),
                    ours(t["queued_since"]), t["waited"], t.get("routed", False), t.get("accepted", False))

    def save(self, changes: Changes) -> None:
        """Write what the owners marked as changed, in one transaction. A write that fails
        (disk full, read-only, I/O error) raises JournalError and leaves the journal as the
        last save left it."""
        db = self.db
        self.found = UNREAD  # what was read at open is not what the journal holds any more
        closed_rows, seen_rows = self.closed_rows, self.seen_rows  # counted as written only once committed
        now = self.clock()
        read_clock = self.time.due(now)
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
            if read_clock:
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", self.time.reading(now))
            db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self.abandon()
            raise JournalError(str(exc)) from exc
        except BaseException:
            self.abandon()
            raise
        self.closed_rows, self.seen_rows = closed_rows, seen_rows
        if read_clock:
            self.time.taken(now)

    def probe(self, size: int) -> None:
        """Write `size` bytes and take them back: whether a commit of about that size can be
        made now (a degraded Comm asks before it takes changes again). Raises JournalError."""
        self.found = UNREAD
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

    @staticmethod
    def task_blob(task: Task) -> bytes:
        return orjson.dumps({"mrd": task.mrd, "client_id": task.client_id, "name": task.name, "params": task.params,
                             "origin": task.origin, "state": task.state, "owner": task.owner,
                             "participants": task.participants, "code": task.code, "queue": task.queue,
                             "created": task.created, "queued_since": task.queued_since, "waited": task.waited,
                             "routed": task.routed, "accepted": task.accepted})

    def close(self) -> None:
        if self.checkpointer is not None and not self.checkpointer.stop():
            return  # a checkpoint hung: both connections are left to the process's end (Checkpointer.stop)
        if self.damaged:
            self.close_as_found()
            return
        try:
            if self.time.due():
                self.save(Changes())  # the clock's last reading
        except JournalError as exc:
            log.warning("journal: no last reading of the clock on close: %s", exc)
        try:  # a checkpoint needs room; without it the WAL stays, and is read at the next start
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("journal: no checkpoint on close: %s", exc)
        self.db.close()

    def close_as_found(self) -> None:
        """Close a journal found damaged without the checkpoint that closing the last
        connection makes (module docstring): a read-only connection held meanwhile makes
        ours not the last, and a read-only one never checkpoints."""
        try:
            guard = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True)
            guard.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            log.error("journal: %s: cannot hold it open read-only while closing: %s", self.path, exc)
            guard = None
        self.db.close()
        if guard is not None:
            guard.close()
