"""Storage faults degrade, never kill (issue 14): the journal's failure path, Comm's rules
while it cannot write, the supervisor's log files and run files, the refusal log budget.
The multi-process test on a full disk is tests/processes/test_disk_full.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from actors.comm.journal import Journal, JournalError
from actors.comm.storage import Storage
from actors.lograte import LogBudget
from launch.logs import show_logs
from launch.supervisor.logfile import LogFile
from launch.supervisor.rundir import RunFiles
from launch.topology import TopologyError, load
from wire import states as S
from wire.codec import WireError

from ..fakeclock import FakeClock
from ..harness import Harness

FULL = "journal write failed: database or disk is full"


def without_decisions(snapshot: dict) -> dict:
    """A snapshot without the stream it names for the MRE's decisions, new in each."""
    return {k: v for k, v in snapshot.items() if k != "Decisions"}


def limit_pages(journal: Journal, extra: int) -> None:
    """A database that may grow by `extra` pages only: SQLite's own 'database or disk is full'."""
    pages = journal.db.execute("PRAGMA page_count").fetchone()[0]
    journal.db.execute(f"PRAGMA max_page_count = {pages + extra}")


def test_a_journal_write_that_fails_raises_journal_error_and_leaves_the_last_save(tmp_path):
    h = Harness(agents=3)
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock)
    h.login("a0")
    journal.save(h.comm.take_changes())
    limit_pages(journal, 0)
    for n in range(50):  # tasks, handled MsgIds and closed ones: the database must grow
        h.send("Task", {"Mrd": "chat", "ClientUniqueId": f"c{n}", "ReplyTo": "web", "MsgId": f"m{n}",
                        "params": [["x", "y" * 2000]]})
    with pytest.raises(JournalError, match="database or disk is full"):
        journal.save(h.comm.take_changes())
    assert not journal.db.in_transaction  # rolled back, and no "cannot rollback" on the way
    saved = journal.load()
    assert saved is not None and saved.tasks == {} and "a0" in saved.sessions  # as the last save left it
    journal.db.execute("PRAGMA max_page_count = 1073741823")
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "after", "ReplyTo": "web", "MsgId": "m-after"})
    journal.save(h.comm.take_changes())  # writes again, the same connection
    assert "web\x00m-after" in journal.load().seen   # a MsgId is remembered with its sender
    journal.close()


def test_storage_is_degraded_from_a_failed_write_until_a_probe_goes_through(tmp_path):
    h = Harness(agents=3)
    storage = Storage(Journal(tmp_path / "comm.sqlite", clock=h.clock), clock=h.clock)
    h.login("a0")
    assert storage.write(h.comm.take_changes()) and storage.reason == ""
    limit_pages(storage.journal, 2)  # room for a change or two, not for a probe of 256 KB
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "ReplyTo": "web", "MsgId": "m1",
                    "params": [["x", "y" * 15000]]})  # under comm.max_params_bytes
    assert not storage.write(h.comm.take_changes())
    assert storage.reason == FULL
    h.advance(5.0)
    assert not storage.probe() and storage.reason == FULL
    storage.journal.db.execute("PRAGMA max_page_count = 1073741823")
    assert storage.probe() and storage.reason == ""
    stats = storage.stats()
    assert (stats["journal_write_failures"], stats["journal_probes_failed"], stats["degraded_episodes"]) == (1, 1, 1)
    assert stats["degraded_s"] == 5.0 and stats["degraded"] == ""
    assert "probe" not in dict(storage.journal.db.execute("SELECT key, value FROM meta"))
    storage.journal.close()


def test_a_read_only_journal_degrades_like_a_full_one_and_recovers_by_itself(tmp_path):
    """SQLite's own read-only refusal (SQLITE_READONLY), the connection made read-only as a
    remount would make the file: no real remount here, Linux refuses one while Comm holds the
    file open for writing."""
    h = Harness(agents=3)
    storage = Storage(Journal(tmp_path / "comm.sqlite", clock=h.clock), clock=h.clock)
    h.login("a0")
    assert storage.write(h.comm.take_changes())
    storage.journal.db.execute("PRAGMA query_only = ON")
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "ReplyTo": "web", "MsgId": "m1"})
    assert not storage.write(h.comm.take_changes())
    assert storage.reason == "journal write failed: attempt to write a readonly database"
    assert not storage.journal.db.in_transaction
    h.advance(2.0)
    assert not storage.probe()
    storage.journal.db.execute("PRAGMA query_only = OFF")
    assert storage.probe() and storage.reason == ""
    assert storage.stats()["journal_probes_failed"] == 1
    saved = storage.journal.load()
    assert saved is not None and saved.tasks == {} and "a0" in saved.sessions  # the refused change is not in it
    storage.journal.close()


