"""A watcher per actor of the topology (Circus's Watcher): the only owner of that actor's
processes. It keeps as many as the arbiter wants, restarts them as the flapping policy says
(backoff, FATAL after a crash loop) and writes their output to their log files
(logfile.py); the process runner (launch/process/runner.py) spawns, hears, pings, reaps and
stops each one, and moves its state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from wire.kernel.loop import Loop, Timer
from wire.kernel.rundir import log_path

from ..process.channel import ActorChannel
from ..process.record import Process
from ..process.runner import READY_STARTS, ProcessRunner
from ..process.states import BACKOFF, EXITED, FATAL, STARTING, STOPPED, STOPPING, UP, move_allowed
from ..topology import Topology
from .flapping import Flapping
from .logfile import LogFile


@dataclass
class Watched(Process):
    """A process of the supervisor's, with what its watcher keeps beside it."""
    log_path: Path | None = None
    log: LogFile | None = None     # its output, as its watcher writes it
    partial: bytes = b""           # its output's last line, until it ends
    flapping: Flapping = field(default_factory=Flapping)
    backoff_timer: Timer | None = None

    @property
    def log_dropped_bytes(self) -> int:
        return self.log.dropped_bytes if self.log is not None else 0


class Watcher:
    def __init__(self, topology: Topology, name: str, loop: Loop, channel: ActorChannel,
                 changed: Callable[[Process], None], emit_line: Callable[[str, bytes], None]):
        """`changed(process)` after each change of a process's state; `emit_line(instance,
        line)` for each line of their output."""
        self.topology = topology
        self.name = name
        self.role = topology.actors[name]["role"]
        self.loop = loop
        self.emit_line = emit_line
        self.stopping = False   # the supervisor is stopping: an exit is no reason to restart
        self.runner = ProcessRunner(loop, channel, topology, topology.run_dir,
                                    control=topology.control_endpoint("actors"), moved=changed,
                                    started_by=READY_STARTS, output=self.on_output)  # type: ignore[arg-type]
        self.processes: dict[str, Watched] = {}   # instance name -> process, by index
        self.reconcile(spawn=False)

    @property
    def wanted(self) -> int:
        return int(self.topology.actors[self.name]["count"])

    @property
    def timings(self) -> dict[str, float]:
        return self.topology.supervisor

    # how many ---------------------------------------------------------------------------
    def reconcile(self, spawn: bool = True) -> tuple[list[Watched], list[Watched]]:
        """As many processes as wanted: the missing ones are made (and spawned), the extra
        ones stopped, and forgotten once they are gone. Returns (added, extra)."""
        added, extra = [], []
        for index in range(1, self.wanted + 1):
            instance = f"{self.name}.{index}"
            if instance not in self.processes:
                process = Watched(instance, self.role, log_path=log_path(self.topology.run_dir, instance))
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

    def forget(self, process: Watched) -> None:
        if process.backoff_timer:
            process.backoff_timer.cancel()
        if process.log is not None:
            process.log.close()
        self.processes.pop(process.name, None)

    # one process ------------------------------------------------------------------------
    def spawn(self, process: Watched) -> None:
        if process.log is None:  # opened at its first write: a full disk is no reason not to start
            process.log = LogFile(process.log_path, int(self.timings["log_max_bytes"]),  # type: ignore[arg-type]
                                  int(self.timings["log_keep"]))
        self.runner.spawn(process)

    def on_output(self, process: Watched, data: bytes) -> None:
        """What the process wrote: to its log file, and line by line to the arbiter's echo."""
        if not data:  # its end: the last line, if it had no newline
            if process.partial:
                self.emit_line(process.name, process.partial)
                process.partial = b""
            return
        process.log.write(data)  # type: ignore[union-attr]
        lines = (process.partial + data).split(b"\n")
        process.partial = lines.pop()
        for line in lines:
            self.emit_line(process.name, line)

    def heard(self, process: Watched, verb: str, body: dict[str, Any]) -> None:
        self.runner.heard(process, verb, body)

    def ping(self, now: float) -> None:
        """Once per ping interval: note who has been silent, then ask everyone again."""
        for process in list(self.processes.values()):
            self.runner.tick(process, now)

    def reap(self) -> None:
        for process in list(self.processes.values()):
            if self.runner.reap(process):
                self.exited(process)
        if len(self.processes) > self.wanted:
            self.reconcile(spawn=False)

    def exited(self, process: Watched) -> None:
        """Its process is gone: STOPPED if asked to stop, else a restart after a backoff, or
        FATAL after a crash loop."""
        if process.state == STOPPING or self.stopping:
            self.runner.move(process, STOPPED)
            return
        was_up = process.state in UP
        verdict = process.flapping.exited(time.monotonic() - process.spawned, was_up)
        if was_up:
            self.runner.move(process, EXITED)
        if verdict.fatal:
            self.runner.move(process, FATAL)
            return
        process.backoff_timer = self.loop.call_later(verdict.delay, self.restart_after_backoff, process)
        self.runner.move(process, BACKOFF)

    def restart_after_backoff(self, process: Watched) -> None:
        if process.state == BACKOFF and not self.stopping:
            process.restarts += 1
            self.spawn(process)

    def stop(self, process: Watched, grace: float | None = None) -> None:
        """TERM its process group; KILL it if it is still there after `grace`."""
        if process.backoff_timer:
            process.backoff_timer.cancel()
        if not self.runner.stop(process, grace) and process.state != STOPPED:
            self.runner.move(process, STOPPED)

    def start(self, process: Watched) -> None:
        """An operator's start: a fresh budget of failures."""
        if process.state == BACKOFF and process.backoff_timer:
            process.backoff_timer.cancel()
        if process.proc is None and move_allowed(process.state, STARTING):
            process.flapping.reset()
            self.spawn(process)

    def end(self) -> None:
        """KILL every process left and wait for it (the supervisor's last resort)."""
        for process in self.processes.values():
            self.runner.end(process)
