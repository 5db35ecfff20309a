"""Time that cannot jump (issue 24, item 6): a task's time to live survives a restart as
time already waited, on the monotonic clock, whatever the wall clock did meanwhile.

Found: the wall clock stepped +1 h (faketime), then Comm restarted: all 106 queued tasks
expired NO_AGENT_AVAILABLE at once, after under 30 s of a 300 s TTL, because the journal
kept wall-clock instants. Here first with the clocks injected (the journal's `clock`,
`wall` and `boot`), then with real processes under libfaketime.
"""

from __future__ import annotations

import glob
import os
import signal
import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from actors.comm.journal import SCHEMA_VERSION, Journal
from actors.comm.journal_time import CLOCK_EVERY
from actors.comm.storage import Storage
from launch import client as control_client
from wire import states as S

from .harness import Harness
from .helpers import base_topology, wait_until

TTL = 300.0  # the harness's queues
BASE_WALL = 1_700_000_000.0


class Wall:
    """A wall clock that an operator (or NTP) steps."""

    def __init__(self, h: Harness):
        self.h, self.offset = h, BASE_WALL

    def __call__(self) -> float:
        return self.offset + self.h.now


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
    wall = Wall(h)
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=wall, boot="boot-1")
    tasks = queued(h, 5)
    h.advance(20.0)
    journal.save(h.comm.take_changes())
    journal.close()

    wall.offset += step   # the wall clock jumps while Comm is down
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
    storage = Storage(Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=Wall(h), boot="boot-1"), clock=h.clock)
    tasks = queued(h, 3)
    assert storage.write(h.comm.take_changes())
    for _ in range(40):   # idle: 40 s of turns with nothing to journal
        h.advance(0.5)
        assert storage.write(h.comm.take_changes())
    storage.journal.close()

    h.now = 7.0   # a new boot: its clock started again, and it is 7 s in
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=Wall(h), boot="boot-2")
    restart(h, journal)
    for waited in waits(h, tasks):
        assert 20.0 - CLOCK_EVERY <= waited <= 20.0   # what was waited, not the reboot nor the new clock
    journal.close()


def test_a_clock_that_went_back_on_the_same_boot_is_taken_for_another(tmp_path):
    """Instants from a clock ahead of ours cannot be ours (a restored journal, a faked
    clock): they are moved as on another boot, never left in our future."""
    h = Harness(agents=2)
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=Wall(h), boot="boot-1")
    h.advance(1000.0)
    tasks = queued(h, 2)
    h.advance(10.0)
    journal.save(h.comm.take_changes())
    journal.close()
    h.now = 50.0
    journal = Journal(tmp_path / "comm.sqlite", clock=h.clock, wall=Wall(h), boot="boot-1")
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
    wall = Wall(h)
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

    wall.offset += 3600.0   # from now on the wall clock is nothing to the journal
    journal = Journal(path, clock=h.clock, wall=wall, boot="boot-1")
    restart(h, journal)
    assert waits(h, tasks[1:]) == [30.0, 30.0]
    journal.close()


# --- real processes, the wall clock stepped by libfaketime -----------------------------------

LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)  # Debian's faketime


def step_to(stamp: Path, offset: str) -> None:
    """What every process's wall clock reads from now on: whole, never a half-written file."""
    partial = stamp.with_name(stamp.name + ".tmp")
    partial.write_text(f"{offset}\n")
    partial.replace(stamp)


def comm_queue(running) -> dict:
    stats = control_client.ask(running.topology, "stats")["actors"]["comm.1"]
    return stats["queues"]["chat-default"]


@pytest.mark.skipif(LIBFAKETIME is None, reason="libfaketime is not installed (Debian package faketime)")
@pytest.mark.parametrize("step", ["+1h", "-1h"])
def test_a_wall_clock_step_then_comm_killed_expires_nothing_early_in_real_processes(
        tmp_path, monkeypatch, start_topology, chat_client, step):
    """Every process of the topology reads a wall clock the test steps (as `date -s` or NTP
    would step the machine's); the monotonic clock is left alone, as a step leaves it."""
    stamp = tmp_path / "faketime"
    step_to(stamp, "+0")
    for key, value in {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(stamp), "FAKETIME_NO_CACHE": "1",
                       "FAKETIME_DONT_FAKE_MONOTONIC": "1"}.items():
        monkeypatch.setenv(key, value)
    spec = base_topology("clockstep")
    spec["queues"] = {"chat-default": {"mrd": "chat", "policy": "LONGEST_AVAILABLE", "offer_timeout": 15,
                                       "ttl": 300, "steps": [{"expr": "true", "timeout": 30}]}}
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "desk")
    desk.handshake()
    tasks = []
    for n in range(5):   # nobody logged in: they wait
        msg_id = desk.send("Task", {"Mrd": "chat", "ClientUniqueId": f"customer{n}"})
        tasks.append(desk.expect("TaskState", MsgId=msg_id, State="QUEUED")["TaskId"])
    wait_until(lambda: comm_queue(running)["oldest_wait_s"] > 0, what="a wait Comm can measure")
    before_asked = time.monotonic()
    waited_before = comm_queue(running)["oldest_wait_s"]

    step_to(stamp, step)   # the machine's wall clock jumps an hour
    comm = next(a for a in running.status()["actors"] if a["name"] == "comm.1")
    os.kill(comm["pid"], signal.SIGKILL)

    def restarted():
        now = next(a for a in running.status()["actors"] if a["name"] == "comm.1")
        return now["state"] == "RUNNING" and now["pid"] not in (None, comm["pid"])
    wait_until(restarted, timeout=15, what="comm.1 restarted")
    running.remember_pids()
    desk.handshake()
    for task in tasks:
        msg_id = desk.send("GetTaskState", {"TaskId": task})
        answer = desk.expect("TaskState", MsgId=msg_id)
        assert answer["State"] == "QUEUED", f"{task} after a {step} step: {answer}"
    queue = comm_queue(running)
    waited_after = queue["oldest_wait_s"]
    asked_again = time.monotonic()
    assert queue["waiting"] == 5
    # what was waited still counts, and no more than the time that really went by (the
    # downtime included: same machine, same monotonic clock); 1 ms: Comm rounds to it
    assert waited_before <= waited_after <= waited_before + (asked_again - before_asked) + 0.001
