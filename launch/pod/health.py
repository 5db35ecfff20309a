"""How the actor of `mroute actor` is, as its health port says it (healthport.py): what the
runner's loop last wrote, replaced whole (the port reads it from a thread of its own), and
what the orchestrator's probes make of it.

- live (`/healthz`): once the actor answers its pings (its start() is done: Comm's journal
  loaded) and while it does; not before, once it has stopped answering, or has exited, nor
  when the runner's loop itself has not looked at it for `stale_after` seconds;
- ready (`/readyz`): once the actor said READY (its sockets are up and its state loaded:
  Comm's journal, the MRE's snapshot from Comm, a Chat Server's confirmed subscription) and
  while it is live; not while it drains.
Each verdict comes with the state in words."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Health:
    state: str = "STARTING"        # the process's state (launch/process/states.py)
    reason: str = ""
    alive: bool = True             # not known to be hung or gone
    answered: bool = False         # it has answered since it started: its start() is done
    ready: bool = False
    draining: bool = False
    stale_after: float = 5.0       # seconds without a word from the runner's loop: the runner is hung
    at: float = field(default_factory=time.monotonic)   # when the runner's loop wrote this

    def live(self, now: float) -> tuple[bool, str]:
        if now - self.at > self.stale_after:
            return False, f"the runner has not looked at the actor for {now - self.at:.0f} s"
        if not self.answered and self.alive:   # what the startup probe waits for
            return False, f"starting: no answer yet ({self.describe()})"
        return self.alive, self.describe()

    def readiness(self, now: float) -> tuple[bool, str]:
        alive, why = self.live(now)
        if not alive:
            return False, why
        if self.draining:
            return False, f"draining ({self.describe()})"
        return self.ready, self.describe() if self.ready else f"not READY yet ({self.describe()})"

    def describe(self) -> str:
        return f"{self.state}: {self.reason}" if self.reason else self.state
