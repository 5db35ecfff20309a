"""Agent and task states, close codes and error codes: protocol.md sections 1.2-1.4."""

from __future__ import annotations

# Error codes (protocol.md 1.2).
BAD_MESSAGE = "BAD_MESSAGE"
MISSING_FIELD = "MISSING_FIELD"
BAD_FIELD = "BAD_FIELD"
AUTHORIZATION_FAILURE = "AUTHORIZATION_FAILURE"
NOT_FOUND = "NOT_FOUND"
INVALID_STATE = "INVALID_STATE"
GENERAL_ERROR = "GENERAL_ERROR"
OVERLOADED = "OVERLOADED"  # ours: Comm holds as many live tasks as it is allowed; try again later
# ours: Comm cannot make a change durable now (its journal cannot be written: disk full,
# read-only, I/O error); nothing was changed, queries are still answered: try again later
UNAVAILABLE = "UNAVAILABLE"
ERROR_CODES = (BAD_MESSAGE, MISSING_FIELD, BAD_FIELD, AUTHORIZATION_FAILURE, NOT_FOUND, INVALID_STATE, GENERAL_ERROR,
               OVERLOADED, UNAVAILABLE)

# Agent states per MRD (1.3).
LOGIN = "LOGIN"
NOT_READY = "NOT_READY"
READY = "READY"
RESERVED = "RESERVED"
ACTIVE = "ACTIVE"
BUSY = "BUSY"
WORK_READY = "WORK_READY"
INTERRUPTED = "INTERRUPTED"
PENDING_NOT_READY = "PENDING_NOT_READY"
LOGOUT = "LOGOUT"
UNKNOWN = "UNKNOWN"

AGENT_STATES = (LOGIN, NOT_READY, READY, RESERVED, ACTIVE, BUSY, WORK_READY, INTERRUPTED,
                PENDING_NOT_READY, LOGOUT, UNKNOWN)

# state -> the states it may move to (1.3). UNKNOWN may move anywhere.
AGENT_MOVES: dict[str, frozenset[str]] = {
    LOGIN: frozenset({NOT_READY}),
    NOT_READY: frozenset({READY, LOGOUT, INTERRUPTED, NOT_READY}),
    READY: frozenset({NOT_READY, RESERVED, INTERRUPTED}),
    RESERVED: frozenset({ACTIVE, READY, NOT_READY, INTERRUPTED}),
    ACTIVE: frozenset({WORK_READY, READY, BUSY, INTERRUPTED, RESERVED, PENDING_NOT_READY}),
    BUSY: frozenset({ACTIVE, INTERRUPTED, PENDING_NOT_READY}),
    WORK_READY: frozenset({READY, INTERRUPTED}),
    INTERRUPTED: frozenset({NOT_READY, READY, RESERVED, ACTIVE, BUSY, WORK_READY}),
    PENDING_NOT_READY: frozenset({NOT_READY}),
    LOGOUT: frozenset({LOGIN}),
    UNKNOWN: frozenset(AGENT_STATES),
}

# What an agent may ask for; every other state is set by the system.
AGENT_REQUESTABLE = frozenset({NOT_READY, READY, LOGOUT})

# States in which the MRE may offer an agent work, capacity permitting.
ROUTABLE = frozenset({READY, RESERVED, ACTIVE, BUSY})


def agent_move_allowed(current: str, target: str) -> bool:
    """Whether the table of protocol.md 1.3 allows `current -> target`. LOGOUT is always
    allowed: an agent may sign out from any state."""
    return target == LOGOUT or target in AGENT_MOVES.get(current, frozenset())


# Task states (1.4).
QUEUED = "QUEUED"
WRAP_UP = "WRAP_UP"
CLOSED = "CLOSED"
TASK_STATES = (QUEUED, RESERVED, ACTIVE, WRAP_UP, CLOSED)

TASK_MOVES: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RESERVED, CLOSED}),
    RESERVED: frozenset({ACTIVE, QUEUED, CLOSED}),
    ACTIVE: frozenset({WRAP_UP, QUEUED, CLOSED}),
    WRAP_UP: frozenset({CLOSED, QUEUED}),
    CLOSED: frozenset(),
}

# Close codes (1.4).
DONE = "DONE"
CANCELLED = "CANCELLED"
NO_AGENT_AVAILABLE = "NO_AGENT_AVAILABLE"
FORCE_CLOSED = "FORCE_CLOSED"
RONA = "RONA"
AGENT_LOGOUT = "AGENT_LOGOUT"
TRANSFERRED = "TRANSFERRED"
TASK_CODES = (DONE, CANCELLED, NO_AGENT_AVAILABLE, FORCE_CLOSED, RONA, AGENT_LOGOUT, TRANSFERRED)

# Codes a Chat Server may give when it closes a task: the agent finished, or the customer left.
CLIENT_CLOSE_CODES = frozenset({DONE, CANCELLED})

# TaskAgentSelected.Status when an agent was chosen (1.4).
SELECTED_RESERVED = RESERVED
