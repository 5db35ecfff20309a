"""One actor process in the foreground, the way a watcher runs one (supervisor/watcher.py),
minus what the orchestrator owns: restarts, placement and counts.

The runner writes the topology the actor reads (binding its tcp endpoints on every
interface: under an orchestrator they name Services, not this host), spawns the actor with
its agents' passwords on stdin, pings it on its control channel, and ends with it:
- the actor fails to start: the runner says why and exits 1;
- it stops answering for the topology's `unresponsive_grace`: killed, exit 1 (the
  orchestrator restarts the pod, as the supervisor would restart the process);
- SIGTERM or SIGINT: the actor is asked to stop (it winds down: a Chat Server signs its
  agents out, Comm commits), KILLed after `stop_grace`; exit 0 if it stopped cleanly;
- it exits by itself: the runner exits with its status.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq

from wire.kernel.loop import Loop
from wire.kernel.rundir import TOPOLOGY
from wire import control

from ..supervisor.channel import STATS_TIMEOUT, ActorChannel
from ..supervisor.liveness import KILL, SILENT, Liveness
from ..supervisor.process import DEGRADED, EXITED, RUNNING, STARTING, STOPPING, UNRESPONSIVE, Process
from ..supervisor.rundir import write_atomically
from ..supervisor.watcher import desk_credentials, hand_over, signal_group
from ..topology import Topology, short_socket_dir
from .health import Health

log = logging.getLogger("mroute.pod")

FRESH_S = 1.0           # a scrape shows stats at most this old: older, it asks the actor again ...
SCRAPE_WAIT_S = 1.0     # ... waiting at most this long for the answer (else the last, its age said)
DRAIN_POLL = 0.5        # seconds between looks at a draining Chat Server's open chats


@dataclass
class Request:
    """A control verb the HTTP thread wants asked of the actor, and its answer."""
    verb: str
    body: dict[str, Any] | None
    then: Callable[[dict[str, Any]], None] | None = None   # on the loop, with the answer, however late
    answer: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    asked: float = field(default_factory=time.monotonic)

    def finish(self, answer: dict[str, Any]) -> None:
        if self.then is not None:
            self.then(answer)
        self.answer = answer
        self.done.set()


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
        self.stats: tuple[dict[str, Any], float] = ({}, 0.0)   # the last stats answer, and when it was asked
        self.stats_request: Request | None = None             # a scrape's, while it is asked
        self.said_ready = False
        self.stopping = False
        self.exit_code = 0
        self.first_answer: Any = None                 # the timer of the start's deadline
        self.draining = False                         # set by the HTTP thread (/drain), read by the loop
        self.requests: queue.SimpleQueue[Request] = queue.SimpleQueue()   # from the HTTP thread
        self._wake_r, self._wake_w = socket.socketpair()   # the HTTP thread's way into the loop
        self._wake_r.setblocking(False)

    @property
    def name(self) -> str:
        return self.process.name

    # what the health server's thread reads ----------------------------------------------
    def metrics_view(self) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, float]]:
        """On the HTTP thread, for a scrape: the actor's state, its stats and their age. Stats
        older than FRESH_S are asked again first, waiting at most SCRAPE_WAIT_S from the
        question: a hung actor's last answer is shown at once, its age saying how old."""
        if time.monotonic() - self.stats[1] > FRESH_S and self.process.proc is not None:
            request = self.stats_request
            if request is None or request.done.is_set():   # one at a time: scrapes during a hang pile up nothing
                asked = time.monotonic()
                request = self.stats_request = self.submit("stats", None, then=self.keep_stats_asked_at(asked))
            request.done.wait(max(0.0, request.asked + SCRAPE_WAIT_S - time.monotonic()))
        stats, asked = self.stats
        age = time.monotonic() - asked if stats else float("inf")
        return [self.process.describe()], ({self.name: stats} if stats else {}), {self.name: age}

    def ask(self, verb: str, body: dict[str, Any] | None = None, timeout: float = STATS_TIMEOUT + 1) -> dict[str, Any]:
        """On the HTTP thread: a control verb to the actor, through the loop (which owns the
        control socket); its answer, or {"error": {"reason": ...}}."""
        request = self.submit(verb, body)
        if not request.done.wait(timeout):
            return {"error": {"reason": f"{self.name} did not answer {verb} within {timeout:g} s"}}
        return request.answer

    def submit(self, verb: str, body: dict[str, Any] | None,
               then: Callable[[dict[str, Any]], None] | None = None) -> Request:
        """On the HTTP thread: hand a control verb to the loop; its answer comes in the request."""
        request = Request(verb, body, then)
        self.requests.put(request)
        try:
            self._wake_w.send(b"r")
        except OSError:   # the runner is ending: its loop reads no more
            request.finish({"error": {"reason": f"{self.name} is stopping"}})
        return request

    def drain(self, timeout: float) -> str:
        """On the HTTP thread (the preStop hook): not ready from now on; a Chat Server takes
        no new customers and the chats under way go on to their end (bounded)."""
        self.draining = True
        if self.process.role != "chat":   # Comm, the MRE, the GC: nothing of theirs to finish first
            return f"{self.name} drained"
        deadline = time.monotonic() + timeout
        self.ask("load", {"rate": 0})
        while time.monotonic() < deadline:
            stats = self.ask("stats")
            if "error" not in stats and not stats.get("open", 0) and not stats.get("waiting", 0):
                return f"{self.name} drained"
            if self.process.proc is None:
                return f"{self.name} exited while draining"
            time.sleep(DRAIN_POLL)   # the HTTP thread's own pace: nothing on it to wait for
        return f"{self.name} still busy after {timeout:g} s: stopping it anyway"

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
            self.loop.handle_signals()
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.loop.on_signal(signum, lambda n=signum: self.stop(signal.Signals(n).name))
            self.loop.on_signal(signal.SIGCHLD, self.reap)
            self.loop.add_reader(self._wake_r.fileno(), self.woken)
            self.spawn()
            self.loop.call_every(self.timings["ping_interval"], self.ping)
            self.loop.run()
            return self.exit_code
        finally:
            proc = self.process.proc
            if proc is not None and proc.poll() is None:
                signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            if hasattr(self, "channel"):
                self.channel.finish_all()   # HTTP threads still waiting get their answer now
                self.channel.close()
            self.loop.close()
            self.ctx.term()
            self._wake_r.close()
            self._wake_w.close()
            shutil.rmtree(control_dir, ignore_errors=True)

    def spawn(self) -> None:
        env = dict(os.environ, MROUTE_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1",
                   MROUTE_CONTROL=self.channel.sock.last_endpoint.decode())
        if self.log_json:
            env["MROUTE_LOG_FORMAT"] = "json"
        process = self.process
        credentials = desk_credentials(self.topology, self.name.rpartition(".")[0], process)
        # Its output is ours: the orchestrator's log of this pod or unit.
        process.proc = subprocess.Popen(
            [sys.executable, "-m", "actors", process.role, "--name", process.name, "--run-dir", str(self.run_dir)],
            stdin=subprocess.PIPE if credentials else subprocess.DEVNULL, env=env, start_new_session=True)
        if credentials:
            threading.Thread(target=hand_over, args=(process.proc, credentials), daemon=True).start()
        process.started = time.time()
        self.first_answer = self.loop.call_later(self.timings["ready_timeout"], self.never_answered)
        self.set_state(STARTING)

    # what the actor says ----------------------------------------------------------------
    def heard(self, _name: str, verb: str, body: dict[str, Any]) -> None:
        process = self.process
        if self.first_answer is not None:   # start() has returned: from now on it must answer pings
            self.first_answer.cancel()
            self.first_answer = None
            process.liveness = Liveness(int(self.timings["ping_misses"]), self.timings["unresponsive_grace"])
        if process.liveness is not None:
            process.liveness.answered()
        if verb == control.OK and "degraded" in body:
            process.degraded = str(body["degraded"] or "")
        if verb == control.FAILED:
            process.failure = str(body.get("traceback", ""))
            return
        if verb == control.READY:
            self.said_ready = True
            self.refresh_stats()   # the first scrape after READY has every series, also if the actor hangs then
        if process.state in (STARTING, RUNNING, DEGRADED, UNRESPONSIVE):
            state = (DEGRADED if process.degraded else RUNNING) if self.said_ready else STARTING
            if (state, process.degraded) != (process.state, process.reason):
                self.set_state(state, process.degraded)

    def never_answered(self) -> None:
        self.first_answer = None
        self.kill(f"{self.name} did not start within {self.timings['ready_timeout']:g} s (supervisor.ready_timeout)")

    def ping(self) -> None:
        self.health_now()   # the runner's loop turns: /healthz knows it from the time of this
        liveness = self.process.liveness
        if self.process.proc is None or self.stopping:
            return
        verdict = liveness.tick(time.monotonic()) if liveness is not None else None
        if verdict == SILENT:
            self.set_state(UNRESPONSIVE, f"no answer to {liveness.missed} pings")  # type: ignore[union-attr]
        elif verdict == KILL:
            self.kill(f"{self.name} did not answer for {liveness.grace:g} s "  # type: ignore[union-attr]
                      "(supervisor.unresponsive_grace)")
            return
        self.channel.send(self.name, "ping")

    def refresh_stats(self) -> None:
        if self.process.proc is not None:
            keep = self.keep_stats_asked_at(time.monotonic())
            self.channel.ask({self.name}, "stats", None, lambda results: keep(results.get(self.name, {})))

    def keep_stats_asked_at(self, asked: float) -> Callable[[dict[str, Any]], None]:
        def keep(answer: dict[str, Any]) -> None:
            """On the loop. An actor that did not answer keeps its last answer: counters never
            go back; an answer older than the one kept is not kept."""
            if "error" not in answer and asked >= self.stats[1]:
                self.stats = (answer, asked)   # replaced whole: the HTTP thread reads it
        return keep

    def woken(self) -> None:
        """The HTTP thread has put requests in: ask them of the actor."""
        try:
            self._wake_r.recv(4096)
        except BlockingIOError:
            pass
        while not self.requests.empty():
            request = self.requests.get()
            self.channel.ask({self.name}, request.verb, request.body,
                             lambda results, r=request: r.finish(results.get(self.name, {})))

    # the end ----------------------------------------------------------------------------
    def stop(self, why: str) -> None:
        proc = self.process.proc
        if self.stopping or proc is None:
            self.loop.stop(why)
            return
        self.stopping = True
        log.info("%s: %s: stopping the actor", self.name, why)
        self.set_state(STOPPING, why)
        signal_group(proc.pid, signal.SIGTERM)
        self.process.kill_timer = self.loop.call_later(self.timings["stop_grace"], self.kill,
                                                       f"{self.name} still running {self.timings['stop_grace']:g} s "
                                                       "after TERM (supervisor.stop_grace)")

    def kill(self, why: str) -> None:
        proc = self.process.proc
        if proc is None:
            return
        log.error("%s: killed: %s", self.name, why)
        self.process.failure = why
        self.exit_code = 1
        signal_group(proc.pid, signal.SIGKILL)

    def reap(self) -> None:
        proc = self.process.proc
        if proc is None or proc.poll() is None:
            return
        signal_group(proc.pid, signal.SIGKILL)   # anything it left in its group goes too
        self.process.proc, self.process.exit_status, self.process.liveness = None, proc.returncode, None
        if self.process.kill_timer:
            self.process.kill_timer.cancel()
        if self.first_answer is not None:
            self.first_answer.cancel()
        status = proc.returncode
        if not self.exit_code:   # not killed by us: its own status (a signal is a failure)
            self.exit_code = status if status > 0 else (1 if status < 0 else 0)
        if self.exit_code and not self.stopping:
            why = self.process.last_failure() or f"exit status {status}"
            log.error("%s exited: %s", self.name, why)
        self.set_state(EXITED, f"exit status {status}")
        self.loop.stop(f"{self.name} exited")

    # the state the health server shows ----------------------------------------------------
    def set_state(self, state: str, reason: str = "") -> None:
        self.process.state, self.process.reason = state, reason
        self.health_now()

    def current_health(self) -> Health:
        """On the HTTP thread: what the loop last wrote, and whether a drain has begun since."""
        health = self.health
        return health if health.draining == self.draining else replace(health, draining=self.draining)

    def health_now(self) -> None:
        """Replace the health the HTTP thread reads, whole."""
        state = self.process.state
        self.health = Health(**{"state": state, "reason": self.process.reason,
                                "stale_after": self.health.stale_after,
                                "answered": self.process.liveness is not None or self.said_ready,
                                "alive": state in (STARTING, RUNNING, DEGRADED, STOPPING),
                                "ready": self.said_ready and state in (RUNNING, DEGRADED),
                                "draining": self.draining})
