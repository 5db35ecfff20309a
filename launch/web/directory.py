"""What the console reads in the directory: which agents a person may log in as without
taking one from a simulated Chat Server, and which queues only those agents serve (a
customer there meets a person, never a bot)."""

from __future__ import annotations

from wire.desking import desked
from wire.expr import compile_expr

from ..topology import Topology


def free_agents(topology: Topology) -> list[str]:
    """The directory agents no simulated Chat Server desks: the ones to log in as on the
    desk page (logging in as another moves it from its Chat Server). Those that serve the
    console's own queues first."""
    own = console_agents(topology)
    taken = desked_positions(topology)
    return own + [a["id"] for i, a in enumerate(topology.agents) if i not in taken and a["id"] not in own]


def console_agents(topology: Topology) -> list[str]:
    """The free agents that serve the console's own queues."""
    tests = [compile_expr(step["expr"]) for name in console_queues(topology) for step in topology.queues[name]["steps"]]
    taken = desked_positions(topology)
    return [a["id"] for i, a in enumerate(topology.agents)
            if i not in taken and any(t(a.get("attributes") or {}) for t in tests)]


def console_queues(topology: Topology) -> list[str]:
    """The queues no agent of a simulated Chat Server can serve (no step of theirs matches
    one) and a free agent can: a chat there meets the console's desk, never a bot. The
    customer page offers them first (the default topology's chat-desk)."""
    taken = desked_positions(topology)
    desked_attrs = [a.get("attributes") or {} for i, a in enumerate(topology.agents) if i in taken]
    free_attrs = [a.get("attributes") or {} for i, a in enumerate(topology.agents) if i not in taken]
    found = []
    for name, queue in topology.queues.items():
        tests = [compile_expr(step["expr"]) for step in queue.get("steps") or []]
        bots = any(t(a) for t in tests for a in desked_attrs)
        if tests and not bots and any(t(a) for t in tests for a in free_attrs):
            found.append(name)
    return found


def desked_positions(topology: Topology) -> set[int]:
    return {i for span in desked(topology.actors).values() for i in span}
