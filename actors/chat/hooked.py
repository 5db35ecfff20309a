"""A simulated Chat Server's scenario hook (wire/hook.py): the one place that calls it, so that
whatever it raises or returns stays here. A method that raises, or leaves a value that is no
value (a think time of "soon"), is counted (`hook_errors`), logged within a budget, and the
event goes on as the scenario drew it. What the hook counts is bounded: MAX_NAMES names,
the names past it counted in `hook_names_dropped`."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

import orjson

from actors.lograte import LogBudget
from wire import hook as H

from .host import Host

log = logging.getLogger("mroute.chat")

MAX_NAMES = 64        # distinct names a hook may count
COUNT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")   # shown in tables and CSV as they are
COUNT_STEP = range(0, 1_000_001)   # what one count() may add: the sums stay numbers JSON can carry
INT64 = range(-2 ** 63, 2 ** 63)


def is_seconds_or_none(value: Any) -> bool:
    return value is None or is_seconds(value)


def is_seconds(value: Any) -> bool:
    """A delay the loop can keep: a finite number of seconds, at most a million."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1e6  # (not NaN)


class HookCalls:
    """`Sim` for the hook (what it may do), and the calls into it."""

    def __init__(self, host: Host, cls: type[H.Hook], desk: Any, customers: Any, queues: set[str]):
        self.host, self.desk, self.customers = host, desk, customers
        self.queues = queues   # those a customer may ask for: the topology's on our MRD
        self.name, self.rng = host.name, host.rng
        self.counts: dict[str, int] = {}
        self.lines = LogBudget()
        self.hook = cls(self)
        self.watches = cls.on_message is not H.Hook.on_message   # else no message is handed to it

    def afresh(self) -> None:
        self.counts = {}

    # what the hook may do ------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        if not isinstance(name, str) or not COUNT_NAME.fullmatch(name) or not isinstance(n, int) \
                or isinstance(n, bool) or n not in COUNT_STEP:
            self.failed("count", ValueError(f"count takes a name of 1 to 64 letters, digits and _ . : - and an "
                                            f"integer from 0 to 1e6, not {name!r}, {n!r}"))
        elif name in self.counts or len(self.counts) < MAX_NAMES:
            self.counts[name] = self.counts.get(name, 0) + n
        else:
            self.host.counts["hook_names_dropped"] += 1

    def later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> None:
        if not is_seconds(seconds) or not callable(fn):
            self.failed("later", ValueError(f"later takes seconds from 0 to 1e6 and a function, not {seconds!r}, "
                                            f"{fn!r}"))
            return
        self.host.loop.call_later(seconds, self.call, getattr(fn, "__name__", "later"), fn, *args)

    def close(self, agent_id: str, task_id: str) -> None:
        if task_id in self.desk.accepted:   # only a chat our agent holds (not one still offered)
            self.desk.finish(agent_id, task_id)

    def cancel(self, task_id: str) -> None:
        self.customers.give_up(task_id)       # only a task of ours still waiting for an agent

    def transfer(self, agent_id: str, task_id: str) -> None:
        self.desk.handover.ask("transfer", agent_id, task_id)

    def conference(self, agent_id: str, task_id: str) -> None:
        self.desk.handover.ask("conference", agent_id, task_id)

    # calling it ------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except (Exception, SystemExit) as exc:   # the user's code: what it raises is counted, not ours to die of
            self.failed(what, exc)
            return False

    def failed(self, what: str, exc: BaseException) -> None:
        self.host.counts["hook_errors"] += 1
        write, unlogged = self.lines.take()
        if write:
            log.warning("%s: the scenario hook's %s failed: %s: %s%s", self.name, what, type(exc).__name__, exc,
                        f" ({unlogged} failures before this one not logged)" if unlogged else "")

    def customer(self, customer: H.Customer) -> H.Customer:
        drawn = (customer.queue, customer.priority, list(customer.params), customer.patience)
        if self.call("on_customer", self.hook.on_customer, customer):
            bad = self.bad_customer(customer)
            if bad is None:
                return customer
            self.failed("on_customer", ValueError(bad))
        customer.queue, customer.priority, customer.params, customer.patience = drawn
        return customer

    def bad_customer(self, customer: H.Customer) -> str | None:
        """Why the Task the hook left could not be sent as it is (else None): a queue of
        another name would grow our counts by queue without end, and a value JSON cannot
        say would fail only when sent."""
        if customer.queue is not None and customer.queue not in self.queues:
            return f"customer.queue must be one of {sorted(self.queues)} or None, not {customer.queue!r}"
        if customer.priority is not None and (not isinstance(customer.priority, int)
                                              or isinstance(customer.priority, bool) or customer.priority not in INT64):
            return f"customer.priority must be a 64-bit integer or None, not {customer.priority!r}"
        if not isinstance(customer.params, list) or not all(isinstance(p, list) and len(p) == 2
                                                           and isinstance(p[0], str) for p in customer.params):
            return f"customer.params must be a list of [name, value] pairs, not {customer.params!r}"
        try:
            orjson.dumps(customer.params)
        except TypeError as exc:
            return f"customer.params must be what JSON can say: {exc}"
        if not is_seconds_or_none(customer.patience):
            return f"customer.patience must be seconds from 0 to 1e6 or None, not {customer.patience!r}"
        return None

    def offer(self, agent_id: str, task_id: str, think: float | None) -> float | None:
        """The seconds our agent thinks before accepting (None: it leaves the offer)."""
        offer = H.Offer(agent_id, task_id, think, self.customers.hooked.get(task_id))
        if self.call("on_offer", self.hook.on_offer, offer):
            if is_seconds_or_none(offer.think):
                return offer.think
            self.failed("on_offer", ValueError(f"offer.think must be seconds >= 0 or None, not {offer.think!r}"))
        return think

    def accept(self, agent_id: str, task_id: str, handle: float) -> float:
        """The seconds our agent keeps the chat it holds."""
        chat = H.Chat(agent_id, task_id, handle, self.customers.hooked.get(task_id))
        if self.call("on_accept", self.hook.on_accept, chat):
            if is_seconds(chat.handle):
                return float(chat.handle)
            self.failed("on_accept", ValueError(f"chat.handle must be seconds >= 0, not {chat.handle!r}"))
        return handle

    def message(self, type: str, body: dict[str, Any]) -> None:
        self.call("on_message", self.hook.on_message, H.Message(type, body))

    def closed(self, closed: H.Closed) -> None:
        self.call("on_close", self.hook.on_close, closed)
