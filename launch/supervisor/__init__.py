"""The supervisor, in pieces after Circus (design.md sections 2 and 9):

- `arbiter`: the topology and what should run; claims the run directory, owns the watchers,
  tells every state change (state file, events), serves metrics, starts and stops it all.
- `watcher`: one per actor; the only owner of its processes and their states, reconciled
  to the wanted count.
- `flapping`: the restart policy (backoff, FATAL after a crash loop); `liveness`: pings
  missed -> UNRESPONSIVE -> killed. Pure logic, both.
- `controller`: the CLI's requests, every one answered.
- `channel`: the control channel to the actors; `rundir`: the lock and the state file.

What the rest of `launch/` imports from `launch.supervisor` is re-exported here.
"""

from .arbiter import Arbiter, StartError, Supervisor
from .channel import STATS_TIMEOUT
from .controller import CommandError
from .flapping import BACKOFF_CAP, BACKOFF_FIRST, MAX_QUICK_FAILURES, STARTED_AFTER
from .process import (BACKOFF, EXITED, FATAL, RUNNING, STARTING, STOPPED, STOPPING, UNRESPONSIVE, Child, Process,
                      tail)
from .rundir import AlreadyRunning, is_locked, kill_survivors, read_state

__all__ = ["AlreadyRunning", "Arbiter", "BACKOFF", "BACKOFF_CAP", "BACKOFF_FIRST", "Child", "CommandError", "EXITED",
           "FATAL", "MAX_QUICK_FAILURES", "Process", "RUNNING", "STARTED_AFTER", "STARTING", "STATS_TIMEOUT",
           "STOPPED", "STOPPING", "StartError", "Supervisor", "UNRESPONSIVE", "is_locked", "kill_survivors",
           "read_state", "tail"]
