"""A damaged journal, said and kept (issue 24, item 7), through the CLI and real processes.

Found: a half-truncated journal, or one with 4 KB overwritten: `mroute up` printed a
15-line traceback ending `database disk image is malformed`, naming neither comm.sqlite
nor a way out; `reset` and `up --fresh --yes` deleted it with no copy; damaged while
running, then Comm killed: 5 failed starts checkpointed and deleted the 1 MB -wal, and
`status` showed FATAL with an empty reason; a zero-byte journal started empty with no
word; `reset` on a file it could not remove was a raw PermissionError traceback; `backup`
exited 1 on one damage and 0 on another.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import uuid
from pathlib import Path

import orjson
import pytest
import yaml

from actors.comm.journal import Journal
from launch.supervisor.rundir import KEEP_DISCARDED, discard_journal
from launch import client as control_client

from ..harness import Harness
from ..helpers import MROUTE, base_topology, tagged_processes, wait_until

PAGE = 4096


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def a_journal(path: Path) -> None:
    """A journal as a Comm leaves it: agents, tasks (params enough for many pages), closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = Harness(agents=3)
    journal = Journal(path, clock=h.clock)
    h.login("a0", ready=False)
    for n in range(40):
        h.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}", "ReplyTo": "web", "MsgId": f"m{n}",
                        "params": [["note", "x" * 1500]]})
        journal.save(h.comm.take_changes())
    journal.close()
    assert path.stat().st_size >= 16 * PAGE


def truncated_to_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2 // PAGE * PAGE)


