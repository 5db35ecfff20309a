"""Chats a simulated agent hands on or shares, as a load scenario asks (wire/behaviour.py):
`transfer`, the share of accepted chats its agent transfers to another agent, and
`conference`, the share another agent joins. One draw at the acceptance decides which, if
either; the agent acts after a think time (it reads the chat first), naming an agent of our
desk that we last heard with room for a chat (READY, or ACTIVE: protocol.md 1.3; ours are the
only agents whose state we hear). Comm may still refuse (the recipient was offered a chat
meanwhile, or filled up: INVALID_STATE); the chat then goes on with its owner. A transfer's
recipient holds the chat at once (TaskState ACTIVE, Code TRANSFERRED: no offer, no accept)
and closes it after a handling time; a participant ends its part after one (TaskState CLOSED
DONE, answered CLOSED with Scope PARTICIPANT), unless the owner's close ends it first.

Counted: `transfers` (chats drawn for it), `transferred` (Comm moved it), `transfer_refused`
(Comm refused), `transfer_skipped` (no agent of ours with room then, or the chat had left its
agent before the moment came); `conferences`, `conferenced`, `conference_refused`,
`conference_skipped` likewise. The first is the sum of the other three once all are answered.
`parts_ended`: participants of ours that ended their part themselves (not by the owner's close).
"""

from __future__ import annotations

from typing import Any

from wire import states as S

from .host import Host

KINDS = ("transfer", "conference")
COUNTS = tuple(f"{kind}{end}" for kind in KINDS for end in ("s", "_refused", "_skipped")) + (
    "transferred", "conferenced", "parts_ended")
PLURAL = {"transfer": "transfers", "conference": "conferences"}
WITH_ROOM = frozenset({S.READY, S.ACTIVE})   # BUSY is at the MRD's limit; the rest take no chats
DONE = {"transfer": "transferred", "conference": "conferenced"}


