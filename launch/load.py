"""`mroute load`: drive a fleet of simulated Chat Servers and account for every task.

The fleet is either spawned for the run (the topology file's Comm, MRE and GC with a chat
actor of N servers x M agents, in a run directory of its own) or the chat servers of a
topology already running (`--attach`). The driver owns only the arrival profile: every
`TICK` it tells each server its share of the current rate (control verb `load`); the
servers draw Poisson arrivals, think, handling and patience times themselves. Each second
it samples every actor's stats; the report is built from the differences.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from wire import passwords
from wire.dist import Distribution
from wire.stats import Histogram

TICK = 0.25          # seconds between rate updates
SAMPLE_EVERY = 1.0   # seconds between samples of the time series
PROFILES = ("constant", "ramp", "steps")


@dataclass(frozen=True)
class Profile:
    """How the offered rate moves over the run: flat, a straight ramp from 0 to the rate,
    or `steps` equal stairs up to it."""
    kind: str = "constant"
    steps: int = 4

    def rate_at(self, t: float, duration: float, peak: float) -> float:
        if self.kind == "ramp":
            return peak * min(1.0, t / duration) if duration > 0 else peak
        if self.kind == "steps":
            stair = min(self.steps, int(t / duration * self.steps) + 1) if duration > 0 else self.steps
            return peak * stair / self.steps
        return peak

    def __str__(self) -> str:
        return f"steps:{self.steps}" if self.kind == "steps" else self.kind


def parse_profile(spec: str) -> Profile:
    kind, _, count = spec.partition(":")
    if kind not in PROFILES:
        raise ValueError(f"{spec!r} is not an arrival profile (known: constant, ramp, steps[:N])")
    if kind != "steps":
        if count:
            raise ValueError(f"{spec!r}: only steps takes a number")
        return Profile(kind)
    if count and (not count.isdigit() or int(count) < 1):
        raise ValueError(f"{spec!r}: the number of steps must be an integer >= 1")
    return Profile("steps", int(count) if count else 4)


@dataclass
class LoadPlan:
    rate: float                      # tasks/s offered at the profile's peak, over the whole fleet
    duration: float                  # seconds of arrivals
    handle: Distribution
    think: Distribution
    patience: Distribution | None
    profile: Profile = field(default_factory=Profile)
    drain: float = 10.0              # seconds allowed after arrivals stop for tasks to finish

    def settings(self) -> dict[str, Any]:
        return {"handle": str(self.handle), "think": str(self.think),
                "patience": str(self.patience) if self.patience else None}


# The fleet: spawned for the run, or attached to a running topology -------------------------------

class Fleet:
    chats: list[str]

    def stats(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def tell(self, body: dict[str, Any]) -> None:
        """Give every chat server the same `load` settings."""
        raise NotImplementedError

    def pids(self) -> dict[str, int]:
        raise NotImplementedError

    def wait(self, seconds: float) -> bool:
        """Let `seconds` pass (serving the supervisor if we host it); False when interrupted."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def fleet_topology(base_file: Path, directory: Path, servers: int, agents_per_server: int,
                   plan: LoadPlan, rate_per_server: float = 0.0) -> Path:
    """The base topology's MRDs, queues, agents and non-chat actors, with one chat actor of
    `servers` x `agents_per_server` (directory agents added when it has too few), in a run
    directory of its own so that it never meets a topology already running."""
    from .topology import load
    raw = yaml.safe_load(base_file.read_text()) or {}
    base = load(base_file)
    have = len(base.agents)
    actors = {name: spec for name, spec in (raw.get("actors") or {}).items() if spec.get("role") != "chat"}
    mrd = next((spec.get("mrd") for spec in (raw.get("actors") or {}).values()
                if spec.get("role") == "chat" and spec.get("mrd")), "chat")
    actors["chat"] = {"role": "chat", "count": servers, "agents": agents_per_server, "rate": rate_per_server,
                      "mrd": mrd, **{k: v for k, v in plan.settings().items() if v is not None}}
    agents = [hashed(entry) for entry in raw.get("agents") or []]  # the file we write holds no password
    if servers * agents_per_server > have:
        agents.append({"generate": {"count": servers * agents_per_server - have, "prefix": "load",
                                    "password_hash": passwords.hash_password(LOAD_PASSWORD)}})
    spec = {**raw, "name": f"load-{os.getpid()}", "run_dir": str(directory / "run"), "agents": agents,
            "actors": actors}
    spec.pop("endpoints", None)      # ipc in our own run directory: nothing shared with a running topology
    spec.pop("transport", None)
    spec.pop("security", None)
    if base.security:  # the same keys, wherever the fleet's file is written
        spec["security"] = base.security
    path = directory / "topology.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


