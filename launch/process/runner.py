"""Running actor processes: the one way ours are spawned, heard, pinged, reaped and stopped,
for the supervisor's watchers (supervisor/watcher.py: many, restarted by policy) and for
`mroute actor` (pod/runner.py: one, restarted by the orchestrator).

An actor runs as `python -m actors ROLE --name NAME --run-dir DIR` in a process group of its
own (stopped as one: TERM, then KILL after the grace), told its parent's pid (it dies with
it) and its control endpoint; a Chat Server's agents' passwords come on its stdin, never
on disk. It has `ready_timeout` seconds to start; from then on it must answer its pings
(liveness.py), or it is UNRESPONSIVE, and killed after the grace. When it has started is
the one thing its two kinds of owner see differently (`started_by`):
- READY_STARTS (the supervisor): once it says READY; pinged only from then;
- ANSWER_STARTS (a pod): once it answers at all (its start() is done); READY is its
  readiness, which the orchestrator asks apart (an MRE waiting for Comm's snapshot is
  alive, not ready), so it is pinged from its spawn and STARTING until READY.
Every change of state goes through `move`, checked against the table (states.py); what an
exit leads to (a restart, a backoff, FATAL; a pod's end) is the owner's.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import orjson

from wire import control
from wire.desking import desk_range
from wire.kernel.loop import Loop

from .channel import ActorChannel
from .liveness import KILL, SILENT, Liveness
from .record import Process
from .states import DEGRADED, RUNNING, STARTING, STOPPING, UNRESPONSIVE, UP, IllegalMove, check_move

if TYPE_CHECKING:
    from ..topology import Topology

log = logging.getLogger("mroute.process")

READY_STARTS, ANSWER_STARTS = "READY", "answer"


class ProcessRunner:
    def __init__(self, loop: Loop, channel: ActorChannel, topology: "Topology", run_dir: Path, *, control: str,
                 moved: Callable[[Process], None], started_by: str = READY_STARTS,
                 output: Callable[[Process, bytes], None] | None = None,
                 killed: Callable[[Process, str], None] | None = None, env: dict[str, str] | None = None):
        """`control`: the endpoint the actors connect to (`channel`'s); `moved(process)` after
        each change of state; `output(process, data)` takes the process's output (b"": its
        end), else it goes where ours goes; `killed(process, why)` after a KILL of ours;
        `env`: more of the actor's environment."""
        self.loop = loop
        self.channel = channel
        self.topology = topology
        self.timings = topology.supervisor
        self.run_dir = run_dir
        self.control = control
        self.moved = moved
        self.started_by = started_by
        self.output = output
        self.killed = killed
        self.env = env or {}
        self.illegal_moves = 0   # moves the table refused (move): each a bug, logged

    def move(self, process: Process, state: str, reason: str = "") -> bool:
        """The one place a process's state changes: checked against the table. A move the
        table does not have is a bug of ours: it is refused, logged and counted, never
        raised into the loop, which would end the supervisor and every actor with it."""
        try:
            check_move(process.name, process.state, state)
        except IllegalMove as bug:
            self.illegal_moves += 1
            log.error("%s (refused; the state stays %s)", bug, process.state)
            return False
        process.state, process.reason = state, reason
        self.moved(process)
        return True

    # starting ---------------------------------------------------------------------------
    def spawn(self, process: Process) -> None:
        env = dict(os.environ, MROUTE_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1", MROUTE_CONTROL=self.control,
                   **self.env)
        credentials = desk_credentials(self.topology, process)
        capture = self.output is not None
        process.proc = subprocess.Popen(
            [sys.executable, "-m", "actors", process.role, "--name", process.name, "--run-dir", str(self.run_dir)],
            stdin=subprocess.PIPE if credentials else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
            env=env, start_new_session=True)  # its own group: stopped as one
        if credentials:  # on its stdin, never on disk: a pipe write may wait for the child to read
            threading.Thread(target=hand_over, args=(process.proc, credentials), daemon=True).start()
        if capture:
            fd = process.proc.stdout.fileno()  # type: ignore[union-attr]
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, lambda p=process: self.read_output(p))
        process.started, process.spawned = time.time(), time.monotonic()
        process.exit_status, process.failure, process.degraded, process.said_ready = None, "", "", False
        process.liveness = None
        process.start_timer = self.loop.call_later(self.timings["ready_timeout"], self.start_overdue, process)
        self.move(process, STARTING)

    def read_output(self, process: Process) -> None:
        proc = process.proc
        if proc is None or proc.stdout is None or self.output is None:
            return
        fd = proc.stdout.fileno()
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:  # end of output: the child has closed it, normally by exiting
            self.loop.remove_reader(fd)
        self.output(process, data)

    def start_overdue(self, process: Process) -> None:
        process.start_timer = None
        if process.state == STARTING:
            awaited = "READY" if self.started_by == READY_STARTS else "answer"
            self.kill(process, f"no {awaited} within {self.timings['ready_timeout']:g} s (supervisor.ready_timeout)")

    # what it says -----------------------------------------------------------------------
    def heard(self, process: Process, verb: str, body: dict[str, Any]) -> None:
        """Anything from the process: it is alive. It has started when it says READY (or,
        ANSWER_STARTS, at its first word); what its answers say of its health (`degraded`:
        why it serves only in part) makes it DEGRADED or RUNNING again; FAILED is why its
        start failed."""
        if verb == control.OK and "degraded" in body:
            process.degraded = str(body["degraded"] or "")
        if verb == control.READY:
            process.said_ready = True
        if process.start_timer is not None and (verb == control.READY or self.started_by == ANSWER_STARTS):
            process.start_timer.cancel()   # started: from now on it must answer its pings
            process.start_timer = None
            process.liveness = Liveness(int(self.timings["ping_misses"]), self.timings["unresponsive_grace"])
        came_back = process.liveness is not None and process.liveness.answered()
        if verb == control.FAILED:
            process.failure = str(body.get("traceback", ""))
            return
        if process.state not in (STARTING, *UP) or (process.state == UNRESPONSIVE and not came_back):
            return   # stopping, or killed for its silence: what it still says changes nothing
        if not process.said_ready:
            state, reason = STARTING, ("answering again" if came_back else "")
        elif process.degraded:
            state, reason = DEGRADED, process.degraded
        else:
            state, reason = RUNNING, {UNRESPONSIVE: "answering again", DEGRADED: "serving again"}.get(process.state, "")
        if state != process.state or (state == DEGRADED and reason != process.reason):
            self.move(process, state, reason)

    def tick(self, process: Process, now: float) -> None:
        """Once per ping interval: note its silence (UNRESPONSIVE, then killed), then ping it.
        Not while it stops; READY_STARTS: not before it has started."""
        liveness = process.liveness
        if process.proc is None or process.state == STOPPING:
            return
        if liveness is None and self.started_by == READY_STARTS:
            return
        verdict = liveness.tick(now) if liveness is not None else None
        if verdict == SILENT:
            self.move(process, UNRESPONSIVE, f"no answer to {liveness.missed} pings")  # type: ignore[union-attr]
        elif verdict == KILL:
            self.kill(process, f"did not answer for {liveness.grace:g} s "  # type: ignore[union-attr]
                               "(supervisor.unresponsive_grace)")
            return
        self.channel.send(process.name, "ping")

    # ending -----------------------------------------------------------------------------
    def stop(self, process: Process, grace: float | None = None, reason: str = "") -> bool:
        """TERM its process group, KILL it if it is still there after `grace`. False when it
        has no process to stop."""
        if process.proc is None:
            return False
        if process.state == STOPPING:  # already on its way; its KILL timer stands
            return True
        grace = self.timings["stop_grace"] if grace is None else grace
        self.signal(process, signal.SIGTERM)
        process.kill_timer = self.loop.call_later(grace, self.kill, process,
                                                  f"still running {grace:g} s after TERM (supervisor.stop_grace)")
        self.move(process, STOPPING, reason)
        return True

    def kill(self, process: Process, why: str) -> None:
        """KILL its process group now, and say why in its failure (unless it said its own)."""
        proc = process.proc
        if proc is None or proc.returncode is not None:
            return
        process.failure = process.failure or f"killed: {why}"
        process.liveness = None   # killed once: its exit decides what comes next
        signal_group(proc.pid, signal.SIGKILL)
        if self.killed is not None:
            self.killed(process, why)

    def signal(self, process: Process, signum: int) -> None:
        if process.proc is not None and process.proc.returncode is None:
            signal_group(process.proc.pid, signum)

    def reap(self, process: Process) -> bool:
        """Whether its process has exited; if so, forget it (the output still in its pipe
        read, what it left in its group killed, its timers cancelled): what follows is the
        caller's."""
        proc = process.proc
        if proc is None or proc.poll() is None:
            return False
        if proc.stdout is not None:
            self.read_output(process)
            self.loop.remove_reader(proc.stdout.fileno())
            proc.stdout.close()
        process.proc, process.exit_status, process.liveness = None, proc.returncode, None
        for timer in (process.start_timer, process.kill_timer):
            if timer:
                timer.cancel()
        process.start_timer = process.kill_timer = None
        signal_group(proc.pid, signal.SIGKILL)  # anything it left in its group goes too
        return True

    def end(self, process: Process) -> None:
        """KILL its process group and wait for it: nothing left behind (reap it after)."""
        proc = process.proc
        if proc is not None:
            self.signal(process, signal.SIGKILL)
            proc.wait()


def desk_credentials(topology: "Topology", process: Process) -> bytes:
    """A simulated Chat Server's agents' passwords: it logs them in as their desks would.
    Handed over on its stdin, never on disk."""
    if process.role != "chat":
        return b""
    actor, _, index = process.name.rpartition(".")
    span = desk_range(topology.actors, actor, int(index))
    return orjson.dumps({a["id"]: a["password"] for a in topology.agents[span.start:span.stop] if "password" in a})


def signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def hand_over(proc: subprocess.Popen[bytes], credentials: bytes) -> None:
    try:
        proc.stdin.write(credentials)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    except (BrokenPipeError, ValueError, OSError):  # it died first: its restart gets them again
        pass
