"""What an operator may learn of a journal file with no Comm running, asked by `mroute`
in a process of its own (launch/ never imports Comm's internals):

    python -m actors.comm.journal_cli summary PATH
    -> {"exists": true, "epoch": "...", "agents_logged_in": 3, "live_tasks": 10}

It opens the file read-only, so it never creates or changes a journal."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson

from wire import states as S


def summary(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"exists": False, "epoch": None, "agents_logged_in": 0, "live_tasks": 0}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
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
    except sqlite3.Error as exc:
        print(f"cannot read the journal {argv[1]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
