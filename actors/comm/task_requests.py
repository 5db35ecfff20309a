"""What a Chat Server asks of tasks: Task, TaskState, Transfer and Conference (protocol.md
1.1 #4, #7, #11, #13; states and codes 1.4), and the Resync of a desk that started afresh.
Validation first, then the change through the tasks' owner; the answer is the message the
change caused (see core.py)."""

from __future__ import annotations

import logging
import re
from typing import Any

from wire import states as S
from wire.codec import WireError, is_destination, params_dict

from .admission import Admission, TaskLimits
from .identity import own_destination
from .state import Task
from .tasks import Tasks, params_size

log = logging.getLogger("mroute.comm")


TASK_ENVELOPE = 4096   # bytes a Task carries besides its params (ids, names): its body may be this much more
SNIFFED = {key: re.compile(rb'"' + key + rb'"\s*:\s*"([^"\\]{1,256})"') for key in (b"ReplyTo", b"MsgId")}


def stated_sender(body: bytes) -> tuple[str, str] | None:
    """(ReplyTo, MsgId) of an encoded request that states each plainly and once, at its top
    (no escape in either, neither key anywhere else, no object inside it where one could
    hide, a ReplyTo that is a destination), and names no Destination; else None."""
    if body.count(b"{") != 1 or b'"Destination"' in body:
        return None
    found = []
    for key, rx in SNIFFED.items():
        if body.count(b'"' + key + b'"') != 1 or (m := rx.search(body)) is None:
            return None
        found.append(m.group(1).decode(errors="replace"))
    reply_to, msg_id = found
    return (reply_to, msg_id) if is_destination(reply_to) else None


def oversized_task(body: bytes, limits: TaskLimits) -> WireError | None:
    """A Task body too big for its params to fit the limit, refused before it is decoded:
    decoding a 900 KB body of small pairs takes about 20 ms of every client's time. The
    Error goes to the ReplyTo found in its bytes (a regex scan: a fraction of a decode)."""
    limit = limits.max_params_bytes + TASK_ENVELOPE
    if len(body) <= limit:
        return None
    found = {key.decode(): m.group(1).decode(errors="replace") for key, rx in SNIFFED.items()
             if (m := rx.search(body)) is not None}
    reply_to = found.get("ReplyTo")
    return WireError(S.BAD_FIELD, f"a Task of {len(body):,} bytes: its params may take at most "
                                  f"{limits.max_params_bytes:,} (comm.max_params_bytes)", type="Task",
                     field="params", msg_id=found.get("MsgId"),
                     reply_to=reply_to if reply_to is not None and is_destination(reply_to) else None)