LOAD_PASSWORD = "load-secret"  # the agents a fleet adds to the directory


def hashed(entry: dict[str, Any]) -> dict[str, Any]:
    """A directory entry (or generate block) with its password replaced by the hash."""
    if "generate" in entry:
        return {"generate": hashed(entry["generate"])}
    if "password" not in entry:
        return dict(entry)
    out = {k: v for k, v in entry.items() if k != "password"}
    out["password_hash"] = passwords.shared_hash(str(entry["password"]))
    return out


class SpawnedFleet(Fleet):
    """Our own supervisor, in this process: its actors die with us (parent-death signal)."""

    def __init__(self, base_file: Path, servers: int, agents_per_server: int, plan: LoadPlan,
                 rate_per_server: float = 0.0):
        """`rate_per_server` is what a server starts with, also when it is restarted."""
        from .supervisor import Supervisor
        from .topology import load
        self.directory = Path(tempfile.mkdtemp(prefix="mroute-load-"))
        try:
            self.topology = load(fleet_topology(base_file, self.directory, servers, agents_per_server, plan,
                                                rate_per_server))
            # the passwords, in memory only: the supervisor hands them to the Chat Servers
            plain = {a["id"]: a["password"] for a in load(base_file).agents if "password" in a}
            for agent in self.topology.agents:
                agent.setdefault("password", plain.get(agent["id"], LOAD_PASSWORD))
            self.supervisor = Supervisor(self.topology)
            self.supervisor.claim()
            self.supervisor.start()
            self.chats = [name for name, role in self.topology.instances() if role == "chat"]
            self.wait_for_agents(agents_per_server)
        except BaseException:
            self.close()
            raise

    def wait_for_agents(self, agents_per_server: int, timeout: float = 30.0) -> None:
        """Agents log in and go READY before the clock starts (bounded: report what came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if all(stats.get(c, {}).get("agents_ready", 0) >= stats.get(c, {}).get("agents", agents_per_server)
                   for c in self.chats):
                return
            if not self.wait(0.1):
                return

    def stats(self) -> dict[str, dict[str, Any]]:
        return self.supervisor.stats_now()

    def tell(self, body: dict[str, Any]) -> None:
        results = self.supervisor.ask_now(set(self.chats), "load", body)
        refused = {name: r["error"] for name, r in results.items() if "error" in r}
        if refused:
            raise RuntimeError(f"chat servers refused {body}: {refused}")

    def pids(self) -> dict[str, int]:
        pids = {c.name: c.pid for c in self.supervisor.children.values() if c.pid is not None}
        return {**pids, "supervisor+driver": os.getpid()}

    def wait(self, seconds: float) -> bool:
        self.supervisor.loop.run(timeout=seconds)
        return not self.supervisor.loop.stop_reason

    def close(self, keep: bool = False) -> None:
        """Stop the fleet and remove its directory, unless `keep` (its logs explain a failure)."""
        supervisor = getattr(self, "supervisor", None)
        if supervisor is not None:
            supervisor.stop()
            supervisor.close()
        topology = getattr(self, "topology", None)
        if topology is not None and topology.sock_dir != topology.run_dir:  # the short socket directory
            shutil.rmtree(topology.sock_dir, ignore_errors=True)
        if not keep:
            shutil.rmtree(self.directory, ignore_errors=True)


class AttachedFleet(Fleet):
    """The chat servers of a topology someone else started (`mroute up`)."""

    def __init__(self, topology: Any, servers: int | None):
        from . import client
        self.topology, self.client = topology, client
        if servers is not None:
            self.ask("scale", {"name": "chat", "count": servers}, timeout=60)
        actors = self.ask("status", {})["actors"]
        self.chats = [a["name"] for a in actors if a["role"] == "chat" and a["state"] == "RUNNING"]
        if not self.chats:
            raise RuntimeError(f"topology {topology.name!r} runs no chat server to drive")
        self.status_pids = {a["name"]: a["pid"] for a in actors if a.get("pid")}
        # What each server was doing, to give it back when we are done.
        self.settings = {name: self.ask("ask", {"name": name, "verb": "load", "body": {}})["actors"][name]
                         for name in self.chats}

    def ask(self, verb: str, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        return self.client.ask(self.topology, verb, body, timeout=timeout)

    def stats(self) -> dict[str, dict[str, Any]]:
        return self.ask("stats", {})["actors"]

    def tell(self, body: dict[str, Any]) -> None:
        self.ask("ask", {"name": "chat", "verb": "load", "body": body})

    def pids(self) -> dict[str, int]:
        return {**self.status_pids, "driver": os.getpid()}

    def wait(self, seconds: float) -> bool:
        try:
            time.sleep(seconds)  # pacing the driver; nothing to wait for
        except KeyboardInterrupt:
            return False
        return True

    def close(self) -> None:
        for name, settings in self.settings.items():
            try:
                restore = {k: v for k, v in settings.items() if k != "run"}
                self.ask("ask", {"name": name, "verb": "load", "body": restore})
            except self.client.NoAnswer as exc:
                print(f"could not give {name} its settings back: {exc}", file=sys.stderr)


# Reading the fleet ---------------------------------------------------------------------------------

CHAT_COUNTS = ("created", "queued", "refused", "routed", "routed_unmeasured", "abandoned", "closed", "expired",
               "closed_other", "lost", "accepted", "handled", "errors")
# What the servers saw of Comm's numbered streams: a gap (`missed` messages lost on the way)
# is recovered by a Resync, so it is no failure, but a run with some must say so.
STREAM_COUNTS = ("gaps", "missed", "resyncs", "streams")


@dataclass
class Reading:
    """One look at every actor: the chat servers' counts summed, their latency histograms
    merged, and Comm's view of what waits."""
    at: float
    counts: dict[str, int]
    latency: Histogram
    queue_wait: Histogram
    open: int
    unacknowledged: int
    waiting: int
    comm_live: int

    @classmethod
    def of(cls, stats: dict[str, dict[str, Any]], chats: list[str]) -> "Reading":
        counts = dict.fromkeys(CHAT_COUNTS + STREAM_COUNTS, 0)
        latency, open_, unacked = Histogram(), 0, 0
        for name in chats:
            s = stats.get(name, {})
            if "created" not in s:  # counting it as zero would make the figures wrong, not missing
                raise RuntimeError(f"{name} did not report its counts: {s.get('error', 'no answer')}")
            for key in CHAT_COUNTS + STREAM_COUNTS:
                counts[key] += int(s.get(key, 0))
            latency.merge(Histogram.from_json(s.get("latency", {})))
            open_ += int(s.get("open", 0))
            unacked += int(s.get("unacknowledged", 0))
        comm = next((s for s in stats.values() if "tasks_live" in s), {})
        return cls(time.monotonic(), counts, latency, Histogram.from_json(comm.get("queue_wait", {})), open_,
                   unacked, int(comm.get("tasks_waiting", 0)), int(comm.get("tasks_live", 0)))


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> dict[str, int]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in kB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def us(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


# The run -----------------------------------------------------------------------------------------

def run_load(plan: LoadPlan, fleet: Fleet, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    chats = fleet.chats
    pids = fleet.pids()
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    # A new run number: the servers count only what they create from now on.
    fleet.tell({"run": f"{os.getpid()}-{time.time_ns()}", "rate": 0.0, **plan.settings()})
    first = previous = Reading.of(fleet.stats(), chats)
    started = time.monotonic()
    series: list[dict[str, Any]] = []
    offered_now = -1.0
    interrupted = False
    next_sample = started + SAMPLE_EVERY

    def sample(now_reading: Reading, before: Reading, offered: float, phase: str) -> dict[str, Any]:
        seconds = max(1e-9, now_reading.at - before.at)
        window = now_reading.latency.minus(before.latency)
        row = {"t": round(now_reading.at - started, 2), "phase": phase, "offered_per_s": round(offered, 1),
               **{f"{k}_per_s": round((now_reading.counts[k] - before.counts[k]) / seconds, 1)
                  for k in ("created", "routed", "closed", "abandoned")},
               "waiting": now_reading.waiting, "open": now_reading.open,
               "route_p50_us": window.percentile(50), "route_p99_us": window.percentile(99),
               **{k: now_reading.counts[k] - first.counts[k]
                  for k in ("created", "routed", "closed", "abandoned", "gaps", "missed")}}
        series.append(row)
        if progress is not None:
            progress(row)
        return row

    try:
        while (elapsed := time.monotonic() - started) < plan.duration:
            offered = plan.profile.rate_at(elapsed, plan.duration, plan.rate)
            if abs(offered - offered_now) > 1e-6:
                fleet.tell({"rate": offered / len(chats)})
                offered_now = offered
            if time.monotonic() >= next_sample:
                reading = Reading.of(fleet.stats(), chats)
                sample(reading, previous, offered_now, "load")
                previous, next_sample = reading, next_sample + SAMPLE_EVERY
            if not fleet.wait(max(0.0, min(TICK, next_sample - time.monotonic(), plan.duration - elapsed))):
                interrupted = True
                break
        fleet.tell({"rate": 0.0})
        cpu_load = {name: cpu_seconds(pid) for name, pid in pids.items()}
        reading = at_load_end = Reading.of(fleet.stats(), chats)
        load_ended = reading.at
        # Drain: no more customers; wait for every task we made to end (bounded).
        drain_deadline = time.monotonic() + plan.drain
        while not interrupted and (reading.open or reading.unacknowledged) and time.monotonic() < drain_deadline:
            if not fleet.wait(min(0.2, drain_deadline - time.monotonic())):
                interrupted = True
            reading = Reading.of(fleet.stats(), chats)
            if reading.at >= next_sample:
                sample(reading, previous, 0.0, "drain")
                previous, next_sample = reading, next_sample + SAMPLE_EVERY
        last = reading
        if last.at > previous.at:  # the series ends where the totals do
            sample(last, previous, 0.0, "drain")
        memory = {name: memory_kb(pid) for name, pid in pids.items()}
    except BaseException:
        fleet.tell({"rate": 0.0})  # whatever went wrong, stop offering customers
        raise

    counts = {k: last.counts[k] - first.counts[k] for k in CHAT_COUNTS + STREAM_COUNTS}
    latency = last.latency.minus(first.latency)
    wait = last.queue_wait.minus(first.queue_wait)
    load_seconds = load_ended - started
    # A task is lost when nothing will ever end it: it died with a Comm that restarted, or
    # its server still waits for it and Comm no longer has it (or never acknowledged it).
    # The second is counted in aggregate: tasks in Comm from outside this run (another
    # client, an attached topology's earlier load) can hide as many losses.
    died = last.counts["lost"] - first.counts["lost"]
    lost = died + max(0, last.open + last.unacknowledged - last.comm_live)
    processes = {}
    for name, pid in pids.items():
        before, after = cpu_before.get(name), cpu_load.get(name)
        cpu = after - before if before is not None and after is not None else None
        processes[name] = {"pid": pid, "cpu_s": round(cpu, 2) if cpu is not None else None,
                           "cpu_percent": round(100 * cpu / load_seconds, 1) if cpu is not None else None,
                           "peak_rss_mb": round(memory[name].get("VmHWM", 0) / 1024, 1),
                           "rss_mb": round(memory[name].get("VmRSS", 0) / 1024, 1)}
    return {
        "plan": {"rate": plan.rate, "duration_s": plan.duration, "profile": str(plan.profile),
                 "chat_servers": len(chats), **plan.settings()},
        "load_s": round(load_seconds, 2), "drain_s": round(last.at - load_ended, 2), "interrupted": interrupted,
        "created": counts["created"], "acknowledged": counts["queued"], "refused": counts["refused"],
        "routed": counts["routed"], "routed_unmeasured": counts["routed_unmeasured"],
        "accepted": counts["accepted"], "closed": counts["closed"], "abandoned": counts["abandoned"],
        "expired": counts["expired"], "closed_other": counts["closed_other"], "unfinished": last.open,
        "unacknowledged": last.unacknowledged, "lost": lost, "lost_with_comm": died, "errors": counts["errors"],
        **{k: counts[k] for k in STREAM_COUNTS},
        "created_per_s": round((at_load_end.counts["created"] - first.counts["created"]) / load_seconds, 1)
        if load_seconds else 0.0,
        "closed_per_s": round((at_load_end.counts["closed"] - first.counts["closed"]) / load_seconds, 1)
        if load_seconds else 0.0,
        "route_p50_us": us(latency.percentile(50)), "route_p90_us": us(latency.percentile(90)),
        "route_p99_us": us(latency.percentile(99)), "route_max_us": latency.max_us if latency.count else None,
        "queue_wait_p50_us": us(wait.percentile(50)), "queue_wait_p99_us": us(wait.percentile(99)),
        "queue_wait_max_us": wait.max_us if wait.count else None,
        "latency_histogram": latency.to_json(), "processes": processes, "series": series,
    }


def accounted(report: dict[str, Any]) -> bool:
    """Every task created has an outcome or is still known to be in progress."""
    ends = sum(report[k] for k in ("refused", "closed", "abandoned", "expired", "closed_other", "unfinished",
                                   "unacknowledged", "lost_with_comm"))
    return report["created"] == ends

