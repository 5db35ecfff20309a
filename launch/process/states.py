"""The states of an actor process and the moves between them, checked (as wire/states.py
checks an agent's): supervisord's names, plus UNRESPONSIVE (alive, not answering pings) and
DEGRADED (answering, but saying it serves only in part: Comm whose journal cannot write).

Every change of a process's state goes through `check_move`: a move the table does not
have is a bug in whoever asked for it, and raises IllegalMove naming the move (as
supervisord's own state assertions do) rather than leaving a process in a state nothing
expects of it. The runner (runner.py `move`) refuses it, logs it and counts it: raised into
the supervisor's loop it would end the loop, and every actor with it.
"""

from __future__ import annotations

STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL = (
    "STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL")
UNRESPONSIVE = "UNRESPONSIVE"
DEGRADED = "DEGRADED"
PROCESS_STATES = (STOPPED, STARTING, RUNNING, DEGRADED, UNRESPONSIVE, STOPPING, EXITED, BACKOFF, FATAL)
UP = (RUNNING, UNRESPONSIVE, DEGRADED)   # started, and not asked to stop
SERVING = (RUNNING, DEGRADED)            # answering: asked for stats and operators' commands

# state -> the states it may move to. Who makes each move:
# - the runner (runner.py), for the supervisor and a pod alike: a spawn (-> STARTING), what
#   the process says (READY, its health, an answer after a silence), its silence
#   (-> UNRESPONSIVE), a stop (-> STOPPING);
# - what an exit leads to is the caller's: the supervisor's watcher gives STOPPED (asked
#   to stop), EXITED (it had started), then BACKOFF (a restart is due) or FATAL (a crash
#   loop); a pod's runner gives EXITED and ends with it.
# A pod's process is started once it answers and STARTING until it says READY, so it may
# go UNRESPONSIVE from STARTING, and back; a supervisor's is pinged only once READY.
# DEGRADED -> DEGRADED: the reason it gives has changed.
PROCESS_MOVES: dict[str, frozenset[str]] = {
    STOPPED: frozenset({STARTING}),
    STARTING: frozenset({RUNNING, DEGRADED, UNRESPONSIVE, STOPPING, EXITED, BACKOFF, FATAL, STOPPED}),
    RUNNING: frozenset({DEGRADED, UNRESPONSIVE, STOPPING, EXITED, STOPPED}),
    DEGRADED: frozenset({RUNNING, DEGRADED, UNRESPONSIVE, STOPPING, EXITED, STOPPED}),
    UNRESPONSIVE: frozenset({RUNNING, DEGRADED, STARTING, STOPPING, EXITED, STOPPED}),
    STOPPING: frozenset({STOPPED, EXITED}),
    EXITED: frozenset({BACKOFF, FATAL}),
    BACKOFF: frozenset({STARTING, STOPPED}),
    FATAL: frozenset({STARTING, STOPPED}),
}


class IllegalMove(RuntimeError):
    """A move of a process's state that the table does not have."""


def move_allowed(current: str, target: str) -> bool:
    return target in PROCESS_MOVES.get(current, frozenset())


def check_move(name: str, current: str, target: str) -> None:
    """Raise IllegalMove unless `current -> target` is in the table."""
    if not move_allowed(current, target):
        allowed = ", ".join(sorted(PROCESS_MOVES.get(current, ()))) or "nowhere"
        raise IllegalMove(f"{name}: {current} -> {target} is not a move of launch/process/states.py "
                          f"(from {current}: {allowed})")
