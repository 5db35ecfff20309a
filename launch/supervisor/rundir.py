"""The supervisor's side of the run directory (zeromq-rules 3, 5): its lock, its state file
and the topology the actors read (`RunFiles`: written again later when a write fails), and
what a topology started afresh clears. Where files live: wire/rundir.py."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import orjson

from wire.kernel.rundir import JOURNAL_COMPANIONS, LOCK, STATE, journal_files

log = logging.getLogger("mroute.supervisor")

RETRY_EVERY = 1.0        # seconds between attempts at a file that could not be written
LOG_AGAIN_AFTER = 60.0   # seconds between lines about files still not written
KEEP_DISCARDED = 3       # journals set aside whole by `reset` and `up --fresh` that are kept


class AlreadyRunning(Exception):
    pass


PROBE_WAIT = 0.5   # seconds a start waits for the lock: is_locked() (any CLI verb) holds it a moment


def lock(run_dir: Path, name: str) -> int:
    """Own the run directory: an exclusive lock held for the supervisor's life. Raises
    AlreadyRunning, naming who holds it, when another process does (a second bind of the
    same ipc path would silently steal a live supervisor's sockets)."""
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + PROBE_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise AlreadyRunning(running_already(run_dir, name))
            time.sleep(0.01)   # a probe's hold lasts microseconds; a supervisor's, its life
    os.set_inheritable(fd, False)
    return fd


def running_already(run_dir: Path, name: str) -> str:
    """Why a topology cannot start here: who holds the lock, from the kernel's own list of
    locks (state.json may not be written yet, or be a dead supervisor's: issue 25 saw
    "supervisor pid None"). A flock dies with its holder, so a held lock is never stale."""
    where = f"run directory {run_dir}"
    holders = lock_holders(run_dir / LOCK)
    if not holders:   # let go since, or /proc/locks unreadable
        owner = read_state(run_dir).get("supervisor", {}).get("pid")
        if owner:
            return f"topology {name!r} is running already (supervisor pid {owner}, {where}): `mroute down` first"
        return f"topology {name!r}: another process held its lock ({run_dir / 'lock'}) and has let go: start again"
    pid = holders[0]
    command = command_line(pid)
    if is_supervisor(command):
        return f"topology {name!r} is running already (supervisor pid {pid}: {command}; {where}): `mroute down` first"
    return (f"topology {name!r} cannot start: its lock {run_dir / 'lock'} is held by pid {pid} "
            f"({command or 'command line unknown'}), which is not an mroute supervisor: end that process "
            f"(kill {pid}), then start again")


def lock_holders(path: Path) -> list[int]:
    """The pids holding a flock on `path`, from /proc/locks (Linux): lines such as
    `2: FLOCK  ADVISORY  WRITE 8262 fe:00:2230530 0 EOF` (device:inode; a process waiting
    for the lock has `->` there). Matched by inode, then kept if the process has the file
    open (the device numbers there are not always those stat() gives)."""
    try:
        st = os.stat(path)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids = [int(f[4]) for f in (line.split() for line in lines)
            if len(f) > 5 and f[1] == "FLOCK" and f[4].isdigit() and f[5].rpartition(":")[2] == str(st.st_ino)]
    return [pid for pid in pids if has_open(pid, st)] or pids


def has_open(pid: int, st: os.stat_result) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (target.st_dev, target.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


def command_line(pid: int) -> str:
    try:
        return " ".join(part.decode(errors="replace") for part in
                        Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part)
    except OSError:
        return ""


def is_supervisor(command: str) -> bool:
    """`mroute up ...`, `python -m launch.cli up ...` (a detached supervisor, a test's)."""
    words = command.split()
    return any(w.endswith(("mroute", "launch.cli")) for w in words) and "up" in words


def clear_leftovers(run_dir: Path, sock_dir: Path) -> None:
    """What an earlier run left that must not outlive it: its surviving actors and its ipc
    sockets. Comm's journal stays: the topology carries on from it, however the last run
    ended (`discard_journal` is for `up --fresh` and `reset`)."""
    kill_survivors(run_dir)
    for stale in sock_dir.glob("*.ipc"):
        stale.unlink()


class JournalNotDiscarded(Exception):
    """The journal could not be set aside: the message names the file and why; the journal
    is where it was."""


def discard_journal(run_dir: Path) -> Path | None:
    """Set Comm's journal aside (`reset`, `up --fresh`): renamed with its -wal and -shm,
    never deleted, beside itself as comm.sqlite.damaged-<time> when it cannot be read, else
    comm.sqlite.discarded-<time>, of which the newest KEEP_DISCARDED are kept. Returns the
    copy (None: there was no journal). Raises JournalNotDiscarded."""
    path, *companions = journal_files(run_dir)
    if not any(f.exists() for f in (path, *companions)):
        return None
    kind = "damaged" if "unreadable" in journal_summary(path) else "discarded"
    kept = path.with_name(f"{path.name}.{kind}-{time.strftime('%Y%m%dT%H%M%S')}")
    n = 1
    while any(Path(f"{kept}{suffix}").exists() for suffix in ("", *JOURNAL_COMPANIONS)):
        n += 1
        kept = kept.with_name(f"{path.name}.{kind}-{time.strftime('%Y%m%dT%H%M%S')}.{n}")
    moved: list[tuple[Path, Path]] = []
    # The companions first: a -wal left beside a new, empty journal would be replayed into it.
    for source in (*companions, path):
        if not source.exists():
            continue
        target = Path(f"{kept}{source.name[len(path.name):]}")
        try:
            source.rename(target)
        except OSError as exc:
            for back, there in reversed(moved):
                try:
                    there.rename(back)
                except OSError:
                    log.error("cannot put %s back as %s", there, back)
            raise JournalNotDiscarded(f"cannot set the journal aside: {source}: {exc.strerror or exc}; "
                                      "nothing was discarded") from exc
        moved.append((source, target))
    prune_discarded(path)
    return kept


def prune_discarded(path: Path) -> None:
    """The journals set aside whole are kept, KEEP_DISCARDED of them, the newest (their
    names sort by time); damaged ones are evidence, all kept."""
    prefix = f"{path.name}.discarded-"

    def when(copy: Path) -> tuple[str, int]:  # <time>, or <time>.<n> for the n-th in one second
        stamp, _, n = copy.name[len(prefix):].partition(".")
        return stamp, int(n) if n.isdigit() else 1
    copies = sorted((c for c in path.parent.glob(f"{prefix}*") if not c.name.endswith(JOURNAL_COMPANIONS)),
                    key=when)
    for old in copies[:-KEEP_DISCARDED]:
        for suffix in ("", *JOURNAL_COMPANIONS):
            try:
                Path(f"{old}{suffix}").unlink(missing_ok=True)
            except OSError as exc:  # a copy too many is no reason to refuse a reset
                log.warning("cannot remove %s%s: %s", old, suffix, exc.strerror or exc)


def journal_summary(path: Path) -> dict[str, Any]:
    """What a journal file holds (epoch, agents logged in, live tasks), read by Comm's own
    code in a process of its own; {"exists": True, "unreadable": reason} when it cannot be."""
    if not path.exists():
        return {"exists": False, "agents_logged_in": 0, "live_tasks": 0}
    done = subprocess.run([sys.executable, "-m", "actors", "journal", "summary", str(path)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return {"exists": True, "unreadable": done.stderr.strip() or f"exit status {done.returncode}"}
    return orjson.loads(done.stdout)



def write_atomically(path: Path, data: bytes) -> None:
    """Whole or not at all: a reader (an actor starting, `down`) never sees half a file.
    A failed write leaves the old file, and no half-written copy taking space."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")   # writers of one file never share a copy
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


class RunFiles:
    """The supervisor's files in the run directory (state.json, topology.json). A write that
    fails (a full disk) is tried again every RETRY_EVERY seconds with the content of that
    moment, never raised: the supervisor owns the topology, and one file is never worth
    losing it (issue 14: an ENOSPC on state.json ended it, and every actor with it)."""

    def __init__(self, run_dir: Path, call_later: Callable[..., Any]):
        self.run_dir = run_dir
        self.call_later = call_later
        self.pending: dict[str, Callable[[], bytes]] = {}   # file -> what it should hold now
        self.retry: Any = None
        self.failures = 0
        self.last_error = ""
        self.logged_at = 0.0

    def write(self, name: str, content: Callable[[], bytes]) -> bool:
        """Write `name` now if possible (True), else later, with what `content()` says then."""
        self.pending[name] = content
        self.write_pending()
        return name not in self.pending

    def again(self) -> None:
        self.retry = None
        self.write_pending()

    def write_pending(self) -> None:
        for name, content in list(self.pending.items()):
            try:
                write_atomically(self.run_dir / name, content())
            except OSError as exc:
                self.failures += 1
                self.last_error = f"{name}: {exc.strerror or exc}"
                now = time.monotonic()
                if now - self.logged_at >= LOG_AGAIN_AFTER:  # rare: our stderr may be a pipe nobody reads
                    self.logged_at = now
                    log.warning("cannot write %s (%s): trying again every %g s", name, exc, RETRY_EVERY)
                continue
            del self.pending[name]
        if self.pending and self.retry is None:
            self.retry = self.call_later(RETRY_EVERY, self.again)

    def stats(self) -> dict[str, Any]:
        return {"file_write_failures": self.failures, "files_unwritten": sorted(self.pending),
                "last_write_error": self.last_error}


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        return orjson.loads((run_dir / STATE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}


def is_locked(run_dir: Path) -> bool:
    """Whether a live supervisor holds the run directory."""
    try:
        fd = os.open(run_dir / LOCK, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def kill_survivors(run_dir: Path) -> list[int]:
    """KILL the process groups of actors named in a state file whose supervisor is gone
    (zeromq-rules 3: `down` also ends survivors). Returns the pids it signalled."""
    killed = []
    for actor in read_state(run_dir).get("actors", []):
        pid = actor.get("pid")
        if pid and _is_our_actor(pid, run_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def _is_our_actor(pid: int, run_dir: Path) -> bool:
    """A pid from an old state file may have been reused: check it is still our actor."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"actors" in cmdline and str(run_dir).encode() in cmdline