def overwritten_4k(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2 // PAGE * PAGE)
        f.write(os.urandom(PAGE))


DAMAGE = {"truncated": truncated_to_half, "overwritten": overwritten_4k}


def sqlite_says(path: Path) -> str:
    """SQLite's first words about a damaged file, on one line."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        words = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        words = str(exc)
    finally:
        db.close()
    assert words != "ok"
    return " ".join(words.split())


class Topo:
    """A topology file with its run directory; every mroute it runs is tagged, so that the
    test can check nothing it started outlived it."""

    def __init__(self, directory: Path, name: str, run_dir: Path | None = None):
        self.directory = directory
        self.tag = uuid.uuid4().hex
        spec = base_topology(name)
        if run_dir is not None:
            spec["run_dir"] = str(run_dir)
        (directory / "topology.yaml").write_text(yaml.safe_dump(spec))
        self.run_dir = run_dir or directory / ".mroute" / name
        self.journal = self.run_dir / "comm.sqlite"

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, MROUTE_TEST_TAG=self.tag)
        return subprocess.run([*MROUTE, *args], cwd=self.directory, capture_output=True, text=True,
                              timeout=timeout, env=env)

    def leftovers(self) -> list[int]:
        return tagged_processes(self.tag)

    def kept(self, kind: str) -> list[Path]:
        return sorted(p for p in self.run_dir.glob(f"comm.sqlite.{kind}-*") if not p.name.endswith(("-wal", "-shm")))


@pytest.fixture
def topo(tmp_path):
    made: list[Topo] = []

    def make(name: str = "journal", run_dir: Path | None = None) -> Topo:
        made.append(Topo(tmp_path, name, run_dir))
        return made[-1]
    yield make
    for t in made:
        t.run("down")
    assert not [pid for t in made for pid in t.leftovers()], "processes outlived the test"


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_up_on_a_damaged_journal_says_what_and_the_ways_out_changes_nothing_and_reset_keeps_it(topo, damage):
    t = topo()
    a_journal(t.journal)
    DAMAGE[damage](t.journal)
    before = digest(t.journal)

    up = t.run("up", "--for", "1")
    assert up.returncode != 0
    said = up.stdout + up.stderr
    assert "Traceback" not in said, said
    message = next(line for line in up.stderr.splitlines() if "failed to start" in line)
    for words in (str(t.journal), "is damaged (", sqlite_says(t.journal), "`mroute backup`", "`mroute reset`",
                  "comm.sqlite.damaged-<time>"):
        assert words in message, message
    assert up.stderr.count("is damaged (") == 1, up.stderr   # one message, said once
    # nothing was written to it, nor beside it: no -wal made, none replayed into it
    assert digest(t.journal) == before
    assert not Path(f"{t.journal}-wal").exists()

    reset = t.run("reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert not t.journal.exists()
    kept = t.kept("damaged")
    assert len(kept) == 1, f"no copy kept: {reset.stdout}"
    assert digest(kept[0]) == before and str(kept[0]) in reset.stdout
    started = t.run("up", "--for", "1", "--quiet", "--json")   # and it starts, empty
    assert started.returncode == 0, started.stderr


def test_up_fresh_keeps_a_copy_of_the_journal_it_sets_aside(topo):
    t = topo()
    a_journal(t.journal)
    before = digest(t.journal)
    fresh = t.run("up", "--fresh", "--yes", "--for", "1", "--quiet", "--json")
    assert fresh.returncode == 0, fresh.stderr
    kept = t.kept("discarded")
    assert len(kept) == 1, f"no copy kept: {fresh.stderr}"
    assert digest(kept[0]) == before and str(kept[0]) in fresh.stderr
    assert orjson.loads(fresh.stdout.splitlines()[-1])["tasks_waiting"] == 0   # it started empty


def test_only_the_newest_whole_copies_are_kept_and_every_damaged_one(tmp_path):
    run_dir = tmp_path / "run"
    for n in range(KEEP_DISCARDED + 2):
        a_journal(run_dir / "comm.sqlite")
        if n == 1:
            truncated_to_half(run_dir / "comm.sqlite")
        assert discard_journal(run_dir) is not None
    whole = sorted(p.name for p in run_dir.glob("comm.sqlite.discarded-*"))
    damaged = sorted(p.name for p in run_dir.glob("comm.sqlite.damaged-*"))
    assert len(whole) == KEEP_DISCARDED and len(damaged) == 1, (whole, damaged)
    assert discard_journal(run_dir) is None   # nothing left to set aside


def test_a_zero_byte_journal_starts_empty_and_says_so(topo):
    t = topo()
    t.run_dir.mkdir(parents=True)
    t.journal.write_bytes(b"")
    started = t.run("up", "--for", "1", "--quiet", "--json")
    assert started.returncode == 0, started.stderr
    log = (t.run_dir / "logs" / "comm.1.log").read_text()
    assert f"journal: {t.journal} is empty (0 bytes): starting with no agents and no tasks" in log


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_backup_refuses_a_journal_it_cannot_read_whole_and_writes_nothing(topo, tmp_path, damage):
    t = topo()
    a_journal(t.journal)
    good = t.run("backup", str(tmp_path / "good.sqlite"))
    assert good.returncode == 0, good.stderr
    copy = sqlite3.connect(tmp_path / "good.sqlite")
    assert copy.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    copy.close()

    DAMAGE[damage](t.journal)
    before = digest(t.journal)
    bad = t.run("backup", str(tmp_path / "bad.sqlite"))
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr and f"the journal {t.journal} is damaged (" in bad.stderr, bad.stderr
    assert not (tmp_path / "bad.sqlite").exists() and not (tmp_path / "bad.sqlite.partial").exists()
    assert digest(t.journal) == before and not Path(f"{t.journal}-wal").exists()


@pytest.fixture
def unwritable(tmp_path):
    """A run directory where nothing can be renamed or removed: a read-only tmpfs as root
    (who may rename in any directory), a directory without write permission otherwise."""
    run_dir = tmp_path / "ro"
    if os.geteuid() == 0:
        run_dir.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(run_dir)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        try:
            a_journal(run_dir / "comm.sqlite")
            subprocess.run(["mount", "-o", "remount,ro", str(run_dir)], check=True, capture_output=True)
            yield run_dir
        finally:
            subprocess.run(["umount", "-l", str(run_dir)], check=False)
    else:
        a_journal(run_dir / "comm.sqlite")
        run_dir.chmod(0o500)
        try:
            yield run_dir
        finally:
            run_dir.chmod(0o700)


def test_reset_of_a_journal_it_cannot_set_aside_says_which_file_and_why(topo, unwritable):
    t = topo("stuck", run_dir=unwritable)
    before = digest(t.journal)
    reset = t.run("reset", "--yes")
    assert reset.returncode != 0
    assert "Traceback" not in reset.stderr, reset.stderr
    assert f"cannot set the journal aside: {t.journal}: " in reset.stderr, reset.stderr
    assert ("Read-only file system" if os.geteuid() == 0 else "Permission denied") in reset.stderr
    assert digest(t.journal) == before


def comm_of(running) -> dict:
    return next(a for a in running.status()["actors"] if a["name"] == "comm.1")


def test_a_journal_damaged_while_comm_runs_is_never_written_by_its_restarts_and_status_says_why(
        start_topology):
    """Damaged under a running Comm, then Comm killed: every restart fails on it, and none
    writes to it or its -wal (the 1 MB -wal was checkpointed into the damaged file and deleted
    by the failed starts). The supervisor gives up (FATAL) and says why."""
    running = start_topology(base_topology("damaged", chat={"count": 1, "agents": 4, "rate": 40.0,
                                                            "handle": "uniform:0.1,0.3"}))
    journal, wal = running.topology.run_dir / "comm.sqlite", running.topology.run_dir / "comm.sqlite-wal"
    # a checkpoint has moved pages into the file, and the -wal holds later ones
    wait_until(lambda: journal.stat().st_size >= 16 * PAGE and wal.exists() and wal.stat().st_size > 0,
               timeout=30, what="a journal of some pages")
    comm = comm_of(running)
    os.kill(comm["pid"], signal.SIGSTOP)   # it writes nothing while its file is damaged
    try:
        os.truncate(journal, PAGE)
        check = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):   # damaged as SQLite sees it
            check.execute("PRAGMA quick_check").fetchall()
        check.close()
        before = (digest(journal), digest(wal))
    finally:
        os.kill(comm["pid"], signal.SIGKILL)

    wait_until(lambda: comm_of(running)["state"] == "FATAL", timeout=60, what="comm.1 FATAL")
    after = (digest(journal), digest(wal) if wal.exists() else "the -wal deleted")
    assert after == before   # five starts, nothing written
    fatal = comm_of(running)
    assert fatal["restarts"] >= 4 and f"the journal {journal} is damaged (" in fatal["reason"], fatal
    status = subprocess.run([*MROUTE, "status"], cwd=running.directory, capture_output=True, text=True, timeout=30,
                            env=dict(os.environ, COLUMNS="1000"))
    row = next(line for line in status.stdout.splitlines() if "comm.1" in line)
    assert "FATAL" in row and "is damaged (" in row, status.stdout
    stats = control_client.ask(running.topology, "status")   # and the rest goes on
    assert {a["name"]: a["state"] for a in stats["actors"]}["mre.1"] == "RUNNING"