class Handover:
    def __init__(self, host: Host, desk: Any):
        self.host, self.desk = host, desk
        self.joined: dict[str, str] = {}   # TaskId -> our agent taking part in it (not its owner)
        self.leaving: set[str] = set()     # of those, tasks whose part our agent has ended, not yet confirmed

    def forget(self) -> None:
        self.joined.clear()
        self.leaving.clear()

    # the owner's side --------------------------------------------------------------------
    def on_accepted(self, agent_id: str, task_id: str) -> None:
        """Our agent accepted a chat: one draw decides whether it transfers it, conferences
        someone into it, or neither."""
        behaviour, host = self.host.behaviour, self.host
        if not behaviour.transfer and not behaviour.conference:
            return
        draw = host.rng.random()
        kind = "transfer" if draw < behaviour.transfer else \
            "conference" if draw < behaviour.transfer + behaviour.conference else None
        if kind is None:
            return
        host.counts[PLURAL[kind]] += 1
        host.loop.call_later(host.think.sample(host.rng), getattr(self, kind), agent_id, task_id)

    def ask(self, kind: str, agent_id: str, task_id: str) -> None:
        """Transfer the chat, or conference an agent into it, now: the scenario hook's wish."""
        self.host.counts[PLURAL[kind]] += 1
        getattr(self, kind)(agent_id, task_id)

    def colleague(self, agent_id: str) -> str | None:
        """An agent of ours we last heard with room (READY, ACTIVE), not resting, not the asker."""
        desk = self.desk
        free = [a for a, state in desk.states.items()
                if state in WITH_ROOM and a != agent_id and not desk.rhythm.resting(a)]
        return self.host.rng.choice(sorted(free)) if free else None

    def still_owns(self, agent_id: str, task_id: str) -> bool:
        desk = self.desk
        return desk.held.get(task_id) == agent_id and task_id in desk.accepted and task_id not in desk.closing

    def transfer(self, agent_id: str, task_id: str) -> None:
        other = self.colleague(agent_id) if self.still_owns(agent_id, task_id) else None
        if other is None:
            self.host.counts["transfer_skipped"] += 1
            return
        self.host.request("Transfer", {"TaskId": task_id, "OwnerAgentId": agent_id, "RecipientAgentId": other})

    def conference(self, agent_id: str, task_id: str) -> None:
        other = self.colleague(agent_id) if self.still_owns(agent_id, task_id) else None
        if other is None:
            self.host.counts["conference_skipped"] += 1
            return
        self.host.request("Conference", {"TaskId": task_id, "ConferenceOwner": agent_id,
                                         "ConferenceParticipant": other, "Mrd": self.host.mrd})

    def on_answer(self, type: str, refused: bool) -> None:
        """Comm's answer to our Transfer or Conference: done (TaskAgentTransferred,
        TaskConferenced) or refused (Error); the chat goes on with its owner if refused."""
        kind = type.lower()
        if kind in KINDS:
            self.host.counts[f"{kind}_refused" if refused else DONE[kind]] += 1

    # what every desk concerned hears ------------------------------------------------------
    def on_task_state(self, body: dict[str, Any]) -> bool:
        """A TaskState the desk's own bookkeeping does not cover: a transfer (the task moves
        from one agent to another, ours or not) and a participant's part. True when it was
        a transfer (nothing more for the desk to do with it)."""
        task_id, state = body.get("TaskId"), body.get("State")
        if task_id.__class__ is not str:
            return False
        if state == S.ACTIVE and body.get("Code") == S.TRANSFERRED:
            self.transferred(task_id, body.get("AgentId"))
            return True
        if state == S.CLOSED and body.get("Scope") == "PARTICIPANT":
            if self.joined.get(task_id) == body.get("AgentId"):
                if task_id in self.leaving and body.get("Code") == S.DONE:
                    self.host.counts["parts_ended"] += 1
                self.left(task_id)
        elif state in (S.CLOSED, S.QUEUED):   # the task ended or went back: every part with it
            self.left(task_id)
        return False

    def transferred(self, task_id: str, recipient: Any) -> None:
        desk, host = self.desk, self.host
        if desk.held.get(task_id) == recipient:
            return   # told twice
        desk.drop(task_id)   # if our agent gave it away
        if recipient in desk.agents:
            # ours now, ACTIVE without an accept: it closes it after its handling time
            desk.held[task_id] = recipient
            desk.accepted.add(task_id)
            desk.keep(recipient, task_id)

    def on_conferenced(self, body: dict[str, Any]) -> None:
        task_id, participant = body.get("TaskId"), body.get("ParticipantAgentId")
        if task_id.__class__ is str and participant in self.desk.agents and task_id not in self.joined:
            self.join(task_id, participant)   # type: ignore[arg-type]

    def join(self, task_id: str, participant: str) -> None:
        self.joined[task_id] = participant
        self.host.loop.call_later(self.host.handle.sample(self.host.rng), self.leave, participant, task_id)

    def leave(self, agent_id: str, task_id: str) -> None:
        """Our participant is done: its part ends (Comm answers CLOSED, Scope PARTICIPANT)."""
        if self.joined.get(task_id) == agent_id and task_id not in self.leaving:
            self.leaving.add(task_id)
            self.host.request("TaskState", {"AgentId": agent_id, "TaskId": task_id, "State": S.CLOSED,
                                            "Code": S.DONE})

    def left(self, task_id: str) -> None:
        self.joined.pop(task_id, None)
        self.leaving.discard(task_id)

    def on_refused(self, request: dict[str, Any]) -> None:
        """Comm refused our participant's close: the part had ended already (the owner closed)."""
        task_id = request.get("TaskId")
        if task_id in self.joined and self.joined[task_id] == request.get("AgentId"):  # type: ignore[index]
            self.left(task_id)   # type: ignore[arg-type]

    def apply_snapshot(self, tasks: dict[str, dict[str, Any]], unknown: set[str]) -> None:
        """What Comm holds supersedes what we do: parts that ended while the news was lost end
        here; parts our agents have that we missed are taken up (and ended in due course)."""
        for task_id, agent_id in list(self.joined.items()):
            row = tasks.get(task_id)
            if task_id in unknown or row is None or agent_id not in (row.get("Participants") or ()):
                self.left(task_id)
        for task_id, row in tasks.items():
            for agent_id in row.get("Participants") or ():
                if agent_id in self.desk.agents and task_id not in self.joined and row.get("State") == S.ACTIVE:
                    self.join(task_id, agent_id)