class TaskRequests:
    def __init__(self, tasks: Tasks, mrds: dict[str, dict[str, Any]], admission: Admission):
        self.tasks = tasks
        self.mrds = mrds
        self.admission = admission

    def task(self, body: dict[str, Any]) -> str:
        """A new task (the door admitted it: core.request), once its params pass."""
        mrd = body["Mrd"]
        self.tasks.agents.mrd(mrd, "Mrd")
        origin = body.get("ReplyTo")
        if origin is None:
            raise WireError(S.MISSING_FIELD, "Task needs ReplyTo: the Chat Server's destination", field="ReplyTo")
        limits = self.admission.limits
        raw = body.get("params")
        if raw is not None and len(raw) > limits.max_params:   # counted before it is copied
            raise WireError(S.BAD_FIELD, f"params has {len(raw)} pairs, at most {limits.max_params} "
                                         f"(comm.max_params)", field="params")
        params = dict(params_dict(raw))
        params["queue"] = self.queue_of(mrd, params)
        size = params_size(params)
        if size > limits.max_params_bytes:
            raise WireError(S.BAD_FIELD, f"params take {size:,} bytes, at most {limits.max_params_bytes:,} "
                                         f"(comm.max_params_bytes)", field="params")
        self.admission.admit_params(size)
        priority = params.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, (int, float)):
            raise WireError(S.BAD_FIELD, f"params priority must be a number, not {priority!r}", field="params")
        return self.tasks.create(mrd, body["ClientUniqueId"], body.get("name") or "", params, origin, size).task_id

    def queue_of(self, mrd: str, params: dict[str, Any]) -> str:
        """The precision queue a task names in its params, else its MRD's default queue."""
        name = params.get("queue")
        if name is None:
            return self.mrds[mrd].get("default_queue") or f"{mrd}-default"
        queues = self.tasks.queues
        queue = queues.get(name) if isinstance(name, str) else None
        if queue is None or queue["mrd"] != mrd:
            own = [q for q, spec in queues.items() if spec["mrd"] == mrd]
            raise WireError(S.NOT_FOUND, f"no queue {name!r} on MRD {mrd} (queues: {', '.join(own) or 'none'})",
                            field="params")
        return name

    def task_state(self, body: dict[str, Any]) -> None:
        tasks = self.tasks
        task = tasks.task(body["TaskId"])
        target, agent_id = body["State"], body.get("AgentId")
        if target == S.CLOSED and body.get("Code") == S.CANCELLED:
            self.require_creator(task, body)
        else:
            self.require_desk_of(agent_id, body)
        if target == S.ACTIVE:
            self.require_owner(task, S.RESERVED, agent_id)
            tasks.accept(task, agent_id)  # type: ignore[arg-type]
        elif target == S.WRAP_UP:
            self.require_owner(task, S.ACTIVE, agent_id)
            tasks.wrap_up(task, agent_id)  # type: ignore[arg-type]
        elif target == S.CLOSED:
            code = body.get("Code") or S.DONE
            if code not in S.CLIENT_CLOSE_CODES:
                raise WireError(S.BAD_FIELD, f"a Chat Server closes a task with DONE or CANCELLED, not {code}",
                                field="Code")
            if code == S.CANCELLED:
                tasks.close(task, S.CANCELLED)
                return
            if agent_id is None:
                raise WireError(S.MISSING_FIELD, "closing a task DONE needs the AgentId", field="AgentId")
            if agent_id not in task.agents() or task.state not in (S.ACTIVE, S.WRAP_UP):
                raise WireError(S.AUTHORIZATION_FAILURE if task.state in (S.ACTIVE, S.WRAP_UP) else S.INVALID_STATE,
                                f"task {task.task_id} is {task.state} with {task.agents() or 'no agent'}",
                                field="AgentId")
            tasks.end_part(task, agent_id, S.DONE)
        else:
            raise WireError(S.INVALID_STATE, f"a Chat Server sets a task ACTIVE, WRAP_UP or CLOSED, not {target}",
                            field="State")

    def require_desk_of(self, agent_id: Any, body: dict[str, Any]) -> None:
        """A desk acts only for the agents connected through it; the sender is the request's
        ReplyTo, which core.request made sure of."""
        if agent_id is None:
            raise WireError(S.MISSING_FIELD, "an agent's request names the agent (AgentId)", field="AgentId")
        sender = body.get("ReplyTo")
        desk = self.tasks.agents.destination(agent_id) if agent_id.__class__ is str else None
        if desk is None or sender != desk:
            raise WireError(S.AUTHORIZATION_FAILURE, f"{agent_id} is not connected through {sender}",
                            field="ReplyTo")

    @staticmethod
    def require_creator(task: Task, body: dict[str, Any]) -> None:
        """Only the desk that created a task (its customer's side) cancels it."""
        if body.get("ReplyTo") != task.origin:
            raise WireError(S.AUTHORIZATION_FAILURE, f"task {task.task_id} was created through another desk: only "
                                                     f"that desk cancels it", field="ReplyTo")

    @staticmethod
    def require_owner(task: Task, state: str, agent_id: str | None) -> None:
        """Only the agent a task is offered to (RESERVED) or held by (ACTIVE) moves it on."""
        if task.state != state:
            raise WireError(S.INVALID_STATE, f"task {task.task_id} is {task.state}, not {state}", field="State")
        if agent_id != task.owner:
            raise WireError(S.AUTHORIZATION_FAILURE, f"task {task.task_id} is {state} with {task.owner}",
                            field="AgentId")

    def transfer(self, body: dict[str, Any]) -> None:
        task = self.tasks.task(body["TaskId"])
        self.require_desk_of(body["OwnerAgentId"], body)
        self.tasks.transfer(task, body["OwnerAgentId"], body["RecipientAgentId"])

    def conference(self, body: dict[str, Any]) -> None:
        task = self.tasks.task(body["TaskId"])
        self.require_desk_of(body["ConferenceOwner"], body)
        if body["Mrd"] != task.mrd:
            raise WireError(S.BAD_FIELD, f"task {task.task_id} is on MRD {task.mrd}, not {body['Mrd']}", field="Mrd")
        self.tasks.conference(task, body["ConferenceOwner"], body["ConferenceParticipant"])

    def resync(self, body: dict[str, Any]) -> None:
        """A desk asks what it should hold (answered with a Snapshot). With `Reset: true` it
        has started afresh and names every task it still has: the tasks it created that it
        does not name have lost their customer with its earlier process, and close as a
        customer's cancel does (CANCELLED), rather than wait for an agent to talk to nobody."""
        destination = own_destination(body)
        if body.get("Reset") is not True:
            return
        tasks = self.tasks
        still = set(body.get("TaskIds") or ())
        gone = [task for task in tasks.live.values() if task.origin == destination and task.task_id not in still]
        for task in gone:
            tasks.close(task, S.CANCELLED)
        if gone:
            tasks.counters["tasks_left_by_desks"] = tasks.counters.get("tasks_left_by_desks", 0) + len(gone)
            log.info("%s started afresh without %d of the tasks it created: cancelled", destination, len(gone))
