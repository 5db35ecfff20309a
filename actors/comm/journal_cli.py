"""What an operator may learn of a journal file with no Comm running, asked by `mroute`
in a process of its own (launch/ never imports Comm's internals):

    python -m actors journal summary PATH
    -> {"exists": true, "epoch": "...", "agents_logged_in": 3, "live_tasks": 10}

It opens the file read-only, so it never creates or changes a journal, and says a damaged
one is damaged (SQLite's quick_check) even when the rows it counts can still be read:
exit status 1 and SQLite's words on stderr. `open_read_only` and `damage` are also how
Comm looks at its journal before it opens it for writing (journal.py)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from wire import states as S


def wal_of(path: Path) -> Path:
    return Path(f"{path}-wal")


def open_read_only(path: Path) -> sqlite3.Connection:
    """The journal as found, opened so that neither it nor its -wal is written. A -wal with
    content must be read (committed transactions not yet checkpointed): SQLite's read-only
    mode reads it and never checkpoints it. Without one, immutable: not even an empty -wal
    is created beside the file (read-only mode makes one)."""
    wal = wal_of(path)
    mode = "mode=ro" if wal.exists() and wal.stat().st_size > 0 else "immutable=1"
    return sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True)


def damage(db: sqlite3.Connection) -> str:
    """SQLite's words for what is wrong with the file ("" when its quick_check passes).
    Raises sqlite3.DatabaseError when SQLite cannot even look (not a database, malformed)."""
    rows = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
    return "" if rows == ["ok"] else " ".join("; ".join(rows).split())  # one line: its rows hold newlines


def is_corruption(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB), rather than
    that it could not read it now (I/O, permissions, locks)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def summary(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"exists": False, "epoch": None, "agents_logged_in": 0, "live_tasks": 0}
    db = open_read_only(path)
    try:
        words = damage(db)
        if words:
            raise sqlite3.DatabaseError(words)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"agents", "tasks", "meta"} <= tables:
            return {"exists": True, "epoch": None, "agents_logged_in": 0, "live_tasks": 0}
        logged_in = sum(1 for (data,) in db.execute("SELECT data FROM agents")
                        if any(p["state"] != S.LOGOUT for p in orjson.loads(data)["mrds"].values()))
        live = db.execute("SELECT count(*) FROM tasks").fetchone()[0]
        epoch = db.execute("SELECT value FROM meta WHERE key = 'task_prefix'").fetchone()
        return {"exists": True, "epoch": epoch[0] if epoch else None, "agents_logged_in": logged_in,
                "live_tasks": live}
    finally:
        db.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "summary":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        print(orjson.dumps(summary(Path(argv[1]))).decode())
    except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:  # a row that does not decode too
        print(f"cannot read the journal {argv[1]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
