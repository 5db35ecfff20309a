"""What changed since the journal last wrote, as the owners marked it: the commit's input.

Each owner marks what it changed (`dirty`, the ledger's `new`); the meta rows (the task
numbering, the desks watched, the MRE's streams, the tasks' counters) are written only when
they differ from what the journal holds: not the whole of `watched` (one Chat Server a
desk, 10,000 at most) and the MRE's streams at every new task.
"""

from __future__ import annotations

from typing import Any

import orjson

from .agents import Agents
from .decisions import DecisionGate
from .desks import Desks
from .journal import Changes
from .ledger import Ledger
from .state import CommState
from .tasks import Tasks


class Unwritten:
    def __init__(self, agents: Agents, tasks: Tasks, ledger: Ledger, desks: Desks, gate: DecisionGate):
        self.agents, self.tasks, self.ledger, self.desks, self.gate = agents, tasks, ledger, desks, gate
        self.load(CommState())

    def load(self, saved: CommState) -> None:
        """What the journal holds of the meta rows (a Comm loaded from it: all of them)."""
        self.meta_written = saved.task_prefix is not None
        self.number_written = saved.task_number
        self.counts_written: Any = self.tasks.counts() if self.meta_written else None

    def take(self) -> Changes:
        """What changed since the last call; clears the owners' marks."""
        agents, tasks, ledger, desks, gate = self.agents, self.tasks, self.ledger, self.desks, self.gate
        changes = Changes(agents={a: agents.sessions.get(a) for a in agents.dirty},
                          tasks={t: tasks.live.get(t) for t in tasks.dirty},
                          closed={t: tasks.closed[t] for t in tasks.dirty if t in tasks.closed},
                          seen=ledger.new)
        meta = changes.meta
        # The prefix goes with every number: a Comm reverted onto an empty journal keeps its
        # epoch without having written it.
        if not self.meta_written or tasks.number != self.number_written:
            meta["task_prefix"] = tasks.prefix
            meta["task_number"] = str(tasks.number)
            self.number_written = tasks.number
        if not self.meta_written or desks.dirty:
            meta["watched"] = orjson.dumps(sorted(desks.watched)).decode()
        if not self.meta_written or gate.dirty:
            meta["decisions"] = orjson.dumps(gate.applied).decode()
        counts = tasks.counts()
        if counts != self.counts_written:
            meta["counters"] = orjson.dumps({"tasks": tasks.counters, "queues": {q: c for q, c in counts[1]}}).decode()
            self.counts_written = counts
        self.meta_written = True
        agents.dirty, tasks.dirty, ledger.new, desks.dirty, gate.dirty = set(), set(), [], False, False
        return changes
