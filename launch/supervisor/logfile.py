"""One actor's log file (<run_dir>/logs/<instance>.log), written by its watcher: rotated at a
size, and never a reason for the supervisor to fail.

It rotates once a write would take it past `max_bytes`: `.log` -> `.log.1` -> ... ->
`.log.<keep>`, the oldest deleted, so an instance's logs take at most (keep + 1) x
max_bytes. It rotates between lines (a line that runs past twice the size is cut).

A write that fails (ENOSPC on a full disk, EIO, a directory removed) drops what it was
writing and counts it: the supervisor owns the topology, and a log line is never worth
losing it (issue 14: an ENOSPC here ended the supervisor and, by the parent-death signal,
every actor). The next write tries again, opening the file again if it has to. Writes go
straight to the file descriptor: a buffered file that failed to flush keeps the bytes it
could not write and fails again on every write after.
"""

from __future__ import annotations

import os
from pathlib import Path


class LogFile:
    def __init__(self, path: Path, max_bytes: int, keep: int):
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep                # rotated files kept: .log.1 ... .log.<keep>
        self.fd: int | None = None
        self.size = 0
        self.at_line_end = True
        self.dropped_bytes = 0          # what failed writes lost
        self.failures = 0
        self.rotations = 0
        self.last_error = ""

    def write(self, data: bytes) -> None:
        """Append `data`; what cannot be written is dropped and counted, never raised."""
        written = 0
        try:
            if self.fd is None:
                self.open()
            if self.size and self.size + len(data) > self.max_bytes and (
                    self.at_line_end or self.size >= 2 * self.max_bytes):
                self.rotate()
            view = memoryview(data)
            while written < len(data):
                n = os.write(self.fd, view[written:])  # type: ignore[arg-type]
                if n <= 0:  # a regular file that takes nothing is full
                    raise OSError(28, "No space left on device")
                written += n
        except OSError as exc:
            self.dropped_bytes += len(data) - written
            self.failures += 1
            self.last_error = exc.strerror or str(exc)
        self.size += written
        if written:
            self.at_line_end = data[written - 1] == 0x0A

    def open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self.fd).st_size

    def rotate(self) -> None:
        """Shift the rotated files up by one (renames need no free space) and start afresh."""
        self.close()
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.keep > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self.rotations += 1
        self.open()

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def stats(self) -> dict[str, int]:
        return {"log_dropped_bytes": self.dropped_bytes, "log_write_failures": self.failures,
                "log_rotations": self.rotations}


def tail(path: Path | None, lines: int = 20) -> str:
    """The last lines of a log file: what a process that failed to start said last."""
    if path is None or not path.exists():
        return ""
    return b"\n".join(path.read_bytes().splitlines()[-lines:]).decode(errors="replace")
