"""Comm's state, all of it, as plain data: agent sessions and tasks.

Comm is the system of record (design.md section 6): whatever the other roles know about
sessions and tasks they learned from Comm's messages. These dataclasses have no behaviour:
each is changed only by its owner (agents.py for Session and Presence, tasks.py for Task),
which marks what it changed for the journal.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from wire.states import LOGOUT, NOT_READY, QUEUED


@dataclass(slots=True)
class Presence:
    """An agent on one MRD."""
    mrd: str
    agent_id: str
    state: str = LOGOUT
    reason: str = ""
    changed: str = ""               # StateChangeTime of the last change, UTC ISO 8601
    wants: str = NOT_READY          # what the agent last asked for: READY or NOT_READY
    tasks: set[str] = field(default_factory=set)   # accepted tasks, as owner or participant
    offer: str | None = None        # the task on offer to this agent, if any
    external: bool = False          # its state is the voice side's (through the GC), not derived here
    on_call: bool = False           # the voice side has a call ringing, talking or on hold


@dataclass(slots=True)
class Session:
    agent_id: str
    destination: str                # the Chat Server's topic for this agent
    extension: str = ""
    mrds: dict[str, Presence] = field(default_factory=dict)


@dataclass(slots=True)
class Task:
    task_id: str
    mrd: str
    client_id: str
    name: str
    params: dict[str, Any]
    origin: str                     # the Chat Server that created it (its ReplyTo)
    state: str = QUEUED
    owner: str | None = None        # the agent it is offered to or held by
    participants: list[str] = field(default_factory=list)
    code: str = ""                  # why it last changed (RONA, TRANSFERRED, DONE, ...)
    queue: str = ""                 # the precision queue it waits in
    created: float = field(default_factory=time.monotonic)
    queued_since: float | None = None   # when it last started waiting for an agent (None: held)
    waited: float = 0.0                 # time spent waiting before that (its time to live counts both)
    routed: bool = False                # offered to an agent at least once (counted once: tasks.py)
    accepted: bool = False              # accepted at least once

    def agents(self) -> list[str]:
        return ([self.owner] if self.owner else []) + self.participants


@dataclass
class CommState:
    """What a journal gives back: the state of each owner as it was last written."""
    sessions: dict[str, Session] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)       # live tasks
    closed: OrderedDict[str, Task] = field(default_factory=OrderedDict)  # the most recent closed
    seen: OrderedDict[str, str] = field(default_factory=OrderedDict)     # MsgId -> TaskId or ""
    task_prefix: str | None = None       # None: a Comm starting afresh takes a new epoch
    task_number: int = 0                 # the last task id given out
    watched: set[str] = field(default_factory=set)  # Chat Servers that heartbeat: their silence matters
    decisions: dict[str, int] = field(default_factory=dict)  # MRE stream -> the last decision applied
    counters: dict[str, Any] = field(default_factory=dict)   # the tasks' counters over the journal's life
