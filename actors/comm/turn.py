"""One turn of Comm's loop, its steps in their order.

1. **apply**: what the loop read is applied as it is read (`request` for General, `report`
   for CommunicationServer, `gc_event` for GCEvents), each through the core; new Tasks are
   not: they wait in the intake (intake.py), behind what is said about what Comm holds.
2. **intake**: the new Tasks that waited, oldest first, for at most a time slice.
3. **commit**: what the MRE is told leaves first, so that it decides while Comm writes;
   then what the turn changed is journaled. A write that fails undoes the turn (`revert`).
4. **flush**: what the turn caused leaves for the Chat Servers and the GC, never before it
   is journaled.

When a commit fails (disk full, read-only, I/O error), what the turn would have sent is
dropped, as if Comm had died just before its flush (the MRE, told early, gets a snapshot of
the journal, which replaces its view), and the core's journaled state goes back to what the
journal holds, loaded as a restarted Comm would load it, but in this process. Holding the
changes and their replies until a later commit succeeds was the other way; it was not taken
because queries must still be answered meanwhile, and answers from a memory ahead of the
journal would tell what a crash could still take back, while a Comm whose memory is its
journal answers only what is durable. Nothing acknowledged is lost either way: what was
acknowledged was journaled first. Comm then stays degraded (storage.py) until a probe write
succeeds, and serves changes again by itself.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import deque
from typing import Any, Callable

import zmq

from actors.lograte import LogBudget
from actors.runtime import DRAIN_SLICE, ids
from actors.sending import Sender
from wire import states as S
from wire.catalogue import GENERAL
from wire.codec import WireError
from wire.kernel.loop import Loop

from .checks import PasswordChecks
from .core import CommCore
from .identity import is_mre, stated_elsewhere
from .intake import Intake
from .state import CommState
from .storage import Storage

log = logging.getLogger("mroute")


def new_stream() -> str:
    """A stream of this process's own: a receiver that sees a new Stream knows that what it
    was told before may be incomplete."""
    return f"{os.getpid()}-{time.time_ns()}"


class Turn:
    def __init__(self, name: str, core: CommCore, storage: Storage, sender: Sender, mre: zmq.Socket,
                 intake: Intake, checks: PasswordChecks, loop: Loop, *,
                 refuse: Callable[[WireError, Any], None], after_revert: Callable[[], None],
                 counters: dict[str, int], refusal_lines: LogBudget, trace: deque[Any]):
        self.name, self.core, self.storage, self.sender, self.mre = name, core, storage, sender, mre
        self.intake, self.checks, self.loop = intake, checks, loop
        self.refuse = refuse              # the actor's: counted, logged, told to the sender
        self.after_revert = after_revert  # what the actor says afresh once a turn was undone
        self.counters, self.refusal_lines, self.trace = counters, refusal_lines, trace
        self.requests: list[tuple[str, dict[str, Any], str | None]] = []  # this turn's, replayed by `revert`
        self.unread: list[tuple[list[bytes], str | None]] = []  # new Tasks it refused unread (server.py), the same
        self.unreadable = ""  # the journal could be neither written nor read: this process ends

    # 1. apply -------------------------------------------------------------------------------
    def request(self, type: str, body: dict[str, Any], peer: str | None) -> None:
        """What a Chat Server asks, once its key is known to allow the destinations it names
        (identity.py; without CURVE it is taken at its word) and any password it carries
        was checked (checks.py: the request waits there meanwhile, then comes back here)."""
        self.requests.append((type, body, peer))
        if peer is not None and (err := stated_elsewhere(peer, body)) is not None:
            try:
                raise err
            finally:  # not held by this frame, which its traceback holds: no cycle (Actor.refusal)
                del err
        if self.checks.holds(type, body, peer):
            return
        task_id = self.core.request(type, body)
        if task_id is not None:  # the task's id exists only from now on: `mroute trace` starts here
            self.trace.append((time.time(), GENERAL, type, task_id, None, S.QUEUED, None))

    def rerun(self, type: str, body: dict[str, Any], peer: str | None) -> None:
        """A request handled again (it waited for a password check, or its turn was undone),
        a refusal told to its sender as any other."""
        try:
            self.request(type, body, peer)
        except WireError as err:
            err.type = err.type or type
            self.refuse(err, body)
        except Exception as exc:  # a bug must not stop the actor serving others
            log.exception("%s: handler failed on %s", self.name, type)
            self.refuse(WireError(S.GENERAL_ERROR, f"internal error: {exc}", type=type), body)

    def report(self, type: str, body: dict[str, Any], peer: str | None) -> None:
        """What the MRE reports, taken only from the MRE (identity.py, decisions.py): anything
        else on CommunicationServer changes nothing, and is counted and logged."""
        core = self.core
        if not is_mre(peer):
            self.not_from_mre(type, body, f"sent with the key {peer!r}")
            return
        foreign = core.gate.foreign
        core.reports[type](body)
        if core.gate.foreign != foreign:
            self.not_from_mre(type, body, f"on stream {str(body.get('Stream'))[:40]!r}, which Comm never named")

    def not_from_mre(self, type: str, body: dict[str, Any], why: str) -> None:
        self.counters["not_from_mre"] = self.counters.get("not_from_mre", 0) + 1
        write, unlogged = self.refusal_lines.take()
        if write:
            log.warning("%s: ignored a %s that is not the MRE's: %s%s", self.name, type, why,
                        f" ({unlogged} refusals before this one not logged)" if unlogged else "",
                        extra=ids(body))

    def gc_event(self, type: str, body: dict[str, Any], peer: str | None) -> None:
        self.core.voice.event(type, body)

    # 2-4. after the reads ---------------------------------------------------------------------
    def end(self) -> None:
        """The steps after the reads, in their order: the loop calls this before it polls."""
        if self.intake.handle(DRAIN_SLICE):
            self.loop.behind = True   # Tasks are left: the next poll does not wait
        self.commit()
        self.sender.flush()

    def commit(self) -> None:
        """Journal what this turn changed, before the flush sends what it caused."""
        sender = self.sender
        if self.unreadable:  # on our way out: nothing more leaves
            sender.outbox.clear()
            return
        # What goes to the MRE leaves before the commit, so that it decides while Comm writes:
        # the MRE is never told what a client has not (its decisions come back through Comm,
        # which journals before telling a desk), and a Comm that reverts a turn, or dies and
        # starts again, sends it a snapshot of what is journaled, which replaces its view.
        if sender.outbox:
            mre = self.mre
            early = [message for message in sender.outbox if message[0] is mre]
            if early:
                sender.outbox = [message for message in sender.outbox if message[0] is not mre]
                sender.send_all(early)
        if self.storage.write(self.core.take_changes()):
            self.requests.clear()
            self.unread.clear()
        else:
            self.revert()

    def revert(self) -> None:
        """Undo the turn whose changes the journal could not write (module docstring). The
        sockets, the GC link and what lives as long as the process carry on; the MRE gets a
        snapshot of the journaled state, and Chat Servers, seeing a new Stream, ask for
        theirs. The requests of the turn are handled again: each is answered (a change
        refused UNAVAILABLE, a query from what is journaled), none left waiting for an
        answer that was never sent."""
        undone, self.sender.outbox = len(self.sender.outbox), []
        replay, self.requests = self.requests, []
        unread, self.unread = self.unread, []
        core = self.core
        try:  # an empty journal: the epoch goes on (nothing of this one was journaled, nor sent)
            saved = self.storage.load() or CommState(task_prefix=core.tasks.prefix)
        except (sqlite3.Error, OSError) as exc:
            # Neither written nor read: what memory holds is ahead of what is durable, and
            # nothing here can tell which part. A restarted Comm reads what is journaled.
            self.unreadable = f"journal write failed ({self.storage.failure}), then reading it failed ({exc})"
            log.critical("%s: %s: stopping, to be restarted from the journal", self.name, self.unreadable)
            self.loop.stop(self.unreadable)
            return
        core.reload(saved, new_stream())
        self.counters["reverted"] = self.counters.get("reverted", 0) + 1
        log.warning("%s: undid a turn the journal could not write (%d messages not sent); "
                    "serving from the journal: %d agents, %d tasks", self.name, undone,
                    len(core.agents.sessions), len(core.tasks.live))
        core.out.to_mre("Snapshot", core.snapshot())
        self.after_revert()
        for type, body, peer in replay:
            self.rerun(type, body, peer)
        for frames, peer in unread:   # their refusals were dropped with the rest: read now, the whole way
            self.intake.take(frames, peer)
        self.intake.restamp()

