"""Which directory agents each simulated Chat Server desks: the one rule shared by the
topology check, the supervisor (which hands a server its agents' passwords), the Chat
Server (which logs them in) and `scale` (which refuses servers that would desk nobody).

Chat actors take consecutive blocks of the directory in the topology's order, each
`count` x `agents` long; instance N of an actor desks the N-th `agents` of its block."""

from __future__ import annotations

from typing import Any


def desk_range(actors: dict[str, dict[str, Any]], name: str, index: int) -> range:
    """Positions in the directory that instance `index` (1-based) of chat actor `name` desks."""
    start = 0
    for other, spec in actors.items():
        if spec.get("role") != "chat":
            continue
        per_server = int(spec.get("agents", 0))
        if other == name:
            first = start + (index - 1) * per_server
            return range(first, first + per_server)
        start += int(spec.get("count", 1)) * per_server
    return range(0)


def desked(actors: dict[str, dict[str, Any]]) -> dict[str, range]:
    """Every chat instance's range, by instance name."""
    return {f"{name}.{i}": desk_range(actors, name, i) for name, spec in actors.items()
            if spec.get("role") == "chat" for i in range(1, int(spec.get("count", 1)) + 1)}


def short_of_agents(actors: dict[str, dict[str, Any]], directory_size: int) -> dict[str, int]:
    """Chat instances whose range runs past the directory: instance -> agents it would desk
    (fewer than its actor's `agents`)."""
    return {instance: max(0, min(span.stop, directory_size) - span.start)
            for instance, span in desked(actors).items() if span.stop > directory_size}
