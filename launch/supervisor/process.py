"""One actor process as its watcher sees it: its state (supervisord's names, plus
UNRESPONSIVE and DEGRADED), its pid, its log file and what it last failed with."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wire.kernel.loop import Timer

from .flapping import Flapping
from .liveness import Liveness
from .logfile import LogFile

# Process states, as supervisord names them; UNRESPONSIVE: alive, but not answering pings;
# DEGRADED: answering, but saying it serves only in part (Comm whose journal cannot write).
STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL = (
    "STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL")
UNRESPONSIVE = "UNRESPONSIVE"
DEGRADED = "DEGRADED"
UP = (RUNNING, UNRESPONSIVE, DEGRADED)   # started, and not asked to stop
SERVING = (RUNNING, DEGRADED)            # answering: asked for stats and operators' commands


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
    log_path: Path | None = None
    log: LogFile | None = None     # its output, as its watcher writes it
    partial: bytes = b""
    flapping: Flapping = field(default_factory=Flapping)
    liveness: Liveness | None = None
    backoff_timer: Timer | None = None
    ready_timer: Timer | None = None
    kill_timer: Timer | None = None

    @property
    def pid(self) -> int | None:
        proc = self.proc  # read once: another thread (metrics) may ask while the loop reaps
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def quick_failures(self) -> int:
        return self.flapping.quick_failures

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "pid": self.pid, "state": self.state,
                "reason": self.reason if self.state in (DEGRADED, UNRESPONSIVE) else self.why_fatal(),
                "uptime": round(time.time() - self.started, 3) if self.state in UP else 0.0,
                "restarts": self.restarts, "exit_status": self.exit_status,
                "log_dropped_bytes": self.log.dropped_bytes if self.log is not None else 0}

    def last_failure(self) -> str:
        """One line: the message of an explained failure, a traceback's last line."""
        return self.failure.strip().splitlines()[-1][:600] if self.failure.strip() else ""

    def why_fatal(self) -> str:
        """Why it gave up: the last start failure, as the process said it, else how it ended."""
        if self.state != FATAL:
            return ""
        return self.last_failure() or (f"exited with status {self.exit_status}" if self.exit_status is not None
                                       else "")


Child = Process  # its name before the split


def tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return b"\n".join(path.read_bytes().splitlines()[-lines:]).decode(errors="replace")
