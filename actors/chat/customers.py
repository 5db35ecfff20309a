"""The customer side of a simulated Chat Server: every task it creates, from the `Task` it
sends until Comm says how the task ended, with the routing latency of each (Task sent ->
TaskAgentSelected received).

Comm answers a `Task` with a TaskState carrying its MsgId: QUEUED normally, but the task's
current state on a retry (RESERVED, ACTIVE, CLOSED: the first answer was lost or slow and
things moved on). The answer is recognised by its MsgId, whatever its State.
"""

from __future__ import annotations

import time
from typing import Any

from wire import hook as H, states as S
from wire.codec import WireError
from wire.stats import Histogram

from .byqueue import ByQueue
from .host import Host, Timer

THROTTLED = "Task THROTTLED"  # error_codes' key of the Tasks our throttle refused (never sent)

# How our customers' tasks end, by the Code of their CLOSED state.
OUTCOMES = {S.DONE: "closed", S.CANCELLED: "abandoned", S.NO_AGENT_AVAILABLE: "expired"}
WITH_AN_AGENT = frozenset({S.RESERVED, S.ACTIVE, S.WRAP_UP})


class Customers:
    def __init__(self, host: Host):
        self.host = host
        self.latency = Histogram()
        self.sent_at: dict[str, float] = {}  # MsgId of our Task -> when sent, until Comm answers it
        self.waiting: dict[str, float] = {}  # TaskId -> when its Task was sent, until an agent is chosen
        self.patience_timers: dict[str, Timer] = {}
        self.open: set[str] = set()          # our TaskIds not closed yet (`waiting` is a part of it)
        self.accepted: set[str] = set()      # those of `open` an agent accepted (counted once, whatever follows)
        # TaskId -> when a TaskAgentSelected came for a task we could not name yet: the answer
        # to one of our Tasks was lost or slow, and the agent was chosen before it reached us.
        self.selected_early: dict[str, float] = {}
        self.by_queue = ByQueue()
        # with a scenario hook: MsgId of our Task -> its customer, until answered; then TaskId -> it
        self.hooked: dict[str, H.Customer] = {}

    def afresh(self) -> int:
        """Stop following the tasks we created and start a new latency record; returns how
        many tasks had not ended (nothing will tell us how they do)."""
        unended = len(self.open) + len(self.sent_at)
        for timer in self.patience_timers.values():
            timer.cancel()
        for tasks in (self.sent_at, self.waiting, self.patience_timers, self.selected_early):
            tasks.clear()
        self.open.clear()
        self.accepted.clear()
        self.hooked.clear()
        self.latency = Histogram()
        self.by_queue = ByQueue()
        return unended

    def forget(self) -> int:
        """As `afresh`, keeping the latency measured so far (a Comm that lost our tasks)."""
        latency, by_queue = self.latency, self.by_queue
        for customer in self.hooked.values():
            self.host.hooks.closed(H.Closed(customer, customer.task_id, "lost", None))
        unended = self.afresh()
        self.latency, self.by_queue = latency, by_queue
        by_queue.forget_requests()
        return unended

    # what our customers do ------------------------------------------------------------
    def new_task(self, number: int) -> str | None:
        """Our customer's Task, sent; None when our throttle refused it (Comm is refusing
        Tasks: the customer is told to come back later, as if Comm had said so)."""
        host = self.host
        host.counts["created"] += 1
        queue = self.choose_queue()
        priority = host.behaviour.priority.get(queue) if queue is not None else None
        params: list[list[Any]] = [["channel", "web"]]
        customer = None
        if host.hooks is not None:
            patience = host.patience.sample(host.rng) if host.patience is not None else None
            customer = host.hooks.customer(H.Customer(number, queue, priority, params, patience))
            queue, priority, params = customer.queue, customer.priority, list(customer.params)
        if queue is not None:
            params.append(["queue", queue])
        if priority is not None:
            params.append(["priority", priority])
        try:
            msg_id = host.request("Task", {"Mrd": host.mrd, "ClientUniqueId": f"{host.name}-c{number}",
                                           "name": f"Customer {number}", "params": params})
        except WireError:   # only the throttle raises (wire/session.py)
            host.counts["refused"] += 1
            host.error_codes[THROTTLED] = host.error_codes.get(THROTTLED, 0) + 1
            self.by_queue.created(None, queue)
            self.by_queue.refused(None, queue)
            if customer is not None:
                host.hooks.closed(H.Closed(customer, None, "refused", S.OVERLOADED))
            return None
        self.sent_at[msg_id] = time.monotonic()
        self.by_queue.created(msg_id, queue)
        if customer is not None:
            self.hooked[msg_id] = customer
        return msg_id

    def choose_queue(self) -> str | None:
        """The queue our customer asks for, by the scenario's weights; None: the MRD's default."""
        weights = self.host.behaviour.queues
        if not weights:
            return None
        return self.host.rng.choices(list(weights), weights=list(weights.values()))[0]

    def give_up(self, task_id: str) -> None:
        """The customer's patience ran out before an agent was chosen: cancel the task."""
        self.patience_timers.pop(task_id, None)
        if self.waiting.pop(task_id, None) is not None:  # counted when Comm confirms: it may have ended otherwise
            self.host.request("TaskState", {"TaskId": task_id, "State": S.CLOSED, "Code": S.CANCELLED})

    # what Comm tells us -----------------------------------------------------------------
    def on_answer(self, msg_id: str, body: dict[str, Any]) -> None:
        """The answer to our Task: Comm acknowledged it and named it; its State says how far
        it has gone (beyond QUEUED only when this answers a retry)."""
        sent = self.sent_at.pop(msg_id, None)
        task_id = body.get("TaskId")
        if sent is None or task_id.__class__ is not str:
            return  # a Task of an earlier run (we count afresh), or no id to follow it by
        counts = self.host.counts
        counts["queued"] += 1
        self.open.add(task_id)
        self.by_queue.answered(msg_id, task_id)
        customer = self.hooked.pop(msg_id, None)
        if customer is not None:
            customer.task_id = task_id
            self.hooked[task_id] = customer
        state, code = body.get("State"), body.get("Code")
        if task_id in self.selected_early or state in WITH_AN_AGENT or (state == S.CLOSED and code == S.DONE):
            self.count_routed(task_id, sent)
        elif state != S.CLOSED:
            self.wait_for_agent(task_id, sent)
        if state == S.CLOSED:
            self.closed(task_id, code)

    def wait_for_agent(self, task_id: str, sent: float) -> None:
        self.waiting[task_id] = sent
        customer = self.hooked.get(task_id)
        if customer is not None:
            patience = customer.patience
        else:
            patience = self.host.patience.sample(self.host.rng) if self.host.patience is not None else None
        if patience is not None:
            delay = sent + patience - time.monotonic()
            self.patience_timers[task_id] = self.host.loop.call_later(max(0.0, delay), self.give_up, task_id)

    def on_refused(self, msg_id: str, code: Any) -> None:
        """An Error for our Task (OVERLOADED, or what else Comm found wrong with it): our
        customer is told to come back later."""
        if self.sent_at.pop(msg_id, None) is not None:
            self.host.counts["refused"] += 1
            self.by_queue.refused(msg_id)
            self.hook_closed(msg_id, None, "refused", code)

    def on_selected(self, task_id: str) -> None:
        sent = self.forget_waiting(task_id)
        if sent is not None:
            self.latency.record(time.monotonic() - sent)
            self.by_queue.waited(task_id, time.monotonic() - sent)
            self.host.counts["routed"] += 1
        elif self.sent_at and task_id not in self.open:
            self.selected_early[task_id] = time.monotonic()  # maybe ours: its answer may follow

    def on_task_state(self, body: dict[str, Any]) -> None:
        """A notification (or the answer to our cancel) about a task: only its end matters here."""
        task_id = body.get("TaskId")
        if body.get("State") == S.ACTIVE and task_id in self.open and task_id not in self.accepted:
            self.accepted.add(task_id)   # our task accepted: once, however often it is offered again
            self.host.counts["accepted"] += 1
            self.by_queue.task(task_id, "accepted")
        if body.get("State") == S.CLOSED and body.get("Scope") != "PARTICIPANT" and task_id in self.open:
            if body.get("Code") == S.DONE and task_id in self.waiting:  # its selection never reached us
                self.count_routed(task_id, self.forget_waiting(task_id))
            self.closed(task_id, body.get("Code"))

    def apply_snapshot(self, tasks: dict[str, dict[str, Any]], unknown: set[str]) -> None:
        """What Comm holds of our tasks supersedes what we do: tasks it closed while the news
        was lost end here, those it does not know are lost, those it gave an agent are routed."""
        for task_id in list(self.open):
            row = tasks.get(task_id)
            if task_id in unknown:
                self.open.discard(task_id)
                self.forget_waiting(task_id)
                self.host.counts["lost"] += 1
                self.by_queue.ended(task_id, "lost")
                self.hook_closed(task_id, task_id, "lost", None)
            elif row is None:
                continue  # not named in our Resync and not live: a later Resync will say
            elif row.get("State") == S.CLOSED:
                self.on_task_state(row)
            elif row.get("State") in WITH_AN_AGENT and task_id in self.waiting:
                self.count_routed(task_id, self.forget_waiting(task_id))

    # bookkeeping ------------------------------------------------------------------------
    def count_routed(self, task_id: str, sent: float | None) -> None:
        """An agent was chosen for our task and the TaskAgentSelected that would have timed it
        is lost, or came before we knew the task's id (then it is timed from that)."""
        self.host.counts["routed"] += 1
        at = self.selected_early.pop(task_id, None)
        if at is not None and sent is not None:
            self.latency.record(max(0.0, at - sent))
            self.by_queue.waited(task_id, max(0.0, at - sent))
        else:
            self.host.counts["routed_unmeasured"] += 1

    def closed(self, task_id: str, code: Any) -> None:
        if code == S.DONE and task_id in self.open and task_id not in self.accepted:
            self.host.counts["accepted"] += 1   # its acceptance's news was lost: an agent closed it
            self.by_queue.task(task_id, "accepted")
        self.open.discard(task_id)
        self.accepted.discard(task_id)
        self.forget_waiting(task_id)
        self.selected_early.pop(task_id, None)
        self.host.counts[OUTCOMES.get(code, "closed_other")] += 1
        self.by_queue.ended(task_id, OUTCOMES.get(code, "closed_other"))
        self.hook_closed(task_id, task_id, OUTCOMES.get(code, "closed_other"), code)

    def hook_closed(self, key: str, task_id: str | None, outcome: str, code: Any) -> None:
        customer = self.hooked.pop(key, None)
        if customer is not None:
            self.host.hooks.closed(H.Closed(customer, task_id, outcome, code if code.__class__ is str else None))

    def forget_waiting(self, task_id: str) -> float | None:
        timer = self.patience_timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()
        return self.waiting.pop(task_id, None)

    def prune(self) -> None:
        """A selection that came before the oldest Task still unanswered cannot be for one
        of ours: forget it (keeps `selected_early` to the few in flight)."""
        if not self.selected_early:
            return
        oldest = min(self.sent_at.values(), default=None)
        if oldest is None:
            self.selected_early.clear()
        else:
            for task_id in [t for t, at in self.selected_early.items() if at < oldest]:
                del self.selected_early[task_id]

    def tracked(self) -> set[str]:
        """Every task id we follow (waiting ones are open too)."""
        return set(self.open)
