"""Where a route's time goes (issue 28, target 3): the legs of recent tasks' routes, read from
the actors' trace memories (`mroute trace`'s), each stamped by the wall clock of one machine.

A leg ends where its receiver has read and decoded the message (runtime.py stamps it there),
except the first: Comm stamps a new Task once it has handled it (it has no id before), so
the first leg starts after Comm's handling of the Task and ends with the MRE's read.

    comm_task->mre_newtask        Comm has handled the Task -> the MRE has read NewTask
    mre_newtask->comm_decision    ... -> Comm has read the MRE's TaskAgentSelected
    comm_decision->chat_offer     ... -> a Chat Server has read the offer
    comm_task->chat_queued        Comm has handled the Task -> its Chat Server read QUEUED

What no leg holds of the route a Chat Server times (Task sent -> offer read): the Task's way
to Comm and Comm's handling of it.
"""

from __future__ import annotations

from typing import Any

LEGS = ("comm_task->mre_newtask", "mre_newtask->comm_decision", "comm_decision->chat_offer",
        "comm_task->chat_queued")


def task_legs(events: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """One task's legs in seconds, from each actor's trace of it (name -> events, the names
    `comm...`, `mre...`, `chat...`); a leg whose ends are not both remembered is left out."""
    def first(role: str, match: Any) -> float | None:
        stamps = [event["at"] for name, evs in events.items() if name.split(".")[0] == role
                  for event in evs if match(event)]
        return min(stamps) if stamps else None

    task = first("comm", lambda e: e["type"] == "Task")
    newtask = first("mre", lambda e: e["type"] == "NewTask")
    decision = first("comm", lambda e: e["queue"] == "CommunicationServer" and e["type"] == "TaskAgentSelected")
    offer = first("chat", lambda e: e["type"] == "TaskAgentSelected")
    queued = first("chat", lambda e: e["type"] == "TaskState" and e["state"] == "QUEUED")
    ends = dict(zip(LEGS, ((task, newtask), (newtask, decision), (decision, offer), (task, queued))))
    return {leg: end - start for leg, (start, end) in ends.items()
            if start is not None and end is not None and end >= start}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def summary(per_task: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """p50 and p99 of each leg in microseconds, over the tasks that had it."""
    out: dict[str, dict[str, float]] = {}
    for leg in LEGS:
        values = [legs[leg] for legs in per_task if leg in legs]
        if values:
            out[leg] = {"tasks": len(values), "p50_us": round(percentile(values, 50) * 1e6),
                        "p99_us": round(percentile(values, 99) * 1e6)}
    return out


def route_legs(supervisor: Any, actors: set[str], comm: str, count: int, tasks: int = 300) -> dict[str, Any]:
    """The legs of the newest `tasks` of the `count` Comm has numbered, asked of the running
    actors: Comm numbers its tasks (`account`), each actor says what it remembers of one
    (`trace`)."""
    numbered = supervisor.ask_now({comm}, "account", {"count": count})[comm].get("tasks", {})
    ids = [body["TaskId"] for n in range(max(1, count - tasks + 1), count + 1) if (body := numbered.get(str(n)))]
    per_task = []
    for task_id in ids:
        answers = supervisor.ask_now(actors, "trace", {"task": task_id})
        per_task.append(task_legs({name: answer.get("events", []) for name, answer in answers.items()}))
    return summary(per_task)
