"""One actor process as whoever runs it knows it: its state (states.py), its pid, how long
it has run and what it last failed with. The runner (runner.py) changes it; the supervisor's
watcher keeps more beside it (its log file, its restart policy: supervisor/watcher.py)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Any

from wire.kernel.loop import Timer

from .liveness import Liveness
from .states import DEGRADED, FATAL, STOPPED, UNRESPONSIVE, UP


@dataclass
class Process:
    name: str
    role: str
    state: str = STOPPED
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0           # time.time() of the last spawn
    spawned: float = 0.0           # time.monotonic() of the last spawn: how long it ran, whatever the wall clock did
    restarts: int = 0
    exit_status: int | None = None
    failure: str = ""              # traceback or reason of the last failure
    reason: str = ""               # why the last change happened, for the event stream
    degraded: str = ""             # why the process says it serves only in part ("": it does not)
    said_ready: bool = False       # it has said READY since its last spawn
    liveness: Liveness | None = None   # from its start on: whether it answers its pings
    start_timer: Timer | None = None   # its start's deadline (supervisor.ready_timeout)
    kill_timer: Timer | None = None    # the KILL after a TERM (supervisor.stop_grace)

    @property
    def pid(self) -> int | None:
        proc = self.proc  # read once: another thread (metrics) may ask while the loop reaps
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def log_dropped_bytes(self) -> int:
        return 0   # its output passed through, not captured: nothing dropped

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "pid": self.pid, "state": self.state,
                "reason": self.reason if self.state in (DEGRADED, UNRESPONSIVE) else self.why_fatal(),
                "uptime": round(time.time() - self.started, 3) if self.state in UP else 0.0,
                "restarts": self.restarts, "exit_status": self.exit_status,
                "log_dropped_bytes": self.log_dropped_bytes}

    def last_failure(self) -> str:
        """One line: the message of an explained failure, a traceback's last line."""
        return self.failure.strip().splitlines()[-1][:600] if self.failure.strip() else ""

    def why_fatal(self) -> str:
        """Why it gave up: the last start failure, as the process said it, else how it ended."""
        if self.state != FATAL:
            return ""
        return self.last_failure() or (f"exited with status {self.exit_status}" if self.exit_status is not None
                                       else "")
