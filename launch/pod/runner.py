"""One actor process in the foreground, run by the process runner every owner of actor
processes shares (launch/process/runner.py), minus what the orchestrator owns: restarts,
placement and counts.

The runner writes the topology the actor reads (binding its tcp endpoints on every
interface: under an orchestrator they name Services, not this host), spawns the actor with
its agents' passwords on stdin, pings it on its control channel, and ends with it:
- the actor fails to start: the runner says why and exits 1;
- it stops answering for the topology's `unresponsive_grace`: killed, exit 1 (the
  orchestrator restarts the pod, as the supervisor would restart the process);
- SIGTERM or SIGINT: the actor is asked to stop (it winds down: a Chat Server signs its
  agents out, Comm commits), KILLed after `stop_grace`; exit 0 if it stopped cleanly;
- it exits by itself: the runner exits with its status.
Its loop owns the control channel: the health port's thread (healthport.py) hands it
questions for the actor (`submit`) and reads only what the loop replaced whole (`health`,
`stats`).
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq

from wire import control
from wire.kernel.loop import Loop
from wire.kernel.rundir import TOPOLOGY

from ..process.channel import ActorChannel
from ..process.record import Process
from ..process.runner import ANSWER_STARTS, ProcessRunner
from ..process.states import DEGRADED, EXITED, RUNNING, STARTING, STOPPING
from ..supervisor.rundir import write_atomically
from ..topology import Topology, short_socket_dir
from .health import Health

log = logging.getLogger("mroute.pod")

Answer = dict[str, Any]


@dataclass(frozen=True)
class Question:
    """A control verb another thread wants asked of the actor; `answered(answer)` is called
    on the runner's loop, or at once when the runner has ended."""
    verb: str
    body: dict[str, Any] | None
    answered: Callable[[Answer], None]


