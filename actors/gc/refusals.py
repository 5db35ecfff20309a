"""The refusal every part of the GC gives alike: a command that does not fit the state of
things now is refused INVALID_STATE (protocol.md 2.3), saying why."""

from __future__ import annotations

from wire import gc as G


def require(ok: bool, command: str, why: str) -> None:
    if not ok:
        raise G.CommandError(G.INVALID_STATE, why, command)
