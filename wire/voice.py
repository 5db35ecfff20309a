"""The voice side's vocabulary, after Cisco Finesse (protocol.md 2.3-2.4): the agent states
the Generic Connector reports, the states of its dialogs and of their participants, its
call types, and the status its `System` event gives. The GC speaks it; Comm and the
console read it."""

from __future__ import annotations

# Voice agent states (2.4). LOGIN is transient: never reported.
LOGOUT = "LOGOUT"
NOT_READY = "NOT_READY"
READY = "READY"
RESERVED = "RESERVED"                                    # a call rings
RESERVED_OUTBOUND = "RESERVED_OUTBOUND"                  # a preview accepted: its number rings
RESERVED_OUTBOUND_PREVIEW = "RESERVED_OUTBOUND_PREVIEW"  # a preview offered
TALKING = "TALKING"
HOLD = "HOLD"
WORK = "WORK"                                            # wrap-up, then NOT_READY
WORK_READY = "WORK_READY"                                # wrap-up, then READY
UNKNOWN = "UNKNOWN"
AGENT_STATES = (LOGOUT, NOT_READY, READY, RESERVED, RESERVED_OUTBOUND, RESERVED_OUTBOUND_PREVIEW, TALKING, HOLD,
                WORK, WORK_READY, UNKNOWN)

# An agent with a call ringing, talking or on hold: its interruptible MRDs are INTERRUPTED (2.5).
ON_CALL = frozenset({RESERVED, RESERVED_OUTBOUND, RESERVED_OUTBOUND_PREVIEW, TALKING, HOLD})
WRAPPING_UP = frozenset({WORK, WORK_READY})

# Dialog states (2.4); a participant's are these and HELD, WRAP_UP.
INITIATING = "INITIATING"
INITIATED = "INITIATED"
ALERTING = "ALERTING"
ACTIVE = "ACTIVE"
FAILED = "FAILED"
DROPPED = "DROPPED"
ACCEPTED = "ACCEPTED"                                    # a preview accepted
HELD = "HELD"
WRAP_UP = "WRAP_UP"

# A dialog or a participant in one of these is over.
ENDED = frozenset({DROPPED, FAILED})

# Call types (2.4).
ACD_IN = "ACD_IN"
OTHER_IN = "OTHER_IN"
OUT = "OUT"
AGENT_INSIDE = "AGENT_INSIDE"
OUTBOUND = "OUTBOUND"
OUTBOUND_PREVIEW = "OUTBOUND_PREVIEW"
TRANSFER = "TRANSFER"
CONSULT = "CONSULT"
CONFERENCE = "CONFERENCE"

# System.status (2.3).
IN_SERVICE = "IN_SERVICE"
OUT_OF_SERVICE = "OUT_OF_SERVICE"
