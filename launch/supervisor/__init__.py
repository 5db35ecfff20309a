"""The supervisor, in pieces after Circus (design.md sections 2 and 9):

- `arbiter`: the topology and what should run; claims the run directory, owns the watchers,
  tells every state change (state file, events), serves metrics, starts and stops it all.
- `watcher`: one per actor; the only owner of its processes and their states, reconciled
  to the wanted count.
- `flapping`: the restart policy (backoff, FATAL after a crash loop); `liveness`: pings
  missed -> UNRESPONSIVE -> killed. Pure logic, both. `logfile`: an actor's captured
  output, rotated, a failed write dropped and counted.
- `controller`: the CLI's requests, every one answered.
- `channel`: the control channel to the actors; `rundir`: the lock, the state file and the
  supervisor's other files, written again later when a write fails.

What the rest of `launch/` imports from `launch.supervisor` is re-exported here.
"""

from .arbiter import Arbiter, StartError, Supervisor
from .channel import STATS_TIMEOUT
from .controller import CommandError
from .flapping import BACKOFF_CAP, BACKOFF_FIRST, MAX_QUICK_FAILURES, STARTED_AFTER
from .process import (BACKOFF, DEGRADED, EXITED, FATAL, RUNNING, STARTING, STOPPED, STOPPING, UNRESPONSIVE, Child,
                      Process, tail)
from .rundir import AlreadyRunning, is_locked, kill_survivors, read_state, running_already

__all__ = ["AlreadyRunning", "Arbiter", "BACKOFF", "BACKOFF_CAP", "BACKOFF_FIRST", "Child", "CommandError", "DEGRADED",
           "EXITED",
           "FATAL", "MAX_QUICK_FAILURES", "Process", "RUNNING", "STARTED_AFTER", "STARTING", "STATS_TIMEOUT",
           "STOPPED", "STOPPING", "StartError", "Supervisor", "UNRESPONSIVE", "is_locked", "kill_survivors",
           "read_state", "running_already", "tail"]
