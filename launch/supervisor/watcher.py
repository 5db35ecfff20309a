"""A watcher per actor of the topology (Circus's Watcher): the only owner of that actor's
processes. It spawns them (own process group, parent-death signal, READY or traceback),
captures their output (logfile.py), reaps them, restarts them as the flapping policy says,
pings them, kills the one that stopped answering, shows as DEGRADED one that says it serves
only in part, and keeps as many as the arbiter wants."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson

from wire import control
from wire.desking import desk_range
from wire.kernel.rundir import log_path

from .liveness import KILL, SILENT, Liveness
from .logfile import LogFile
from .process import (BACKOFF, DEGRADED, EXITED, FATAL, RUNNING, STARTING, STOPPED, STOPPING, UNRESPONSIVE, UP,
                      Process)

if TYPE_CHECKING:
    from .arbiter import Arbiter


class Watcher:
    def __init__(self, arbiter: "Arbiter", name: str, role: str):
        self.arbiter = arbiter
        self.loop = arbiter.loop
        self.topology = arbiter.topology
        self.name = name
        self.role = role
        self.processes: dict[str, Process] = {}   # instance name -> process, by index
        self.reconcile(spawn=False)

    @property
    def wanted(self) -> int:
        return int(self.topology.actors[self.name]["count"])

    @property
    def timings(self) -> dict[str, float]:
        return self.topology.supervisor

    def set_state(self, process: Process, state: str, reason: str = "") -> None:
        process.state, process.reason = state, reason
        self.arbiter.changed(process)

    # how many ---------------------------------------------------------------------------
    def reconcile(self, spawn: bool = True) -> tuple[list[Process], list[Process]]:
        """As many processes as wanted: the missing ones are made (and spawned), the extra
        ones stopped, and forgotten once they are gone. Returns (added, extra)."""
        added, extra = [], []
        for index in range(1, self.wanted + 1):
            instance = f"{self.name}.{index}"
            if instance not in self.processes:
                process = Process(instance, self.role, log_path=log_path(self.arbiter.run_dir, instance))
                self.processes[instance] = process
                added.append(process)
                if spawn:
                    self.spawn(process)
        for instance, process in list(self.processes.items()):
            if int(instance.rpartition(".")[2]) > self.wanted:
                extra.append(process)
                if process.proc is None and process.state in (STOPPED, EXITED, FATAL, BACKOFF):
                    self.forget(process)
                else:
                    self.stop(process)
        return added, extra

    def forget(self, process: Process) -> None:
        if process.backoff_timer:
            process.backoff_timer.cancel()
        if process.log is not None:
            process.log.close()
        self.processes.pop(process.name, None)

    # one process ------------------------------------------------------------------------
    def spawn(self, process: Process) -> None:
        env = dict(os.environ, MROUTE_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1",
                   MROUTE_CONTROL=self.topology.control_endpoint("actors"))
        if process.log is None:  # opened at its first write: a full disk is no reason not to start
            process.log = LogFile(process.log_path, int(self.timings["log_max_bytes"]),  # type: ignore[arg-type]
                                  int(self.timings["log_keep"]))
        credentials = desk_credentials(self.topology, self.name, process)
        process.proc = subprocess.Popen(
            [sys.executable, "-m", "actors", process.role, "--name", process.name,
             "--run-dir", str(self.arbiter.run_dir)],
            stdin=subprocess.PIPE if credentials else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)  # its own group: stopped as one
        if credentials:  # on its stdin, never on disk: a pipe write may wait for the child to read
            threading.Thread(target=hand_over, args=(process.proc, credentials), daemon=True).start()
        fd = process.proc.stdout.fileno()  # type: ignore[union-attr]
        os.set_blocking(fd, False)
        self.loop.add_reader(fd, lambda p=process: self.on_output(p))
        process.started, process.exit_status, process.failure, process.liveness = time.time(), None, "", None
        process.spawned = time.monotonic()
        process.degraded = ""
        process.ready_timer = self.loop.call_later(self.timings["ready_timeout"], self.ready_timeout, process)
        self.set_state(process, STARTING)

    def on_output(self, process: Process) -> None:
        proc = process.proc
        if proc is None or proc.stdout is None:
            return
        fd = proc.stdout.fileno()
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:  # end of output: the child has closed it, normally by exiting
            self.loop.remove_reader(fd)
            if process.partial:
                self.arbiter.emit_line(process.name, process.partial)
                process.partial = b""
            return
        process.log.write(data)  # type: ignore[union-attr]
        lines = (process.partial + data).split(b"\n")
        process.partial = lines.pop()
        for line in lines:
            self.arbiter.emit_line(process.name, line)

    def heard(self, process: Process, verb: str, body: dict[str, Any]) -> None:
        """Anything from the process: it is alive; READY and FAILED change its state, and so
        does what an answer says of its health (`degraded`: why it serves only in part)."""
        if verb == control.OK and "degraded" in body:
            process.degraded = str(body["degraded"] or "")
        if process.liveness is not None and process.liveness.answered() and process.state == UNRESPONSIVE:
            self.set_state(process, *self.serving(process, "answering again"))
        if verb == control.READY and process.state == STARTING:
            if process.ready_timer:
                process.ready_timer.cancel()
            process.liveness = Liveness(int(self.timings["ping_misses"]), self.timings["unresponsive_grace"])
            self.set_state(process, RUNNING)
        elif verb == control.FAILED:
            process.failure = body.get("traceback", "")
        elif process.state == RUNNING and process.degraded:
            self.set_state(process, DEGRADED, process.degraded)
        elif process.state == DEGRADED and process.degraded != process.reason:
            self.set_state(process, *self.serving(process, "serving again"))

    @staticmethod
    def serving(process: Process, why_running: str) -> tuple[str, str]:
        """The state of a process that answers: DEGRADED with what it says, else RUNNING."""
        return (DEGRADED, process.degraded) if process.degraded else (RUNNING, why_running)

    def ready_timeout(self, process: Process) -> None:
        if process.state == STARTING:
            process.failure = process.failure or f"no READY within {self.timings['ready_timeout']:.0f} s"
            self.signal(process, signal.SIGKILL)

    def ping(self, now: float) -> None:
        """Once per ping interval: note who has been silent, then ask everyone again."""
        for process in list(self.processes.values()):
            liveness = process.liveness
            if process.state not in UP or liveness is None:
                continue
            verdict = liveness.tick(now)
            if verdict == SILENT:
                self.set_state(process, UNRESPONSIVE, f"no answer to {liveness.missed} pings")
            elif verdict == KILL:
                process.liveness = None  # killed once; its exit restarts it
                process.failure = f"killed: unresponsive for {liveness.grace:g} s"
                self.signal(process, signal.SIGKILL)
                continue
            self.arbiter.channel.send(process.name, "ping")

    def reap(self) -> None:
        for process in list(self.processes.values()):
            proc = process.proc
            if proc is None or proc.poll() is None:
                continue
            self.on_output(process)
            if proc.stdout is not None:
                self.loop.remove_reader(proc.stdout.fileno())
                proc.stdout.close()
            process.proc, process.exit_status, process.liveness = None, proc.returncode, None
            for timer in (process.ready_timer, process.kill_timer):
                if timer:
                    timer.cancel()
            signal_group(proc.pid, signal.SIGKILL)  # anything it left in its group goes too
            self.exited(process)
        if len(self.processes) > self.wanted:
            self.reconcile(spawn=False)

    def exited(self, process: Process) -> None:
        if process.state == STOPPING or self.arbiter.stopping:
            self.set_state(process, STOPPED)
            return
        was_up = process.state in UP
        verdict = process.flapping.exited(time.monotonic() - process.spawned, was_up)
        if was_up:
            self.set_state(process, EXITED)
        if verdict.fatal:
            self.set_state(process, FATAL)
            return
        process.backoff_timer = self.loop.call_later(verdict.delay, self.restart_after_backoff, process)
        self.set_state(process, BACKOFF)

    def restart_after_backoff(self, process: Process) -> None:
        if process.state == BACKOFF and not self.arbiter.stopping:
            process.restarts += 1
            self.spawn(process)

    def stop(self, process: Process, grace: float | None = None) -> None:
        """TERM its process group; KILL it if it is still there after `grace`."""
        if process.backoff_timer:
            process.backoff_timer.cancel()
        if process.proc is None:
            if process.state != STOPPED:
                self.set_state(process, STOPPED)
            return
        if process.state == STOPPING:  # already on its way; its KILL timer stands
            return
        self.signal(process, signal.SIGTERM)
        process.kill_timer = self.loop.call_later(self.timings["stop_grace"] if grace is None else grace,
                                                  self.signal, process, signal.SIGKILL)
        self.set_state(process, STOPPING)

    def start(self, process: Process) -> None:
        """An operator's start: a fresh budget of failures."""
        if process.state == BACKOFF and process.backoff_timer:
            process.backoff_timer.cancel()
        if process.proc is None and process.state in (STOPPED, EXITED, FATAL, BACKOFF):
            process.flapping.reset()
            self.spawn(process)

    def signal(self, process: Process, signum: int) -> None:
        if process.proc is not None and process.proc.returncode is None:
            signal_group(process.proc.pid, signum)


def desk_credentials(topology: Any, actor: str, process: Process) -> bytes:
    """A simulated Chat Server's agents' passwords: it logs them in as their desks would.
    Handed over on its stdin, never on disk."""
    if process.role != "chat":
        return b""
    span = desk_range(topology.actors, actor, int(process.name.rpartition(".")[2]))
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
