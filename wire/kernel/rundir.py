"""The run directory's layout, shared by the supervisor (or a pod's runner) and the actors.

The supervisor owns a topology's run directory (zeromq-rules 5) and the actors write in it;
where each file lives is said once, here, so that `launch/` never imports an actor's
internals to find one (design.md section 2).
"""

from __future__ import annotations

from pathlib import Path

TOPOLOGY = "topology.json"               # the resolved topology: what every actor reads at start
STATE = "state.json"                     # who runs (for `mroute down` when the supervisor is gone)
LOCK = "lock"                            # held (flock) by the supervisor while it runs
LOGS = "logs"                            # one file an instance, NAME.log, rotated beside it
JOURNAL = "comm.sqlite"                  # Comm's journal (SQLite in WAL mode)
JOURNAL_COMPANIONS = ("-wal", "-shm")    # the files SQLite keeps beside it


def journal_path(run_dir: str | Path) -> Path:
    """Where Comm journals its agents and tasks."""
    return Path(run_dir) / JOURNAL


def journal_files(run_dir: str | Path) -> list[Path]:
    """The journal and its companions: what a topology started afresh removes."""
    path = journal_path(run_dir)
    return [path, *(Path(f"{path}{suffix}") for suffix in JOURNAL_COMPANIONS)]


def log_path(run_dir: str | Path, instance: str) -> Path:
    return Path(run_dir) / LOGS / f"{instance}.log"