def degraded(h: Harness) -> Harness:
    h.journal_fault = FULL
    return h


def error_to(h: Harness, msg_id: str) -> dict:
    return next(b for _, t, b in reversed(h.published) if t == "Error" and b.get("MsgId") == msg_id)


def test_while_the_journal_cannot_write_changes_are_refused_unavailable_and_queries_answered():
    h = Harness(agents=3)
    h.login("a0", ready=False)
    task = h.task(client="before")
    h.send("Heartbeat", {"Destination": "desk-a0"})
    h.comm.take_changes()  # journaled, as every wake-up's are
    degraded(h)
    before = (without_decisions(h.comm.snapshot()), dict(h.comm.ledger.seen), set(h.comm.desks.watched))
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "ReplyTo": "web", "MsgId": "t1"})
    assert error_to(h, "t1") == {"Code": S.UNAVAILABLE, "Type": "Task", "MsgId": "t1", "Seq": 2, "Stream": "s1",
                                 "Reason": f"{FULL}; nothing was changed, try again later"}
    h.send("AgentState", {"AgentId": "a0", "State": S.READY, "Mrd": "chat", "MsgId": "s1"})
    assert error_to(h, "s1")["Code"] == S.UNAVAILABLE
    h.send("Heartbeat", {"Destination": "desk-new", "MsgId": "hb-new"})  # its first beat would be a change
    assert error_to(h, "hb-new")["Code"] == S.UNAVAILABLE
    # queries: from what is held, which is what was journaled
    h.send("GetAgentState", {"AgentId": "a0", "Mrd": "chat", "MsgId": "q1"})
    assert h.published_of("AgentState", MsgId="q1")[0]["State"] == S.NOT_READY
    h.send("GetTaskState", {"TaskId": task, "MsgId": "q2", "ReplyTo": "web"})
    assert h.published_of("TaskState", MsgId="q2")[0]["State"] == S.QUEUED
    h.send("Heartbeat", {"Destination": "desk-a0", "MsgId": "hb"})
    assert h.published_of("Ack", MsgId="hb")
    h.send("Resync", {"Destination": "web", "TaskIds": [task], "MsgId": "r1"})
    assert h.published_of("Snapshot", MsgId="r1")[0]["Tasks"][0]["TaskId"] == task
    # the MRE's decisions and the operator's verbs wait too
    h.comm.reports["TaskAgentSelected"]({"TaskId": task, "AgentId": "a0", "MRD": "chat", "Seq": 1, "Stream": "x"})
    with pytest.raises(WireError) as refused:
        h.comm.operator.flush({"task": task})
    assert refused.value.code == S.UNAVAILABLE
    assert (without_decisions(h.comm.snapshot()), dict(h.comm.ledger.seen), set(h.comm.desks.watched)) == before
    assert not h.comm.take_changes()  # nothing to journal: nothing changed
    assert (h.comm.stats()["refused_unavailable"], h.comm.stats()["deferred_unavailable"]) == (4, 1)
    h.journal_fault = ""  # it writes again: the same request goes through
    h.send("Task", {"Mrd": "chat", "ClientUniqueId": "c", "ReplyTo": "web", "MsgId": "t1"})
    assert h.published_of("TaskState", MsgId="t1")[0]["State"] == S.QUEUED


def test_a_core_reloaded_from_the_journal_holds_what_was_journaled_and_nothing_after(tmp_path):
    """What turn.py's `revert` does when a commit fails: the turn's changes are gone, the
    journaled state is the journal's, and what lives as long as the process stays."""
    h = Harness(agents=3)
    storage = Storage(Journal(tmp_path / "comm.sqlite", clock=h.clock), clock=h.clock)
    h.login("a0", ready=False)
    kept = h.task(client="kept")
    assert storage.write(h.comm.take_changes())
    limit_pages(storage.journal, 0)
    h.send("AgentState", {"AgentId": "a0", "State": S.READY, "Mrd": "chat", "MsgId": "undone"})
    h.task(client="undone", filler="y" * 15000)
    assert not storage.write(h.comm.take_changes())
    counted, duplicates = h.comm.stats()["tasks_created"], h.comm.ledger.duplicates
    waits = h.comm.tasks.queue_wait.to_json()
    h.comm.reload(storage.load(), "s2")
    assert h.comm.out.stream == "s2" and not h.comm.out.seqs   # numbered afresh
    assert h.comm.ledger.duplicates == duplicates and h.comm.tasks.queue_wait.to_json() == waits  # the process's
    assert list(h.comm.tasks.live) == [kept] and h.state("a0") == S.NOT_READY
    assert "undone" not in h.comm.ledger.seen
    assert not h.comm.take_changes()  # the meta row too is as the journal has it
    # The tasks' counters are the journal's, as the tasks are (issue 25, 3: they kept the
    # undone task, and tasks_created ended one above closed + live)
    stats = h.comm.stats()
    assert counted == 2 and stats["tasks_created"] == 1 == stats["tasks_closed"] + stats["tasks_live"]
    storage.journal.close()


