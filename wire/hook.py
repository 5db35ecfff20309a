"""A load scenario's Python hook (issue 30): what a scenario's YAML cannot say, said in Python,
as Locust's user classes say it. A scenario file (or a chat actor's topology entry) names
`hook: FILE.py:CLASS` (a path from the file naming it) or `hook: MODULE:CLASS`; the class
subclasses `Hook` and overrides what it needs. Every simulated Chat Server makes one and
calls it from its customers and its agents:

- `on_customer(customer)`: a customer is about to send its Task; change its queue, priority,
  params or patience, keep what you like in `customer.data`.
- `on_offer(offer)`: one of our agents is offered a chat; `offer.think` is the seconds it
  takes to accept (drawn by the scenario), None to leave the offer to time out (RONA).
- `on_accept(chat)`: one of our agents holds a chat; `chat.handle` is the seconds it keeps it.
- `on_message(message)`: every message Comm sends this Chat Server, after the server has
  handled it (the hook only watches, and acts through `self.sim`).
- `on_close(closed)`: one of our customers' tasks ended (closed, abandoned, expired, ...), or
  was refused (Comm or our throttle: OVERLOADED).

`self.sim` is what the hook may do: count (its counts come out in the load report's `hook`),
act later, close a chat, cancel a customer's task, transfer or conference a chat. A hook's
method runs in the Chat Server's one thread: it must be quick, and it must not block. One
that raises is counted (`hook_errors`), logged, and the simulation goes on as the scenario
says for that event.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

METHODS = ("on_customer", "on_offer", "on_accept", "on_message", "on_close")


class HookError(ValueError):
    """A hook that cannot be used: the reason names what is wrong with it."""


@dataclass
class Customer:
    number: int                       # this Chat Server's count of customers
    queue: str | None                 # None: the MRD's default queue
    priority: int | None
    params: list[list[Any]]           # the Task's params, [name, value] pairs
    patience: float | None            # seconds it waits for an agent; None: for ever
    data: dict[str, Any] = field(default_factory=dict)   # the hook's own, kept until the task ends
    task_id: str | None = None        # once Comm has named the task


@dataclass
class Offer:
    agent_id: str
    task_id: str
    think: float | None               # seconds before accepting; None: left to time out (RONA)
    customer: Customer | None = None  # when the task is one of this Chat Server's customers'


@dataclass
class Chat:
    agent_id: str
    task_id: str
    handle: float                     # seconds the agent keeps it before closing it
    customer: Customer | None = None


@dataclass(frozen=True)
class Message:
    type: str                         # TaskState, TaskAgentSelected, AgentState, Error, Snapshot, ...
    body: dict[str, Any]


@dataclass(frozen=True)
class Closed:
    customer: Customer
    task_id: str | None               # None: refused before Comm named it
    outcome: str                      # closed, abandoned, expired, closed_other, lost, refused
    code: str | None                  # the CLOSED state's Code (DONE, CANCELLED, ...), OVERLOADED when refused


class Sim(Protocol):
    """What a hook may do in its Chat Server."""
    name: str                         # the Chat Server's instance name (chat.1)
    rng: Any                          # its random.Random: draw from it, for runs that can be compared

    def count(self, name: str, n: int = 1) -> None: ...
    def later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> None: ...
    def close(self, agent_id: str, task_id: str) -> None: ...
    def cancel(self, task_id: str) -> None: ...
    def transfer(self, agent_id: str, task_id: str) -> None: ...
    def conference(self, agent_id: str, task_id: str) -> None: ...


class Hook:
    """Override what you need; each method's default leaves the scenario's choice as it is."""

    def __init__(self, sim: Sim):
        self.sim = sim

    def on_customer(self, customer: Customer) -> None:
        pass

    def on_offer(self, offer: Offer) -> None:
        pass

    def on_accept(self, chat: Chat) -> None:
        pass

    def on_message(self, message: Message) -> None:
        pass

    def on_close(self, closed: Closed) -> None:
        pass


class CheckSim(Sim):
    """A Sim that does nothing (Sim's own bodies): a hook is made once with it before anything
    starts, so that one whose __init__ fails is said then."""
    name = "check"

    def __init__(self) -> None:
        self.rng = random.Random(0)


def made(cls: type[Hook]) -> None:
    """Make the hook once (with CheckSim): raises HookError saying what its __init__ raised."""
    try:
        cls(CheckSim())
    except (Exception, SystemExit) as exc:   # the user's code, whatever it raises
        raise HookError(f"{cls.__name__}(sim) failed: {type(exc).__name__}: {exc}") from None


def resolve(spec: Any, base: Path) -> str:
    """`FILE.py:CLASS` with FILE made absolute from `base` (the directory of the file naming
    it); `MODULE:CLASS` as it is. Raises HookError when the form is wrong or the file is missing."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise HookError(f"expected FILE.py:CLASS or MODULE:CLASS, not {spec!r}")
    where, name = spec.split(":")
    if not where.endswith(".py"):
        return spec
    path = Path(where).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise HookError(f"no file {path}")
    return f"{path.resolve()}:{name}"


def load(spec: str) -> type[Hook]:
    """The hook class `spec` (resolved) names, imported and checked: a Hook, whose `on_`
    methods are all ones a Chat Server calls (a misspelt one would never be called)."""
    where, _, name = spec.partition(":")
    try:
        if where.endswith(".py"):
            module_name = f"mroute_hook_{Path(where).stem}"
            found = importlib.util.spec_from_file_location(module_name, where)
            if found is None or found.loader is None:
                raise HookError(f"{where} cannot be imported")
            module = importlib.util.module_from_spec(found)
            sys.modules[module_name] = module
            found.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except HookError:
        raise
    except Exception as exc:   # the user's module: whatever it raises, said with where it came from
        raise HookError(f"importing {where} failed: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, Hook)):
        raise HookError(f"{where} has no class {name} that subclasses wire.hook.Hook")
    unknown = sorted(m for m in dir(cls) if m.startswith("on_") and m not in METHODS)
    if unknown:
        raise HookError(f"{name}.{unknown[0]} is not a hook method (a Chat Server calls: {', '.join(METHODS)})")
    return cls
