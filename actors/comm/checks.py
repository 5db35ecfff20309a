"""Passwords checked off Comm's loop, and the requests that wait for them.

A password is checked with PBKDF2, about 5 ms of CPU. On the loop, 300 wrong passwords in a
burst stalled Comm 1.48 s: about 200 guesses a second saturated it for every client. So a
`Connect` or `Login` whose password was never checked waits here while a thread checks it
(hashlib releases the GIL: the loop goes on serving everyone else), then runs as if it had
just arrived, its answer coming from the verdict remembered (wire/passwords.py `known`).
What its desk sends meanwhile waits behind it, in order: a Login must not overtake the
Connect before it. Other desks never wait.

Bounds: at most MAX_CHECKS passwords waiting to be checked and MAX_WAITING requests waiting
for them (one desk at most MAX_PER_DESK), past which a request is refused OVERLOADED; an
agent whose password was wrong FAILURES_BEFORE_PAUSE times in a row has its unchecked
passwords refused at once for a pause that doubles (PAUSE_FIRST to PAUSE_MAX), which no
burst of guesses can outrun. Failures are counted and logged a line at a time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import zmq

from actors.frames import recv_frames
from actors.lograte import LogBudget
from wire import passwords, states as S
from wire.codec import WireError

from .identity import sender_of

log = logging.getLogger("mroute.comm")

MAX_CHECKS = 1_000
MAX_WAITING = 10_000
MAX_PER_DESK = 1_000
FAILURES_BEFORE_PAUSE = 5
PAUSE_FIRST, PAUSE_MAX = 1.0, 60.0
CHECKED = ("Connect", "Login")  # the requests that carry a password


@dataclass(slots=True)
class Waiting:
    type: str
    body: dict[str, Any]
    peer: str | None
    job: tuple[str, str] | None   # the (hash, password) it waits for, or None: only for those before it


@dataclass(slots=True)
class Failures:
    count: int = 0
    paused_until: float = 0.0
    pause: float = 0.0


class PasswordChecks:
    def __init__(self, ctx: zmq.Context, directory: dict[str, dict[str, Any]],
                 run: Callable[[str, dict[str, Any], str | None], None], clock: Callable[[], float] = time.monotonic):
        self.directory = directory
        self.run = run                  # (type, body, peer): handle a request that waited, as if it came now
        self.clock = clock
        self.desks: dict[str, deque[Waiting]] = {}   # desk -> its requests that wait, in order
        self.waiting = 0
        self.checking: dict[tuple[str, str], list[str]] = {}  # job -> the desks waiting on it
        self.failures: dict[str, Failures] = {}
        self.counters = {"password_checks": 0, "password_failures": 0, "password_paused": 0,
                         "password_overloaded": 0}
        self.lines = LogBudget()
        self.jobs: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self.done: deque[tuple[tuple[str, str], bool]] = deque()
        self.ctx = ctx
        self.wake = ctx.socket(zmq.PAIR)   # the thread's word that verdicts are in `done`
        self.wake.linger = 0
        self.wake.bind(f"inproc://mroute-checks-{id(self)}")
        self.thread = threading.Thread(target=self._work, name="password-checks", daemon=True)
        self.thread.start()

    # on the loop ---------------------------------------------------------------------------
    def holds(self, type: str, body: dict[str, Any], peer: str | None) -> bool:
        """Whether this request must wait here (then it does): its desk has one waiting
        already, or it carries a password never checked. Raises WireError to refuse it."""
        job = self.unchecked(body) if type in CHECKED else None
        if job is None and not self.desks:   # the usual case: nothing to wait for
            return False
        sender = sender_of(body)
        line = self.desks.get(sender) if sender is not None else None
        if sender is None or (job is None and line is None):
            return False
        if job is not None:
            self.refuse_if_paused(body["AgentId"])
        if self.waiting >= MAX_WAITING or (line is not None and len(line) >= MAX_PER_DESK):
            self.counters["password_overloaded"] += 1
            raise WireError(S.OVERLOADED, "too many requests wait for password checks: try again later")
        if job is not None and job not in self.checking:
            if len(self.checking) >= MAX_CHECKS:
                self.counters["password_overloaded"] += 1
                raise WireError(S.OVERLOADED, f"{len(self.checking)} passwords wait to be checked: try again later")
            self.checking[job] = []
            self.counters["password_checks"] += 1
            self.jobs.put(job)
        if job is not None:
            self.checking[job].append(sender)
        self.desks.setdefault(sender, deque()).append(Waiting(type, body, peer, job))
        self.waiting += 1
        return True

    def unchecked(self, body: dict[str, Any]) -> tuple[str, str] | None:
        entry = self.directory.get(body.get("AgentId"))  # type: ignore[arg-type]
        password = body.get("Password")
        if entry is None or "password_hash" not in entry or password.__class__ is not str:
            return None   # no agent (refused at once, no hash to compute) or no hash to check against
        stored = entry["password_hash"]
        return (stored, password) if passwords.known(password, stored) is None else None

    def refuse_if_paused(self, agent_id: str) -> None:
        failures = self.failures.get(agent_id)
        if failures is not None and failures.paused_until > self.clock():
            self.counters["password_paused"] += 1
            raise WireError(S.AUTHORIZATION_FAILURE, f"too many wrong passwords for {agent_id}: try again in "
                                                     f"{failures.paused_until - self.clock():.0f} s", field="Password")

    def on_checked(self) -> None:
        """Verdicts are in: the requests that waited for them run, each desk's in order, up
        to the next that waits for a password still being checked."""
        while recv_frames(self.wake) is not None:
            pass
        while self.done:
            job, ok = self.done.popleft()
            for desk in self.checking.pop(job, ()):
                line = self.desks.get(desk)
                for waiting in line or ():
                    if waiting.job == job:
                        waiting.job = None
                        self.count(waiting.body.get("AgentId"), ok)
                        break
            self.release()

    def release(self) -> None:
        """Run what no longer waits, each desk's line up to its first that still does. A
        line is off the books while it runs, so that what runs is not held again."""
        for desk in [desk for desk, line in self.desks.items() if line[0].job is None]:
            line = self.desks.pop(desk)
            while line and line[0].job is None:
                waiting = line.popleft()
                self.waiting -= 1
                self.run(waiting.type, waiting.body, waiting.peer)
                if desk in self.desks:  # it waits again (another password): the rest behind it
                    self.desks[desk].extend(line)
                    line.clear()
            if line:
                self.desks[desk] = line

    def count(self, agent_id: Any, ok: bool) -> None:
        if ok:
            self.failures.pop(agent_id, None)
            return
        self.counters["password_failures"] += 1
        failures = self.failures.setdefault(agent_id, Failures())
        failures.count += 1
        if failures.count >= FAILURES_BEFORE_PAUSE:
            failures.pause = min(PAUSE_MAX, failures.pause * 2 or PAUSE_FIRST)
            failures.paused_until = self.clock() + failures.pause
            failures.count = 0
        write, unlogged = self.lines.take()
        if write:
            log.warning("wrong password for %s (%d wrong so far%s)%s", agent_id, self.counters["password_failures"],
                        f"; its passwords are refused for {failures.pause:.0f} s" if failures.paused_until > self.clock()
                        else "", f" ({unlogged} lines before this one not logged)" if unlogged else "")

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "password_checks_waiting": len(self.checking), "requests_waiting_for_checks":
                self.waiting}

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(2)
        self.wake.close(0)

    # the thread ------------------------------------------------------------------------------
    def _work(self) -> None:
        wake = self.ctx.socket(zmq.PAIR)
        wake.linger = 0
        wake.connect(f"inproc://mroute-checks-{id(self)}")
        try:
            while (job := self.jobs.get()) is not None:
                stored, password = job
                self.done.append((job, passwords.check(password, stored)))
                try:
                    wake.send(b"", zmq.NOBLOCK)
                except zmq.Again:  # a word is waiting already: it wakes the loop for this one too
                    pass
        finally:
            wake.close(0)
