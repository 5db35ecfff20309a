"""Comm's journal is checkpointed by a thread of its own, never inside a commit on Comm's
thread (actors/comm/checkpointer.py), and its -wal stays bounded even when that thread does
not run."""

from __future__ import annotations

import os

from actors.comm import journal as journal_module
from actors.comm.journal import Changes, Journal
from actors.comm.journal_cli import wal_of

from ..helpers import wait_until

PAGE = 4096


def write_pages(journal: Journal, commits: int) -> None:
    """About a page of new rows a commit."""
    for n in range(commits):
        journal.save(Changes(seen=[(f"m{n}-{k}-" + "x" * 80, "t") for k in range(40)]))


def test_the_thread_copies_what_commits_wrote_into_the_file_while_the_writer_never_checkpoints(tmp_path):
    path = tmp_path / "journal.db"
    journal = Journal(path, checkpoints=True)
    try:
        before = os.path.getsize(path)
        write_pages(journal, 60)   # fewer pages than would make the writer checkpoint (256, or the backstop)
        wait_until(lambda: os.path.getsize(path) >= before + 50 * PAGE, what="the file to take the -wal's pages")
        assert journal.checkpointer.checkpoints > 0 and journal.checkpointer.failures == 0
    finally:
        journal.close()
    assert not journal.checkpointer.thread.is_alive()
    assert not wal_of(path).exists() or os.path.getsize(wal_of(path)) == 0   # closed with its checkpoint


def test_without_the_thread_those_pages_stay_in_the_wal(tmp_path):
    """What the test above tells apart: a writer of its own checkpoints nothing at 60 pages."""
    path = tmp_path / "journal.db"
    journal = Journal(path)
    try:
        before = os.path.getsize(path)
        write_pages(journal, 60)
        assert os.path.getsize(path) < before + 50 * PAGE   # nothing but the writer touches it
    finally:
        journal.close()


def test_without_its_thread_the_writer_checkpoints_past_the_backstop_and_the_wal_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_module, "BACKSTOP_PAGES", 32)
    path = tmp_path / "journal.db"
    journal = Journal(path, checkpoints=True)
    try:
        journal.checkpointer.stop()   # stuck, or gone: the writer's backstop must hold
        largest = 0
        for _ in range(30):
            write_pages(journal, 10)
            largest = max(largest, os.path.getsize(wal_of(path)))
        assert 0 < largest <= (32 + 16) * (PAGE + 24) + 32   # the backstop and a commit or so, never 300 pages
    finally:
        journal.close()


def test_a_checkpoint_that_does_not_end_leaves_the_journal_to_the_process_end_not_checkpointed(tmp_path, monkeypatch):
    """A hung checkpoint (a stalled disk): closing the writer would leave the thread's connection
    the last, and its close would checkpoint the -wal into the file, a damaged one too."""
    path = tmp_path / "journal.db"
    journal = Journal(path, checkpoints=True)
    write_pages(journal, 5)
    checkpointer = journal.checkpointer
    monkeypatch.setattr(checkpointer, "stop", lambda timeout=10.0: False)   # it never ends
    try:
        journal.close()
        assert os.path.getsize(wal_of(path)) > 0          # not checkpointed away on close
        assert journal.db.execute("SELECT count(*) FROM seen").fetchone()[0] == 5 * 40   # still open
    finally:
        type(checkpointer).stop(checkpointer)
        journal.db.close()
