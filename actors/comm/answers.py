"""Answers built from what is true now: for queries, for a retried request (never applied
twice, answered again), and for a request whose change sent nothing to its sender."""

from __future__ import annotations

from typing import Any

from wire import states as S
from wire.codec import WireError

from .agents import Agents, state_body
from .ledger import Ledger
from .state import Presence, Task
from .tasks import Tasks

MAX_RESYNC_TASKS = 100_000


class Answers:
    def __init__(self, agents: Agents, tasks: Tasks, ledger: Ledger):
        self.agents = agents
        self.tasks = tasks
        self.ledger = ledger

    # Each takes the request and the ledger's key of it (`handled`, or None), and returns the
    # answer's type and body (requests.py names which answers which request).
    def agent(self, body: dict[str, Any], handled: str | None) -> tuple[str, dict[str, Any]]:
        return "AgentState", self.agent_state(body["AgentId"], body["Mrd"])

    def made_task(self, body: dict[str, Any], handled: str | None) -> tuple[str, dict[str, Any]]:
        """The task a Task made, as it is now."""
        return "TaskState", self.tasks.state_body(self.known(self.ledger.task_of(handled or "")))

    def task(self, body: dict[str, Any], handled: str | None) -> tuple[str, dict[str, Any]]:
        return "TaskState", self.tasks.state_body(self.known(body["TaskId"]))

    def transferred(self, body: dict[str, Any], handled: str | None) -> tuple[str, dict[str, Any]]:
        task = self.known(body["TaskId"])
        return "TaskAgentTransferred", {"TaskId": task.task_id, "AgentId": task.owner,
                                        "PreviousAgentId": body["OwnerAgentId"]}

    def conferenced(self, body: dict[str, Any], handled: str | None) -> tuple[str, dict[str, Any]]:
        task = self.known(body["TaskId"])
        return "TaskConferenced", {"TaskId": task.task_id, "OwnerAgentId": body["ConferenceOwner"],
                                   "ParticipantAgentId": body["ConferenceParticipant"]}

    def snapshot(self, body: dict[str, Any], handled: str | None) -> tuple[str, dict[str, Any]]:
        return "Snapshot", self.desk(body["Destination"], body.get("TaskIds") or [])

    def known(self, task_id: str) -> Task:
        task = self.tasks.known(task_id)
        if task is None:
            raise WireError(S.NOT_FOUND, f"no task {task_id}", field="TaskId")
        return task

    def agent_state(self, agent_id: str, mrd: str) -> dict[str, Any]:
        if agent_id not in self.agents.directory:
            raise WireError(S.NOT_FOUND, f"no agent {agent_id}", field="AgentId")
        self.agents.mrd(mrd, "Mrd")
        return state_body(self.agents.find(agent_id, mrd) or Presence(mrd, agent_id))

    def desk(self, destination: str, task_ids: list[Any]) -> dict[str, Any]:
        """What a desk should hold: its agents' states, the live tasks it created or its
        agents hold or are offered, and the state of each task it names."""
        if len(task_ids) > MAX_RESYNC_TASKS or not all(t.__class__ is str for t in task_ids):
            raise WireError(S.BAD_FIELD, f"TaskIds must be at most {MAX_RESYNC_TASKS} task ids", field="TaskIds")
        sessions = self.agents.at_desk(destination)
        names = {s.agent_id for s in sessions}
        rows = {task.task_id: self.tasks.state_body(task) for task in self.tasks.live.values()
                if task.origin == destination or (names and not names.isdisjoint(task.agents()))}
        unknown = []
        for task_id in task_ids:
            if task_id not in rows:
                task = self.tasks.known(task_id)
                if task is None:
                    unknown.append(task_id)
                else:
                    rows[task_id] = self.tasks.state_body(task)
        return {"Destination": destination, "Agents": [state_body(p) for s in sessions for p in s.mrds.values()],
                "Tasks": list(rows.values()), "Unknown": unknown}
