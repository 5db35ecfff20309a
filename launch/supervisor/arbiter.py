"""The arbiter (Circus's Arbiter): one process owns one topology (zeromq-rules 1-5, 10).

It claims the run directory, owns the topology (which actors, how many instances) and a
watcher per actor, which owns that actor's processes. Every state change comes through
`changed`: the state file, the event stream and the waiters of CLI requests follow. It
pings the actors through the watchers, serves the metrics, and stops everything TERM ->
grace -> KILL on the process groups, reaping every one. The CLI's requests are served by
the controller; what it asks of the topology is here.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson
import zmq

from wire.desking import desked, short_of_agents
from wire.kernel.loop import Loop, Timer
from wire.kernel.rundir import LOGS, STATE, TOPOLOGY

from .. import metrics
from ..process.channel import STATS_TIMEOUT, ActorChannel, Results
from ..process.record import Process
from ..process.states import BACKOFF, EXITED, FATAL, RUNNING, SERVING, STARTING
from ..topology import SINGLETONS, Topology
from . import rundir
from .controller import CommandError, Controller
from .logfile import tail
from .watcher import Watched, Watcher


class StartError(Exception):
    pass


@dataclass
class Waiter:
    condition: Callable[[], bool]
    done: Callable[[bool], None]
    timer: Timer | None = None


class Arbiter:
    def __init__(self, topology: Topology, echo: Callable[[str, str], None] | None = None, fresh: bool = False,
                 serve_metrics: bool = True):
        self.topology = topology
        self.fresh = fresh   # discard Comm's journal: start with no agents and no tasks
        self.serve_metrics = serve_metrics   # a load's own fleet does not: its report holds the figures
        self.metrics_server: Any = None
        self.discarded: Path | None = None   # where `fresh` set the journal aside
        self.echo = echo
        self.run_dir = topology.run_dir
        self.loop = Loop()
        self.ctx = zmq.Context()
        self.watchers: dict[str, Watcher] = {}
        self.lock_fd: int | None = None
        self.waiters: list[Waiter] = []
        self.ready_timeout_s = topology.supervisor["ready_timeout"]   # seconds a child has to report READY
        self.stop_grace = topology.supervisor["stop_grace"]           # seconds between TERM and KILL

    @property
    def children(self) -> dict[str, Watched]:
        """Every process, by instance name, in the topology's order."""
        return {name: process for watcher in self.watchers.values() for name, process in watcher.processes.items()}

    def watcher_of(self, instance: str) -> Watcher | None:
        return self.watchers.get(instance.rpartition(".")[0])

    # the run directory -------------------------------------------------------------------
    def claim(self) -> None:
        """Own the run directory (or raise AlreadyRunning), bind the control sockets and
        make a watcher per actor."""
        for directory in {self.run_dir, self.topology.sock_dir}:
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        (self.run_dir / LOGS).mkdir(exist_ok=True)
        self.lock_fd = rundir.lock(self.run_dir, self.topology.name)
        rundir.clear_leftovers(self.run_dir, self.topology.sock_dir)
        if self.fresh:
            try:
                self.discarded = rundir.discard_journal(self.run_dir)
            except rundir.JournalNotDiscarded as exc:
                raise StartError(str(exc))
        self.files = rundir.RunFiles(self.run_dir, self.loop.call_later)
        if not self.write_topology():  # what the actors read at start: without it none can
            raise StartError(f"cannot write {self.run_dir / TOPOLOGY}: {self.files.last_error}")
        self.channel = ActorChannel(self.ctx, self.loop, self.topology.control_endpoint("actors"), self.heard)
        self.controller = Controller(self, self.ctx.socket(zmq.ROUTER), self.topology.control_endpoint("control"))
        self.events = self.ctx.socket(zmq.PUB)         # lifecycle events
        self.events.linger = 0
        self.events.bind(self.topology.control_endpoint("events"))
        self.loop.handle_signals(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        if self.serve_metrics:
            self.metrics_server = self.bind_metrics()
        self.loop.call_every(self.topology.supervisor["ping_interval"], self.ping)
        self.loop.on_signal(signal.SIGCHLD, self.reap)
        for name in self.actor_names():
            self.watchers[name] = Watcher(self.topology, name, self.loop, self.channel, self.changed, self.emit_line)
        self.write_state()

    def bind_metrics(self) -> Any:
        """The scrape target, bound now: a port the topology names that is taken stops the
        start, with the key to change. Served once the first stats are in (start())."""
        where = self.topology.metrics
        try:
            server = metrics.bind(where["host"], where["port"], metrics.Known.of(self.topology))
        except OSError as exc:
            raise StartError(f"cannot serve metrics on {where['host']}:{where['port']} (topology key metrics): "
                             f"{exc.strerror}")
        host = "127.0.0.1" if where["host"] in ("0.0.0.0", "") else where["host"]
        self.metrics_url = f"http://{host}:{server.server_port}/metrics"
        return server

    def actor_names(self) -> list[str]:
        """The actors this supervisor runs (those of its host), binders first."""
        names = list(dict.fromkeys(instance.rpartition(".")[0] for instance, _ in self.topology.instances()))
        return names + [name for name, spec in self.topology.actors.items() if name not in names
                        and (self.topology.host is None or spec.get("host") == self.topology.host)]

    def write_topology(self) -> bool:
        """What the actors read at start (written again later if the disk is full: an actor
        started meanwhile reads the one before, which differs only in instance counts)."""
        return self.files.write(TOPOLOGY, lambda: orjson.dumps(self.topology.resolved()))

    def changed(self, process: Process) -> None:
        """The one place a change of a process's state is told: the state file, the event
        stream and the waiters follow."""
        self.write_state()
        event = {"time": time.time(), "topology": self.topology.name, **process.describe()}
        if process.failure and process.state in (EXITED, BACKOFF, FATAL):
            event["failure"] = process.last_failure()
        if process.reason:
            event["reason"] = process.reason
        self.events.send_multipart([b"lifecycle", orjson.dumps(event)])
        for waiter in list(self.waiters):
            if waiter.condition():
                self.waiters.remove(waiter)
                if waiter.timer:
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
        """state.json: who runs (for `down` when we are gone); when a write fails, the state
        of the moment is written at the next attempt."""
        self.files.write(STATE, lambda: orjson.dumps({
            "name": self.topology.name, "supervisor": {"pid": os.getpid()}, "endpoints": self.topology.endpoints,
            "control": self.topology.control_endpoint("control"), "events": self.topology.control_endpoint("events"),
            "actors": [process.describe() for process in self.children.values()]}, option=orjson.OPT_INDENT_2))

    def emit_line(self, name: str, line: bytes) -> None:
        if self.echo is not None:
            self.echo(name, line.decode(errors="replace"))

    # the watchers' events ------------------------------------------------------------------
    def heard(self, name: str, verb: str, body: dict[str, Any]) -> None:
        watcher = self.watcher_of(name)
        process = watcher.processes.get(name) if watcher is not None else None
        if watcher is not None and process is not None:
            watcher.heard(process, verb, body)

    def reap(self) -> None:
        for watcher in list(self.watchers.values()):
            watcher.reap()

    def ping(self) -> None:
        self.channel.on_message()  # answers already here count, however late the loop came round
        now = time.monotonic()
        for watcher in list(self.watchers.values()):
            watcher.ping(now)

    # what should run ------------------------------------------------------------------------
    def select(self, name: Any) -> list[Watched]:
        """`all`, an instance (`chat.2`) or an actor (`chat`: every instance of it)."""
        children = self.children
        if name == "all":
            return list(children.values())
        if not isinstance(name, str) or not name:
            raise CommandError("name an actor (e.g. chat), an instance (chat.2) or all")
        if name in children:
            return [children[name]]
        chosen = [c for c in children.values() if c.name.rpartition(".")[0] == name]
        if not chosen:
            raise CommandError(f"no actor or instance named {name!r} (running: {', '.join(children)})")
        return chosen

    def stop_child(self, child: Watched, grace: float | None = None) -> None:
        self.watcher_of(child.name).stop(child, grace)  # type: ignore[union-attr]

    def start_child(self, child: Watched) -> None:
        self.watcher_of(child.name).start(child)  # type: ignore[union-attr]

    def scale(self, name: Any, count: Any, force: bool = False) -> tuple[list[Watched], list[Watched]]:
        """Want `count` instances of actor `name`: (the processes added, those going away).
        Chat Servers that would desk fewer agents than they should are refused (unless
        `force`), and so is a change that would move running servers' agents."""
        spec = self.topology.actors.get(name) if isinstance(name, str) else None
        if spec is None:
            raise CommandError(f"no actor named {name!r} (actors: {', '.join(self.topology.actors)})")
        if name not in self.watchers:
            raise CommandError(f"{name} runs on host {spec.get('host')!r}: scale it with that host's supervisor")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise CommandError(f"scale {name} needs a count >= 0, not {count!r}")
        if spec["role"] in SINGLETONS and count > 1:
            raise CommandError(f"{name} is a {spec['role']}: it binds the documented queues, run at most one")
        if spec["role"] == "chat":
            self.check_desks(name, count, force)
        spec["count"] = count
        self.write_topology()
        added, extra = self.watchers[name].reconcile()
        self.write_state()
        return added, extra

    def check_desks(self, name: str, count: int, force: bool) -> None:
        actors = self.topology.actors
        proposed = {**actors, name: {**actors[name], "count": count}}
        before, after = desked(actors), desked(proposed)
        moved = sorted(i for i in before.keys() & after.keys() if before[i] != after[i] and i in self.children)
        if moved:
            raise CommandError(f"scaling {name} to {count} would move the agents of {', '.join(moved)} (chat actors "
                               f"desk consecutive blocks of the directory): scale the last chat actor instead")
        per_server, size = actors[name]["agents"], len(self.topology.agents)
        short = {i: n for i, n in short_of_agents(proposed, size).items()
                 if i.rpartition(".")[0] == name and i not in self.children}
        if short and not force:
            desked_now = max((span.stop for span in before.values()), default=0)
            fits = actors[name]["count"] + max(0, size - desked_now) // per_server if per_server else count
            rate = actors[name].get("rate", 0)
            raise CommandError(
                f"{', '.join(short)} would desk {min(short.values())} of their {per_server} agents: the directory "
                f"has {size} agents and {desked_now} are desked already"
                + (f", yet each would still start {rate:g} chats/s" if rate else "")
                + f"; scale {name} to at most {fits}, or add agents to the topology", confirm=True)

    # the whole topology ----------------------------------------------------------------
    def start(self) -> None:
        """Spawn every actor and wait until all are RUNNING; raise StartError naming the
        first that failed, with its traceback."""
        for made in self.topology.chat_keys():   # under CURVE a Chat Server has its actor's own key
            self.echo("supervisor", f"made the client key of the Chat Server actor {made!r} (under CURVE)")
        for watcher in self.watchers.values():
            for process in watcher.processes.values():
                watcher.spawn(process)

        def settled() -> bool:
            children = self.children.values()
            return all(c.state == RUNNING for c in children) or any(c.state not in (STARTING, RUNNING)
                                                                    for c in children)
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
        # served from now on (bound since the start): its first scrape asks every actor (metricsd)
        if self.metrics_server is not None:
            metrics.start(self.metrics_server)

    def serve(self, duration: float | None = None) -> None:
        """Run until stopped (signal or `down`), or for `duration` seconds."""
        self.loop.run(timeout=duration)

    def stop(self) -> None:
        """TERM every process group, KILL what is left after the grace period, reap everything."""
        for watcher in self.watchers.values():   # an exit from now on is no reason to restart
            watcher.stopping = True
        for waiter in self.waiters:  # every CLI request still waiting gets its answer now
            if waiter.timer:
                waiter.timer.cancel()
            waiter.done(False)
        self.waiters.clear()
        if getattr(self, "channel", None) is not None:
            self.channel.finish_all()
        for child in self.children.values():
            self.stop_child(child)
        gone = lambda: all(c.proc is None for c in self.children.values())  # noqa: E731
        self.loop.run(until=gone, timeout=self.stop_grace + 2.0, after_stop=True)
        for watcher in self.watchers.values():  # never leave one behind
            watcher.end()
        self.reap()

    def close(self) -> None:
        if self.metrics_server is not None:
            metrics.close(self.metrics_server)
        for child in self.children.values():
            if child.log is not None:
                child.log.close()
        for part in (getattr(self, "channel", None), getattr(self, "controller", None)):
            if part is not None:
                part.close()
        if getattr(self, "events", None) is not None:
            self.events.close(0)
        self.loop.close()
        self.ctx.term()
        if self.lock_fd is not None:  # only the owner of the run directory clears its state
            (self.run_dir / STATE).unlink(missing_ok=True)
            os.close(self.lock_fd)

    # asking the actors -------------------------------------------------------------------------
    def running(self) -> set[str]:
        return {c.name for c in self.children.values() if c.state in SERVING}

    def ask_children(self, names: set[str], verb: str, body: dict[str, Any] | None,
                     done: Callable[[Results], None], timeout: float = STATS_TIMEOUT) -> None:
        self.channel.ask(names, verb, body, done, timeout)

    def ask_now(self, names: set[str], verb: str, body: dict[str, Any] | None = None,
                timeout: float = STATS_TIMEOUT) -> Results:
        """ask_children, waiting (bounded) for the answers: for in-process callers."""
        box: dict[str, Any] = {}
        self.ask_children(names, verb, body, lambda results: box.update(results=results), timeout)
        self.loop.run(until=lambda: "results" in box, timeout=timeout + 0.5, after_stop=True)
        return box.get("results", {})

    def request_stats(self, done: Callable[[Results], None], timeout: float = STATS_TIMEOUT) -> None:
        self.ask_children(self.running(), "stats", None, done, timeout)

    def stats_now(self) -> Results:
        """Every running actor's stats."""
        return self.ask_now(self.running(), "stats")

    def status(self) -> dict[str, Any]:
        logs = [c.log.stats() for c in self.children.values() if c.log is not None]
        files = self.files.stats() if getattr(self, "files", None) is not None else {}
        supervisor = {"pid": os.getpid(), **files, **{key: sum(s[key] for s in logs) for key in
                                                    ("log_dropped_bytes", "log_write_failures", "log_rotations")}}
        return {"name": self.topology.name, "supervisor": supervisor,
                "metrics": getattr(self, "metrics_url", None),
                "endpoints": self.topology.served_endpoints(), "run_dir": str(self.run_dir),
                "actors": [child.describe() for child in self.children.values()]}


Supervisor = Arbiter  # the name launch/cli.py, load.py and chaos.py know it by
