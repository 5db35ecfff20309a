"""The one registry of what Chat Servers may ask Comm on General: for each request type,
what applies it, how to answer it from what is true now, and whether it is a query. Which
message answers it is the catalogue's to say (wire/catalogue.py, `answer`).

A change is applied once: its sender's MsgId is remembered (ledger.py, journaled), and a
retry is answered from what is true now (`now`), never applied again. A query changes
nothing: asking twice is harmless, so it is not remembered, just answered. The answer is
the message of type `answer` to the sender whose body has the same values as the request
in the fields of `key` (answer's field -> request's field): the change publishes it
(streams.py `Reply`), or, when it publishes none to its sender, `now` builds it; an Ack
(`now` None) says only that the request was taken.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from wire.catalogue import BY_QUEUE, GENERAL

from .agent_requests import AgentRequests
from .answers import Answers
from .desks import Desks
from .task_requests import TaskRequests

Body = dict[str, Any]
AGENT = (("AgentId", "AgentId"), ("Mrd", "Mrd"))
TASK = (("TaskId", "TaskId"),)


@dataclass(frozen=True, slots=True)
class Request:
    apply: Callable[[Body], str | None] | None   # the change; None: a query (answered by `now`)
    now: Callable[[Body, str | None], tuple[str, Body]] | None  # the answer from what is true now; None: Ack
    key: tuple[tuple[str, str], ...] = ()
    query: bool = False
    answer: str = ""                             # the type of the message that answers it (the catalogue's)


def requests(agents: AgentRequests, tasks: TaskRequests, desks: Desks, answers: Answers) -> dict[str, Request]:
    """The registry over one Comm's owners."""
    registry = {
        "Task": Request(tasks.task, answers.made_task),
        "TaskState": Request(tasks.task_state, answers.task, TASK),
        "AgentState": Request(agents.agent_state, answers.agent, AGENT),
        "Connect": Request(agents.connect, None),
        "Login": Request(agents.login, answers.agent, AGENT),
        "Transfer": Request(tasks.transfer, answers.transferred,
                            (("TaskId", "TaskId"), ("AgentId", "RecipientAgentId"))),
        "Conference": Request(tasks.conference, answers.conferenced,
                              (("TaskId", "TaskId"), ("ParticipantAgentId", "ConferenceParticipant"))),
        # Queries, but a desk's first Heartbeat makes it watched, and a Resync with Reset
        # closes what its desk lost: core.request takes those for the changes they are.
        "Heartbeat": Request(desks.heartbeat, None, query=True),
        "Resync": Request(tasks.resync, answers.snapshot, (("Destination", "Destination"),), query=True),
        "GetAgentState": Request(None, answers.agent, AGENT, query=True),
        "GetTaskState": Request(None, answers.task, TASK, query=True),
    }
    return {type: replace(request, answer=BY_QUEUE[GENERAL][type].answer) for type, request in registry.items()}
