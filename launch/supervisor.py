"""The supervisor: one process owns one topology (zeromq-rules 1-5, 10).

It claims the run directory (an exclusive lock: a second `up` of the same topology is
refused while the first lives), spawns every actor in its own process group with the
parent-death signal, waits for each READY (or its traceback), captures their output into
per-actor log files, restarts a child that dies with exponential backoff and gives up
(FATAL) on one that keeps dying, answers the CLI on a control socket, and stops children
TERM -> grace -> KILL on their process groups, reaping every one.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq

from actors.loop import Loop, Timer
from wire import control
from wire.rundir import journal_files

from . import metrics
from .topology import SINGLETONS, Topology

# Process states, as supervisord names them.
STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL = (
    "STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL")

STARTED_AFTER = 1.0        # a child that ran this long counts as started (resets its backoff)
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 5.0
METRICS_IDLE_S = 60.0     # stats are polled for metrics while a scrape came this recently
MAX_QUICK_FAILURES = 5     # consecutive failed starts before FATAL
STATS_TIMEOUT = 2.0


class StartError(Exception):
    pass


class AlreadyRunning(Exception):
    pass


@dataclass
class Child:
    name: str
    role: str
    state: str = STOPPED
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0           # time.time() of the last spawn
    restarts: int = 0
    quick_failures: int = 0
    exit_status: int | None = None
    failure: str = ""              # traceback or reason of the last failure
    log_path: Path | None = None
    log_file: Any = None
    partial: bytes = b""
    backoff_timer: Timer | None = None
    ready_timer: Timer | None = None
    kill_timer: Timer | None = None

    @property
    def pid(self) -> int | None:
        proc = self.proc  # read once: another thread (metrics) may ask while the loop reaps
        return proc.pid if proc is not None and proc.returncode is None else None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "pid": self.pid, "state": self.state,
                "uptime": round(time.time() - self.started, 3) if self.state == RUNNING else 0.0,
                "restarts": self.restarts, "exit_status": self.exit_status}


@dataclass
class Waiter:
    condition: Callable[[], bool]
    done: Callable[[bool], None]
    timer: Any = None


@dataclass
class Pending:
    """A control request to actors, waiting for their answers."""
    names: set[str]
    results: dict[str, Any] = field(default_factory=dict)
    done: Callable[[dict[str, Any]], None] | None = None
    timer: Timer | None = None


class Supervisor:
    def __init__(self, topology: Topology, echo: Callable[[str, str], None] | None = None):
        self.topology = topology
        self.echo = echo
        self.run_dir = topology.run_dir
        self.loop = Loop()
        self.ctx = zmq.Context()
        self.children: dict[str, Child] = {}
        self.lock_fd: int | None = None
        self.request_ids = itertools.count(1)
        self.pending: dict[str, Pending] = {}
        self.waiters: list[Waiter] = []
        self.stopping = False
        self.ready_timeout_s = topology.supervisor["ready_timeout"]   # seconds a child has to report READY
        self.stop_grace = topology.supervisor["stop_grace"]           # seconds between TERM and KILL

    # the run directory -------------------------------------------------------------------
    def claim(self) -> None:
        """Own the run directory, or refuse when a live supervisor owns it (a second bind of
        the same ipc path would silently steal its sockets)."""
        for directory in {self.run_dir, self.topology.sock_dir}:
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        fd = os.open(self.run_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = read_state(self.run_dir).get("supervisor", {}).get("pid")
            raise AlreadyRunning(f"topology {self.topology.name!r} is running already "
                                 f"(supervisor pid {owner}, run directory {self.run_dir}): `mroute down` first")
        self.lock_fd = fd
        os.set_inheritable(fd, False)
        kill_survivors(self.run_dir)
        for path in journal_files(self.run_dir):  # a topology started afresh starts with no agents and no tasks
            path.unlink(missing_ok=True)
        for stale in self.topology.sock_dir.glob("*.ipc"):
            stale.unlink()
        (self.run_dir / "topology.json").write_bytes(orjson.dumps(self.topology.resolved()))
        self.ctl = self.ctx.socket(zmq.ROUTER)        # actors: READY, FAILED, replies
        self.ctl.linger = 0
        self.ctl.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a restarted actor takes its name back
        self.ctl.bind(self.topology.control_endpoint("actors"))
        self.cli = self.ctx.socket(zmq.ROUTER)        # the CLI's requests
        self.cli.linger = 0
        self.cli.bind(self.topology.control_endpoint("control"))
        self.events = self.ctx.socket(zmq.PUB)         # lifecycle events
        self.events.linger = 0
        self.events.bind(self.topology.control_endpoint("events"))
        self.loop.add_reader(self.ctl, self.on_actor_message)
        self.loop.add_reader(self.cli, self.on_cli_request)
        self.loop.handle_signals(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        # Prometheus: scrapes read the latest stats, which our loop refreshes every second.
        # Built on our loop, replaced whole: the HTTP thread only reads it.
        self.metrics_view: tuple[list[dict[str, Any]], dict[str, Any]] = ([], {})
        self.last_scrape = 0.0
        self.metrics_server, port = metrics.serve(self.scraped)
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.loop.call_every(1.0, self.refresh_metrics)
        self.loop.on_signal(signal.SIGCHLD, self.reap)
        for name, role in self.topology.instances():
            self.children[name] = Child(name, role, log_path=self.run_dir / "logs" / f"{name}.log")
        self.write_state()

    def set_state(self, child: Child, state: str) -> None:
        """The one place a child's state changes: the state file and the event stream follow."""
        child.state = state
        self.write_state()
        event = {"time": time.time(), "topology": self.topology.name, **child.describe()}
        if child.failure and state in (EXITED, BACKOFF, FATAL):
            event["failure"] = child.failure.strip().splitlines()[-1][:300]
        self.events.send_multipart([b"lifecycle", orjson.dumps(event)])
        for waiter in list(self.waiters):
            if waiter.condition():
                self.waiters.remove(waiter)
                waiter.timer.cancel()
                waiter.done(True)

    def when(self, condition: Callable[[], bool], done: Callable[[bool], None], timeout: float) -> None:
        """Call done(True) once condition() holds after a state change, done(False) at the timeout."""
        if condition():
            done(True)
            return
        waiter = Waiter(condition, done)
        self.waiters.append(waiter)

        def expire() -> None:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
                done(False)
        waiter.timer = self.loop.call_later(timeout, expire)

    def write_state(self) -> None:
        state = {"name": self.topology.name, "supervisor": {"pid": os.getpid()},
                 "endpoints": self.topology.endpoints,
                 "control": self.topology.control_endpoint("control"),
                 "events": self.topology.control_endpoint("events"),
                 "actors": [child.describe() for child in self.children.values()]}
        tmp = self.run_dir / "state.json.tmp"
        tmp.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
        tmp.replace(self.run_dir / "state.json")

    # children --------------------------------------------------------------------------
    def spawn(self, child: Child) -> None:
        env = dict(os.environ, MROUTE_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1",
                   MROUTE_CONTROL=self.topology.control_endpoint("actors"))
        child.log_file = child.log_file or open(child.log_path, "ab")  # type: ignore[arg-type]
        credentials = self.credentials(child)
        child.proc = subprocess.Popen(
            [sys.executable, "-m", "actors", child.role, "--name", child.name, "--run-dir", str(self.run_dir)],
            stdin=subprocess.PIPE if credentials else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)  # its own group: stopped as one
        if credentials:  # on its stdin, never on disk: a pipe write may wait for the child to read
            threading.Thread(target=self.hand_over, args=(child.proc, credentials), daemon=True).start()
        os.set_blocking(child.proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self.loop.add_reader(child.proc.stdout.fileno(), lambda c=child: self.on_output(c))  # type: ignore[union-attr]
        child.started, child.exit_status, child.failure = time.time(), None, ""
        child.ready_timer = self.loop.call_later(self.ready_timeout_s, self.ready_timeout, child)
        self.set_state(child, STARTING)

    def credentials(self, child: Child) -> bytes:
        """A simulated Chat Server's agents' passwords: it logs them in as their desks would."""
        if child.role != "chat":
            return b""
        spec = self.topology.actors[child.name.rpartition(".")[0]]
        first = (int(child.name.rpartition(".")[2]) - 1) * spec["agents"]
        return orjson.dumps({a["id"]: a["password"] for a in self.topology.agents[first:first + spec["agents"]]
                             if "password" in a})

    @staticmethod
    def hand_over(proc: subprocess.Popen[bytes], credentials: bytes) -> None:
        try:
            proc.stdin.write(credentials)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError, OSError):  # it died first: its restart gets them again
            pass

    def on_output(self, child: Child) -> None:
        proc = child.proc
        if proc is None or proc.stdout is None:
            return
        fd = proc.stdout.fileno()
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:  # end of output: the child has closed it, normally by exiting
            self.loop.remove_reader(fd)
            if child.partial:
                self.emit_line(child, child.partial)
                child.partial = b""
            return
        child.log_file.write(data)
        child.log_file.flush()
        lines = (child.partial + data).split(b"\n")
        child.partial = lines.pop()
        for line in lines:
            self.emit_line(child, line)

    def emit_line(self, child: Child, line: bytes) -> None:
        if self.echo is not None:
            self.echo(child.name, line.decode(errors="replace"))

    def on_actor_message(self) -> None:
        while True:
            try:
                identity, *raw = self.ctl.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            child = self.children.get(identity.decode(errors="replace"))
            try:
                request_id, verb, body = control.parse(raw)
            except ValueError:
                continue
            if child is None:
                continue
            if verb == control.READY and child.state == STARTING:
                if child.ready_timer:
                    child.ready_timer.cancel()
                self.set_state(child, RUNNING)
            elif verb == control.FAILED:
                child.failure = body.get("traceback", "")
            elif request_id in self.pending:
                pending = self.pending[request_id]
                pending.results[child.name] = body if verb == control.OK else {"error": body}
                pending.names.discard(child.name)
                if not pending.names:
                    self.finish_request(request_id)

    def ready_timeout(self, child: Child) -> None:
        if child.state == STARTING:
            child.failure = child.failure or f"no READY within {self.ready_timeout_s:.0f} s"
            self.signal_group(child, signal.SIGKILL)

    def reap(self) -> None:
        for child in list(self.children.values()):
            proc = child.proc
            if proc is None or proc.poll() is None:
                continue
            self.on_output(child)
            if proc.stdout is not None:
                self.loop.remove_reader(proc.stdout.fileno())
                proc.stdout.close()
            child.proc = None
            child.exit_status = proc.returncode
            for timer in (child.ready_timer, child.kill_timer):
                if timer:
                    timer.cancel()
            self.signal_group_pid(proc.pid, signal.SIGKILL)  # anything it left in its group goes too
            self.exited(child)

    def exited(self, child: Child) -> None:
        if child.state == STOPPING or self.stopping:
            self.set_state(child, STOPPED)
            return
        ran = time.time() - child.started
        if child.state == RUNNING and ran >= STARTED_AFTER:
            child.quick_failures = 0
        else:
            child.quick_failures += 1
        if child.state == RUNNING:
            self.set_state(child, EXITED)
        if child.quick_failures >= MAX_QUICK_FAILURES:
            self.set_state(child, FATAL)
            return
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, child.quick_failures - 1))
        child.backoff_timer = self.loop.call_later(delay, self.restart_after_backoff, child)
        self.set_state(child, BACKOFF)

    def restart_after_backoff(self, child: Child) -> None:
        if child.state == BACKOFF and not self.stopping:
            child.restarts += 1
            self.spawn(child)

    def stop_child(self, child: Child, grace: float | None = None) -> None:
        """TERM its process group; KILL it if it is still there after `grace`."""
        if child.backoff_timer:
            child.backoff_timer.cancel()
        if child.proc is None:
            if child.state != STOPPED:
                self.set_state(child, STOPPED)
            return
        if child.state == STOPPING:  # already on its way; its KILL timer stands
            return
        self.signal_group(child, signal.SIGTERM)
        child.kill_timer = self.loop.call_later(self.stop_grace if grace is None else grace, self.signal_group,
                                                child, signal.SIGKILL)
        self.set_state(child, STOPPING)

    def start_child(self, child: Child) -> None:
        if child.proc is None:
            child.quick_failures = 0
            self.spawn(child)

    def signal_group(self, child: Child, signum: int) -> None:
        if child.proc is not None and child.proc.returncode is None:
            self.signal_group_pid(child.proc.pid, signum)

    @staticmethod
    def signal_group_pid(pid: int, signum: int) -> None:
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    # the whole topology ----------------------------------------------------------------
    def start(self) -> None:
        """Spawn every actor and wait until all are RUNNING; raise StartError naming the
        first that failed, with its traceback."""
        for child in self.children.values():
            self.spawn(child)

        def settled() -> bool:
            return all(c.state == RUNNING for c in self.children.values()) or any(
                c.state != STARTING and c.state != RUNNING for c in self.children.values())
        self.loop.run(until=settled, timeout=self.ready_timeout_s + 1)
        if self.loop.stop_reason:
            raise StartError(f"interrupted ({self.loop.stop_reason}) while starting")
        # Name the child that failed, not one that was merely still starting when it did.
        failed = sorted((c for c in self.children.values() if c.state != RUNNING),
                        key=lambda c: c.state == STARTING)
        for child in failed[:1]:
            reason = child.failure or (f"exited with status {child.exit_status}" if child.exit_status is not None
                                       else "did not report READY")
            raise StartError(f"{child.name} ({child.role}) failed to start: {reason}\n"
                             f"log: {child.log_path}\n{tail(child.log_path) if not child.failure else ''}")

    def serve(self, duration: float | None = None) -> None:
        """Run until stopped (signal or `down`), or for `duration` seconds."""
        self.loop.run(timeout=duration)

    def stop(self) -> None:
        """TERM every process group, KILL what is left after the grace period, reap everything."""
        self.stopping = True
        for waiter in self.waiters:  # every CLI request still waiting gets its answer now
            waiter.timer.cancel()
            waiter.done(False)
        self.waiters.clear()
        for request_id in list(self.pending):
            self.finish_request(request_id)
        for child in self.children.values():
            self.stop_child(child)
        gone = lambda: all(c.proc is None for c in self.children.values())  # noqa: E731
        self.loop.run(until=gone, timeout=self.stop_grace + 2.0, after_stop=True)
        for child in self.children.values():  # never leave one behind
            if child.proc is not None:
                self.signal_group(child, signal.SIGKILL)
                child.proc.wait()
        self.reap()

    def close(self) -> None:
        if getattr(self, "metrics_server", None) is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        for child in self.children.values():
            if child.log_file:
                child.log_file.close()
        for sock in (getattr(self, "ctl", None), getattr(self, "cli", None), getattr(self, "events", None)):
            if sock is not None:
                sock.close(0)
        self.loop.close()
        self.ctx.term()
        if self.lock_fd is not None:  # only the owner of the run directory clears its state
            (self.run_dir / "state.json").unlink(missing_ok=True)
            os.close(self.lock_fd)

    # statistics and the CLI ------------------------------------------------------------------
    def ask_children(self, names: set[str], verb: str, body: dict[str, Any] | None,
                     done: Callable[[dict[str, Any]], None], timeout: float = STATS_TIMEOUT) -> None:
        """Send a control verb to actors; done(results by name) once all answered or at the
        timeout (those that did not answer get an error)."""
        request_id = f"r{next(self.request_ids)}"
        pending = self.pending[request_id] = Pending(set(names), done=done)
        for name in names:
            self.ctl.send_multipart([name.encode(), *control.frames(request_id, verb, body)])
        pending.timer = self.loop.call_later(timeout, self.finish_request, request_id)
        if not names:
            self.finish_request(request_id)

    def finish_request(self, request_id: str) -> None:
        pending = self.pending.pop(request_id, None)
        if pending is None:
            return
        if pending.timer:
            pending.timer.cancel()
        for name in pending.names:
            pending.results[name] = {"error": {"reason": f"{name} did not answer"}}
        if pending.done:
            pending.done(pending.results)

    def request_stats(self, done: Callable[[dict[str, Any]], None], timeout: float = STATS_TIMEOUT) -> None:
        self.ask_children({c.name for c in self.children.values() if c.state == RUNNING}, "stats", None, done,
                          timeout)

    def ask_now(self, names: set[str], verb: str, body: dict[str, Any] | None = None,
                timeout: float = STATS_TIMEOUT) -> dict[str, Any]:
        """ask_children, waiting (bounded) for the answers: for in-process callers."""
        box: dict[str, Any] = {}
        self.ask_children(names, verb, body, lambda results: box.update(results=results), timeout)
        self.loop.run(until=lambda: "results" in box, timeout=timeout + 0.5, after_stop=True)
        return box.get("results", {})

    def ask_actor(self, name: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.ask_now({name}, verb, body).get(name, {"error": {"reason": "no answer"}})

    def stats_now(self) -> dict[str, Any]:
        """Every running actor's stats."""
        return self.ask_now({c.name for c in self.children.values() if c.state == RUNNING}, "stats")

    def scraped(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """On the HTTP thread: the latest view, and a note that somebody is scraping."""
        self.last_scrape = time.monotonic()
        return self.metrics_view

    def refresh_metrics(self) -> None:
        """Ask the actors for stats only while someone scrapes (Comm's stats walk its
        agents and tasks: tens of ms at 100,000 agents)."""
        if time.monotonic() - self.last_scrape < METRICS_IDLE_S:
            self.request_stats(self.keep_stats)

    def keep_stats(self, results: dict[str, Any]) -> None:
        """An actor that did not answer keeps its last answer: counters never go back."""
        stats = dict(self.metrics_view[1])
        stats.update({name: data for name, data in results.items() if "error" not in data})
        children = list(self.children.values())
        self.metrics_view = ([c.describe() for c in children], {c.name: stats[c.name] for c in children
                                                                 if c.name in stats})

    def status(self) -> dict[str, Any]:
        return {"name": self.topology.name, "supervisor": {"pid": os.getpid()},
                "metrics": getattr(self, "metrics_url", None),
                "endpoints": self.topology.endpoints, "run_dir": str(self.run_dir),
                "actors": [child.describe() for child in self.children.values()]}

    def on_cli_request(self) -> None:
        while True:
            try:
                client, *raw = self.cli.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                request_id, verb, body = control.parse(raw)
            except ValueError as exc:
                self.cli.send_multipart([client, *control.frames("", control.ERROR, {"reason": str(exc)})])
                continue

            def reply(ok: bool, answer: dict[str, Any], client: bytes = client, request_id: str = request_id) -> None:
                self.cli.send_multipart([client, *control.frames(request_id, control.OK if ok else control.ERROR,
                                                                 answer)])
            handler = self.cli_verbs.get(verb)
            if handler is None:
                reply(False, {"reason": f"unknown verb {verb!r} (known: {', '.join(sorted(self.cli_verbs))})"})
                continue
            try:
                handler(body, reply)
            except CommandError as exc:
                reply(False, {"reason": str(exc)})

    @property
    def cli_verbs(self) -> dict[str, Callable[[dict[str, Any], Callable[[bool, dict[str, Any]], None]], None]]:
        return {"status": lambda body, reply: reply(True, self.status()),
                "stats": lambda body, reply: self.request_stats(lambda results: reply(True, {"actors": results})),
                "down": self.cli_down, "stop": self.cli_stop, "start": self.cli_start,
                "restart": self.cli_restart, "scale": self.cli_scale, "ask": self.cli_ask,
                "probe": self.cli_probe}

    def cli_probe(self, body: dict[str, Any], reply: Any) -> None:
        """Publish a token on the event stream, so a subscriber can tell that it is live."""
        self.events.send_multipart([b"probe", orjson.dumps({"token": body.get("token")})])
        reply(True, {})

    def cli_ask(self, body: dict[str, Any], reply: Any) -> None:
        """Forward an operator command to actors: `role` asks the running actor of that role
        (flush, explain, ...) and answers with its reply; `name` asks every running instance
        it selects (`chat` or `chat.2`) and answers with their replies by instance."""
        verb, args = str(body.get("verb")), body.get("body", {})
        if body.get("name") is not None:
            names = {c.name for c in self.select(body["name"]) if c.state == RUNNING}
            if not names:
                raise CommandError(f"no running instance of {body['name']}")
            self.ask_children(names, verb, args, lambda results: reply(
                not any("error" in r for r in results.values()), {"actors": results}))
            return
        role = body.get("role")
        child = next((c for c in self.children.values() if c.role == role and c.state == RUNNING), None)
        if child is None:
            raise CommandError(f"no running {role} to ask")
        self.ask_children({child.name}, verb, args,
                          lambda results: reply("error" not in results[child.name],
                                                results[child.name].get("error", results[child.name])))

    def select(self, name: Any) -> list[Child]:
        """`all`, an instance (`chat.2`) or an actor (`chat`: every instance of it)."""
        if name == "all":
            return list(self.children.values())
        if not isinstance(name, str) or not name:
            raise CommandError("name an actor (e.g. chat), an instance (chat.2) or all")
        if name in self.children:
            return [self.children[name]]
        chosen = [c for c in self.children.values() if c.name.rpartition(".")[0] == name]
        if not chosen:
            raise CommandError(f"no actor or instance named {name!r} (running: {', '.join(self.children)})")
        return chosen

    def answer_when(self, children: list[Child], states: tuple[str, ...], reply: Any, timeout: float) -> None:
        """Reply once every child is in one of `states` (or, for starts, has given up)."""
        settled = states + ((FATAL,) if RUNNING in states else ())

        def done(in_time: bool) -> None:
            ok = in_time and all(c.state in states for c in children)
            answer: dict[str, Any] = {"actors": [c.describe() for c in children]}
            if not ok:
                answer["reason"] = ("timed out: " if not in_time else "") + ", ".join(
                    f"{c.name} is {c.state}" + (f" ({c.failure.strip().splitlines()[-1]})" if c.failure else "")
                    for c in children if c.state not in states)
            reply(ok, answer)
        self.when(lambda: all(c.state in settled for c in children), done, timeout)

    def cli_down(self, body: dict[str, Any], reply: Any) -> None:
        reply(True, {"pid": os.getpid()})
        self.loop.stop("down requested")

    def cli_stop(self, body: dict[str, Any], reply: Any) -> None:
        children = self.select(body.get("name"))
        for child in children:
            self.stop_child(child)
        self.answer_when(children, (STOPPED,), reply, self.stop_grace + 3)

    def cli_start(self, body: dict[str, Any], reply: Any) -> None:
        children = self.select(body.get("name"))
        for child in children:
            if child.state in (BACKOFF,) and child.backoff_timer:
                child.backoff_timer.cancel()
            if child.state in (STOPPED, EXITED, FATAL, BACKOFF):
                self.start_child(child)
        self.answer_when(children, (RUNNING,), reply, self.ready_timeout_s + 1)

    def cli_restart(self, body: dict[str, Any], reply: Any) -> None:
        children = self.select(body.get("name"))
        for child in children:
            self.stop_child(child)
        stopped = lambda: all(c.proc is None for c in children)  # noqa: E731

        def start_again(ok: bool) -> None:
            for child in children:
                child.restarts += 1
                self.start_child(child)
            self.answer_when(children, (RUNNING,), reply, self.ready_timeout_s + 1)
        self.when(stopped, start_again, self.stop_grace + 3)

    def cli_scale(self, body: dict[str, Any], reply: Any) -> None:
        name, count = body.get("name"), body.get("count")
        spec = self.topology.actors.get(name) if isinstance(name, str) else None
        if spec is None:
            raise CommandError(f"no actor named {name!r} (actors: {', '.join(self.topology.actors)})")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise CommandError(f"scale {name} needs a count >= 0, not {count!r}")
        if spec["role"] in SINGLETONS and count > 1:
            raise CommandError(f"{name} is a {spec['role']}: it binds the documented queues, run at most one")
        spec["count"] = count
        (self.run_dir / "topology.json").write_bytes(orjson.dumps(self.topology.resolved()))
        current = [c for c in self.children.values() if c.name.rpartition(".")[0] == name]
        for child in current[count:]:
            self.stop_child(child)
        added = []
        for index in range(len(current) + 1, count + 1):
            child = Child(f"{name}.{index}", spec["role"], log_path=self.run_dir / "logs" / f"{name}.{index}.log")
            self.children[child.name] = child
            added.append(child)
            self.spawn(child)
        removed = current[count:]

        def settle(ok: bool) -> None:
            for child in removed:
                if child.proc is None:
                    self.children.pop(child.name, None)
                    if child.log_file:
                        child.log_file.close()
            self.write_state()
            reply(ok and all(c.state == RUNNING for c in added),
                  {"actors": [c.describe() for c in self.children.values() if c.name.rpartition(".")[0] == name]})
        self.when(lambda: all(c.proc is None for c in removed) and all(c.state in (RUNNING, FATAL) for c in added),
                  settle, self.ready_timeout_s + 1)


class CommandError(Exception):
    pass


def tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return b"\n".join(path.read_bytes().splitlines()[-lines:]).decode(errors="replace")


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        return orjson.loads((run_dir / "state.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}


def is_locked(run_dir: Path) -> bool:
    """Whether a live supervisor holds the run directory."""
    try:
        fd = os.open(run_dir / "lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def kill_survivors(run_dir: Path) -> list[int]:
    """KILL the process groups of actors named in a state file whose supervisor is gone
    (zeromq-rules 3: `down` also ends survivors). Returns the pids it signalled."""
    killed = []
    for actor in read_state(run_dir).get("actors", []):
        pid = actor.get("pid")
        if pid and _is_our_actor(pid, run_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def _is_our_actor(pid: int, run_dir: Path) -> bool:
    """A pid from an old state file may have been reused: check it is still our actor."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"actors" in cmdline and str(run_dir).encode() in cmdline
