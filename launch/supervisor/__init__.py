"""The supervisor, in pieces after Circus (design.md sections 2 and 9):

- `arbiter`: the topology and what should run; claims the run directory, owns the watchers,
  tells every state change (state file, events), serves metrics, starts and stops it all.
- `watcher`: one per actor; the only owner of its processes, kept to the wanted count and
  restarted by the `flapping` policy (backoff, FATAL after a crash loop: pure logic). Each
  process is run by the process runner every owner of actor processes shares
  (launch/process/: spawn, control channel, pings, reaping, stopping, the state table).
- `logfile`: an actor's captured output, rotated, a failed write dropped and counted.
- `controller`: the CLI's requests, every one answered.
- `rundir`: the lock, the state file and the supervisor's other files, written again later
  when a write fails.

What the rest of `launch/` imports from `launch.supervisor` is re-exported here.
"""

from .arbiter import StartError, Supervisor
from .rundir import AlreadyRunning, is_locked, kill_survivors, read_state, running_already

__all__ = ["AlreadyRunning", "StartError", "Supervisor", "is_locked", "kill_survivors", "read_state",
           "running_already"]
