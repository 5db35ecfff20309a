"""Whether a running actor still answers (zeromq-rules 11; the Guide's Paranoid Pirate).

Whoever runs the actor (launch/process/runner.py: the supervisor, or a pod's runner) pings
it each interval on its control channel; anything the actor sends counts as an answer.
`misses` intervals in a row without one make it UNRESPONSIVE; still so after `grace`
seconds, it is killed (and restarted like a crashed one, by the supervisor or the
orchestrator). Pure logic: the caller brings the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

# What `tick` asks of its caller.
FINE, SILENT, KILL = "fine", "silent", "kill"


@dataclass
class Liveness:
    misses: int                    # ticks in a row without an answer that make it silent
    grace: float                   # seconds silent before it is killed
    heard: bool = True             # something arrived since the last tick
    missed: int = 0                # ticks in a row without an answer
    silent_since: float | None = None

    @property
    def unresponsive(self) -> bool:
        return self.silent_since is not None

    def answered(self) -> bool:
        """The actor sent something. True when that ends its silence."""
        self.heard, self.missed = True, 0
        was, self.silent_since = self.silent_since, None
        return was is not None

    def tick(self, now: float) -> str:
        """Once per ping interval, before the next ping goes out: FINE, SILENT (it has just
        missed its last allowed ping), or KILL (silent for the whole grace)."""
        if self.heard:
            self.heard = False
            return FINE
        self.missed += 1
        if self.silent_since is None:
            if self.missed < self.misses:
                return FINE
            self.silent_since = now
            return SILENT
        return KILL if now - self.silent_since >= self.grace else FINE