def test_a_log_file_rotates_at_its_size_and_keeps_as_many_as_asked(tmp_path):
    log = LogFile(tmp_path / "comm.1.log", max_bytes=1000, keep=2)
    for n in range(100):
        log.write(b"line %03d %s\n" % (n, b"x" * 90))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["comm.1.log", "comm.1.log.1", "comm.1.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert (tmp_path / "comm.1.log").read_bytes().splitlines()[-1].startswith(b"line 099")
    assert (tmp_path / "comm.1.log.1").read_bytes().endswith(b"\n")  # rotated between lines
    assert log.rotations > 2 and log.dropped_bytes == 0
    log.close()


def test_logs_reads_the_last_lines_across_a_rotation(tmp_path):
    (tmp_path / "logs").mkdir()
    log = LogFile(tmp_path / "logs" / "comm.1.log", max_bytes=4096, keep=1)
    for n in range(60):
        log.write(b"line %02d %s\n" % (n, b"x" * 90))
    log.close()
    assert (tmp_path / "logs" / "comm.1.log.1").exists()
    shown: list[str] = []
    show_logs(SimpleNamespace(run_dir=tmp_path), None, 45, False, lambda name, line: shown.append(line))
    assert [line[:7] for line in shown] == [f"line {n:02d}" for n in range(15, 60)]


def test_a_log_write_that_fails_is_dropped_and_counted_never_raised():
    log = LogFile(Path("/dev/full"), max_bytes=1000, keep=2)  # every write: ENOSPC
    log.write(b"a line\n")
    log.write(b"another\n")
    assert (log.dropped_bytes, log.failures) == (15, 2) and "No space left" in log.last_error
    log.close()


def test_the_supervisors_run_files_are_written_again_later_when_a_write_fails(tmp_path):
    timers: list = []
    files = RunFiles(tmp_path / "gone", lambda delay, fn: timers.append(fn))
    content = {"n": 1}
    assert not files.write("state.json", lambda: b'{"n": %d}' % content["n"])
    assert files.stats()["files_unwritten"] == ["state.json"] and len(timers) == 1
    (tmp_path / "gone").mkdir()
    content["n"] = 2
    timers.pop()()
    assert (tmp_path / "gone" / "state.json").read_bytes() == b'{"n": 2}'  # what it says then
    assert files.stats()["files_unwritten"] == [] and not timers and files.failures == 1


def test_log_rotation_keys_are_checked_like_the_other_supervisor_keys(tmp_path):
    path = tmp_path / "topology.yaml"
    base = "name: t\nmrds: {chat: {max_tasks: 1}}\nagents: [{id: a, password: p}]\nactors: {comm: {role: comm}}\n"
    path.write_text(base + "supervisor: {log_max_bytes: 65536, log_keep: 0}\n")
    assert (load(path).supervisor["log_max_bytes"], load(path).supervisor["log_keep"]) == (65536, 0)
    for bad in ("log_max_bytes: 10", "log_keep: -1", "log_keep: 1.5"):
        path.write_text(base + f"supervisor: {{{bad}}}\n")
        with pytest.raises(TopologyError, match=f"supervisor.{bad.split(':')[0]}"):
            load(path)


def test_a_log_budget_writes_a_burst_then_counts():
    time = FakeClock()
    budget = LogBudget(burst=3, window=10.0, clock=time.clock)
    assert [budget.take() for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    time.at(10.0)
    assert budget.take() == (True, 2)  # the next line says how many were not written
    assert budget.unlogged_total == 2


def test_sqlite_says_full_as_we_expect():
    """What limit_pages relies on: SQLite's own error text for a full database."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v BLOB)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        db.execute("INSERT INTO t VALUES (?)", (bytes(100_000),))
