"""Storage faults degrade, never kill (issue 14): a commit on a really full disk (a small
tmpfs, mounted when root) is rolled back cleanly. The rest on plain objects:
tests/inprocess/test_storage_faults.py; the multi-process test on a full disk is
tests/processes/test_disk_full.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from actors.comm.journal import Journal, JournalError

from ..harness import Harness


def small_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")


def fill(directory: Path) -> None:
    with open(directory / "filler", "wb", buffering=0) as filler:
        for chunk in (1 << 20, 4096, 512):
            try:
                while True:
                    filler.write(b"\0" * chunk)
            except OSError:
                pass


def test_a_commit_on_a_full_disk_is_rolled_back_cleanly(tmp_path):
    """Found on a 16 MB tmpfs: a COMMIT that finds the disk full is rolled back by SQLite,
    and our ROLLBACK then failed with "cannot rollback - no transaction is active"."""
    disk = tmp_path / "disk"
    small_tmpfs(disk, "2m")
    try:
        h = Harness(agents=3)
        journal = Journal(disk / "comm.sqlite", clock=h.clock)
        h.login("a0")
        journal.save(h.comm.take_changes())
        fill(disk)
        with pytest.raises(JournalError, match="database or disk is full"):
            for n in range(200):
                h.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}", "ReplyTo": "web", "MsgId": f"m{n}",
                                "params": [["x", "y" * 4000]]})
                journal.save(h.comm.take_changes())
        assert not journal.db.in_transaction
        (disk / "filler").unlink()
        journal.probe(256 * 1024)  # writes again
        journal.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
