"""A CLI verb run on a pseudo-terminal, as a person at a keyboard runs it: what it prints is
read as it comes, keys are typed, and the process is killed on the way out whatever
happened."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

from ..helpers import MROUTE

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


class Terminal:
    def __init__(self, directory: Path, *args: str, columns: int = 120, rows: int = 40):
        self.master, slave = pty.openpty()
        import fcntl
        import struct
        import termios
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = dict(os.environ, HOME=str(directory), TERM="xterm", COLUMNS=str(columns), LINES=str(rows))
        self.proc = subprocess.Popen([*MROUTE, *args], cwd=directory, stdin=slave, stdout=slave, stderr=slave,
                                     env=env, start_new_session=True)
        os.close(slave)
        self.seen = b""       # everything printed, escape sequences removed
        self.read_to = 0      # how much of it expect() has consumed

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        os.close(self.master)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:   # the other side closed: the process ended
            return False
        self.seen += ANSI.sub(b"", chunk)
        return bool(chunk)

    def expect(self, text: str, timeout: float = 10) -> str:
        """Wait until `text` is printed after what was expected last; returns what came
        before it."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while (at := self.seen.find(needle, self.read_to)) < 0:
            if not self._read(deadline - time.monotonic()) and (time.monotonic() > deadline or
                                                                 self.proc.poll() is not None):
                tail = self.seen[self.read_to:].decode(errors="replace")[-2000:]
                raise AssertionError(f"{text!r} not printed within {timeout} s; after the last match:\n{tail}")
        before = self.seen[self.read_to:at].decode(errors="replace")
        self.read_to = at + len(needle)
        return before

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def line(self, text: str) -> None:
        self.type(text + "\r")

    def wait_exit(self, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        return self.proc.wait(max(0.0, deadline - time.monotonic()))
