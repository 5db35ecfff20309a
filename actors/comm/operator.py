"""What an operator may ask of Comm over the control channel (`mroute` verbs, the web
console): close a task, account for every task numbered so far, log out the agents of
Chat Servers removed, list the team. A refusal is a WireError, told to the operator."""

from __future__ import annotations

from typing import Any, Callable

from wire import states as S

from .agents import Agents
from .desks import Desks
from .tasks import Tasks

TEAM_LIMIT = 1_000   # agents the `agents` answer lists at most (the web console's team view)


class Operator:
    def __init__(self, agents: Agents, tasks: Tasks, desks: Desks, refuse_if_unavailable: Callable[[], None]):
        self.agents, self.tasks, self.desks = agents, tasks, desks
        self.refuse_if_unavailable = refuse_if_unavailable  # a change while the journal cannot write: refused

    def verbs(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"flush": self.flush, "desks_closed": self.desks_closed, "account": self.account, "agents": self.team}

    def flush(self, body: dict[str, Any]) -> dict[str, Any]:
        """Close a task, whatever its state (FORCE_CLOSED)."""
        task_id = str(body.get("task", ""))
        self.refuse_if_unavailable()
        self.tasks.close(self.tasks.task(task_id), S.FORCE_CLOSED)
        return {"TaskId": task_id, "State": S.CLOSED, "Code": S.FORCE_CLOSED}

    def account(self, body: dict[str, Any]) -> dict[str, Any]:
        """For an audit (`mroute chaos`): every task numbered 1..count, as GetTaskState would
        answer it, or None when Comm does not know it. Task ids cannot be guessed by
        clients; an operator asks by number."""
        count = int(body.get("count", 0))
        prefix = f"{self.tasks.prefix}-"
        known: dict[str, Any] = {}
        for tasks in (self.tasks.closed, self.tasks.live):
            for task_id, task in tasks.items():
                if task_id.startswith(prefix):
                    known[task_id[len(prefix):].partition("-")[0]] = self.tasks.state_body(task)
        return {"epoch": self.tasks.prefix, "tasks": {str(n): known.get(str(n)) for n in range(1, count + 1)}}

    def desks_closed(self, body: dict[str, Any]) -> dict[str, Any]:
        """Chat Servers removed by their supervisor: their agents out at once (AGENT_LOGOUT)."""
        destinations = [str(d) for d in body.get("desks") or []]
        self.refuse_if_unavailable()
        agents = sorted({s.agent_id for d in destinations for s in self.agents.at_desk(d)
                         if any(p.state != S.LOGOUT for p in s.mrds.values())})
        for destination in destinations:
            self.desks.closed(destination)
        return {"agents": agents}

    def team(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.agents.team(int(body.get("limit", TEAM_LIMIT)))
