"""Time that cannot jump (issue 24, item 6): a task's time to live survives a restart as
time already waited, on the monotonic clock, whatever the wall clock did meanwhile.

Found: the wall clock stepped +1 h (faketime), then Comm restarted: all 106 queued tasks
expired NO_AGENT_AVAILABLE at once, after under 30 s of a 300 s TTL, because the journal
kept wall-clock instants. Here with the clocks injected (the journal's `clock`, `wall` and
`boot`, from the harness's fake clock); with real processes under libfaketime:
tests/processes/test_journal_time.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from actors.comm.journal import SCHEMA_VERSION, Journal
from actors.comm.journal_time import CLOCK_EVERY
from actors.comm.storage import Storage
from wire import states as S

from ..fakeclock import WALL_START
from ..harness import Harness

TTL = 300.0  # the harness's queues
BASE_WALL = WALL_START  # the harness's wall clock when its monotonic one reads 0; h.step_wall() steps it


def restart(h: Harness, journal: Journal) -> None:
    """Comm dies and starts again from `journal`, as server.py does."""
    h.comm.tasks.timers.cancel_all()  # the dead process's timers die with it
    h.comm = h.new_comm(saved=journal.load(), stream="s2")
    h.comm.resume()
    h.pump()


def queued(h: Harness, n: int) -> list[str]:
    return [h.task(client=f"c{i}") for i in range(n)]


def waits(h: Harness, tasks: list[str]) -> list[float]:
    return [h.comm.tasks.waited(h.comm.tasks.live[task]) for task in tasks]


@pytest.mark.parametrize("step", [+3600.0, -3600.0])
def test_a_wall_clock_step_then_a_restart_expires_nothing_early_and_extends_nothing(tmp_path, step):
    h = Harness(agents=2)  # nobody logged in: the tasks wait
    wall = h.wall
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=wall, boot="boot-1")
    tasks = queued(h, 5)
    h.advance(20.0)
    journal.save(h.comm.take_changes())
    journal.close()

    h.step_wall(step)   # the wall clock jumps while Comm is down
    h.advance(5.0)        # down 5 s, on the same boot: that counts as waiting
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=wall, boot="boot-1")
    restart(h, journal)
    assert [h.comm.tasks.live[t].state for t in tasks] == [S.QUEUED] * 5, "expired early"
    assert waits(h, tasks) == [25.0] * 5   # neither an hour more nor an hour less

    h.advance(TTL - 25.0 - 0.5)
    assert all(h.comm.tasks.live[t].state == S.QUEUED for t in tasks)
    h.advance(1.0)        # the time to live ends when it should, not an hour late
    assert all(t not in h.comm.tasks.live for t in tasks)
    assert len(h.published_of("TaskState", State=S.CLOSED, Code=S.NO_AGENT_AVAILABLE)) == 5
    journal.close()


def test_on_another_boot_time_stands_still_from_the_last_reading_of_the_clock(tmp_path):
    """The monotonic clock starts again at a reboot (or on another machine): the time between
    says nothing. The waits go on from the journal's last reading of the clock, which an idle
    Comm keeps fresh (Storage writes one every CLOCK_EVERY when nothing else is written)."""
    h = Harness(agents=2)
    storage = Storage(Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=h.wall, boot="boot-1"), clock=h.clock)
    tasks = queued(h, 3)
    assert storage.write(h.comm.take_changes())
    for _ in range(40):   # idle: 40 s of turns with nothing to journal
        h.advance(0.5)
        assert storage.write(h.comm.take_changes())
    storage.journal.close()

    h.now = 7.0   # a new boot: its clock started again, and it is 7 s in
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=h.wall, boot="boot-2")
    restart(h, journal)
    for waited in waits(h, tasks):
        assert 20.0 - CLOCK_EVERY <= waited <= 20.0   # what was waited, not the reboot nor the new clock
    journal.close()


def test_a_clock_that_went_back_on_the_same_boot_is_taken_for_another(tmp_path):
    """Instants from a clock ahead of ours cannot be ours (a restored journal, a faked
    clock): they are moved as on another boot, never left in our future."""
    h = Harness(agents=2)
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=h.wall, boot="boot-1")
    h.advance(1000.0)
    tasks = queued(h, 2)
    h.advance(10.0)
    journal.save(h.comm.take_changes())
    journal.close()
    h.now = 50.0
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=h.wall, boot="boot-1")
    restart(h, journal)
    assert waits(h, tasks) == [10.0, 10.0]
    journal.close()


def as_version_2(path: Path, wall_of) -> None:
    """Rewrite a journal as version 2 kept it: times on the wall clock, no clock reading."""
    db = sqlite3.connect(path, isolation_level=None)
    for table, key in (("tasks", "task_id"), ("closed", "rowid")):
        for row, data in db.execute(f"SELECT {key}, data FROM {table}").fetchall():
            task = orjson.loads(data)
            for field in ("created", "queued_since"):
                task[field] = None if task[field] is None else wall_of(task[field])
            db.execute(f"UPDATE {table} SET data = ? WHERE {key} = ?", (orjson.dumps(task), row))
    db.execute("DELETE FROM meta WHERE key IN ('boot', 'clock')")
    db.execute("PRAGMA user_version = 2")
    db.close()


def test_a_version_2_journal_is_read_as_it_was_once_then_no_step_moves_it(tmp_path):
    h = Harness(agents=2)
    wall = h.wall
    path = tmp_path / "comm.sqlite"
    journal = Journal(path, clock=h.clock, wall=wall, boot="boot-1")
    h.login("a0", ready=False)
    tasks = queued(h, 3)
    h.send("TaskState", {"TaskId": tasks[0], "State": S.CLOSED, "Code": S.CANCELLED, "ReplyTo": "web"})
    h.advance(30.0)
    journal.save(h.comm.take_changes())
    journal.close()
    as_version_2(path, lambda at: BASE_WALL + at)

    journal = Journal(path, clock=h.clock, wall=wall, boot="boot-1")   # no step yet: as version 2 read it
    assert journal.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    restart(h, journal)
    assert waits(h, tasks[1:]) == [30.0, 30.0]
    assert "a0" in h.comm.agents.sessions and tasks[0] in h.comm.tasks.closed
    journal.close()

    h.step_wall(3600.0)   # from now on the wall clock is nothing to the journal
    journal = Journal(path, clock=h.clock, wall=wall, boot="boot-1")
    restart(h, journal)
    assert waits(h, tasks[1:]) == [30.0, 30.0]
    journal.close()