class PodRunner:
    def __init__(self, topology: Topology, instance: str, role: str, run_dir: Path, *, log_json: bool = False,
                 bind_any: bool = False):
        self.topology = topology
        self.timings = topology.supervisor
        self.run_dir = run_dir
        self.log_json = log_json
        self.bind_any = bind_any   # tcp endpoints name Services, not this host: bind every interface
        self.loop = Loop()
        self.ctx = zmq.Context()
        self.process = Process(instance, role)
        self.health = Health(stale_after=max(5.0, 3 * self.timings["ping_interval"]))
        self.stats: tuple[Answer, float] = ({}, 0.0)   # the last stats answer, and when it was asked
        self.stopping = False
        self.exit_code = 0
        self.draining = False                         # set by the health port's thread (/drain), read by the loop
        self.questions: queue.SimpleQueue[Question] = queue.SimpleQueue()   # from the health port's thread
        self._wake_r, self._wake_w = socket.socketpair()   # that thread's way into the loop
        self._wake_r.setblocking(False)

    @property
    def name(self) -> str:
        return self.process.name

    # what other threads call --------------------------------------------------------------
    def submit(self, verb: str, body: dict[str, Any] | None, answered: Callable[[Answer], None]) -> None:
        """From another thread: a control verb for the loop to ask the actor."""
        self.questions.put(Question(verb, body, answered))
        try:
            self._wake_w.send(b"q")
        except OSError:   # the runner is ending: its loop reads no more
            answered({"error": {"reason": f"{self.name} is stopping"}})

    def metrics_view(self) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, float]]:
        """For a scrape: the actor's state, its last stats and their age."""
        stats, asked = self.stats
        age = time.monotonic() - asked if stats else float("inf")
        return [self.process.describe()], ({self.name: stats} if stats else {}), {self.name: age}

    def current_health(self) -> Health:
        """What the loop last wrote, and whether a drain has begun since."""
        health = self.health
        return health if health.draining == self.draining else replace(health, draining=self.draining)

    def keep_stats_asked_at(self, asked: float) -> Callable[[Answer], None]:
        def keep(answer: Answer) -> None:
            """On the loop. An actor that did not answer keeps its last answer: counters never
            go back; an answer older than the one kept is not kept."""
            if "error" not in answer and asked >= self.stats[1]:
                self.stats = (answer, asked)   # replaced whole: the health port's thread reads it
        return keep

    # the run ----------------------------------------------------------------------------
    def run(self) -> int:
        control_dir = Path(tempfile.mkdtemp(prefix="mroute-pod-"))
        try:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                os.chmod(self.run_dir, 0o700)   # the journal, and the password hashes topology.json holds
                write_atomically(self.run_dir / TOPOLOGY, orjson.dumps(
                    {**self.topology.resolved(), "bind_any": self.bind_any,
                     "tap_dir": str(short_socket_dir(self.run_dir))}))
                if self.process.role == "chat":   # its actor's client key under CURVE (an export ships it made)
                    self.topology.chat_keys()
            except OSError as exc:
                log.error("%s: not starting: run directory %s: %s", self.name, self.run_dir, exc.strerror or exc)
                return 1
            self.channel = ActorChannel(self.ctx, self.loop, f"ipc://{control_dir}/control.ipc", self.heard)
            # Its output is ours: the orchestrator's log of this pod or unit.
            self.runner = ProcessRunner(self.loop, self.channel, self.topology, self.run_dir,
                                        control=self.channel.sock.last_endpoint.decode(), moved=self.moved,
                                        started_by=ANSWER_STARTS, killed=self.killed,
                                        env={"MROUTE_LOG_FORMAT": "json"} if self.log_json else {})
            self.loop.handle_signals()
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.loop.on_signal(signum, lambda n=signum: self.stop(signal.Signals(n).name))
            self.loop.on_signal(signal.SIGCHLD, self.reap)
            self.loop.add_reader(self._wake_r.fileno(), self.woken)
            self.runner.spawn(self.process)
            self.loop.call_every(self.timings["ping_interval"], self.ping)
            self.loop.run()
            return self.exit_code
        finally:
            if hasattr(self, "runner"):
                self.runner.end(self.process)
            if hasattr(self, "channel"):
                self.channel.finish_all()   # questions still waiting get their answer now
                self.channel.close()
            self.loop.close()
            self.ctx.term()
            self._wake_r.close()
            self._wake_w.close()
            while not self.questions.empty():   # and those the loop never took
                self.questions.get().answered({"error": {"reason": f"{self.name} is stopping"}})
            shutil.rmtree(control_dir, ignore_errors=True)

    # what the actor says, and what is asked of it -------------------------------------------
    def heard(self, _name: str, verb: str, body: dict[str, Any]) -> None:
        self.runner.heard(self.process, verb, body)
        if verb == control.READY:
            self.refresh_stats()   # the first scrape after READY has every series, also if the actor hangs then

    def ping(self) -> None:
        self.health_now()   # the runner's loop turns: /healthz knows it from the time of this
        self.runner.tick(self.process, time.monotonic())

    def refresh_stats(self) -> None:
        if self.process.proc is not None:
            keep = self.keep_stats_asked_at(time.monotonic())
            self.channel.ask({self.name}, "stats", None, lambda results: keep(results.get(self.name, {})))

    def woken(self) -> None:
        """The health port's thread has put questions in: ask them of the actor."""
        try:
            self._wake_r.recv(4096)
        except BlockingIOError:
            pass
        while not self.questions.empty():
            question = self.questions.get()
            self.channel.ask({self.name}, question.verb, question.body,
                             lambda results, q=question: q.answered(results.get(self.name, {})))

    # the end ----------------------------------------------------------------------------
    def stop(self, why: str) -> None:
        if self.stopping or self.process.proc is None:
            self.loop.stop(why)
            return
        self.stopping = True
        log.info("%s: %s: stopping the actor", self.name, why)
        self.runner.stop(self.process, reason=why)

    def killed(self, process: Process, why: str) -> None:
        log.error("%s: killed: %s", self.name, why)
        self.exit_code = 1

    def reap(self) -> None:
        if not self.runner.reap(self.process):
            return
        status = self.process.exit_status or 0
        if not self.exit_code:   # not killed by us: its own status (a signal is a failure)
            self.exit_code = status if status > 0 else (1 if status < 0 else 0)
        if self.exit_code and not self.stopping:
            log.error("%s exited: %s", self.name, self.process.last_failure() or f"exit status {status}")
        self.runner.move(self.process, EXITED, f"exit status {status}")
        self.loop.stop(f"{self.name} exited")

    # the state the health port shows -------------------------------------------------------
    def moved(self, process: Process) -> None:
        self.health_now()

    def health_now(self) -> None:
        """Replace the health the health port's thread reads, whole."""
        state = self.process.state
        self.health = Health(state=state, reason=self.process.reason, stale_after=self.health.stale_after,
                             answered=self.process.liveness is not None or self.process.said_ready,
                             alive=state in (STARTING, RUNNING, DEGRADED, STOPPING),
                             ready=self.process.said_ready and state in (RUNNING, DEGRADED),
                             draining=self.draining)
