"""Prometheus metrics, served over HTTP for the supervisor and by `mroute actor` (its own).

Every scrape is current to within a second: answers older than that are asked for again
when the scrape comes, waiting a bounded time, and what did not come in time is shown as it
was last heard, its age said (`mroute_stats_age_seconds`). The supervisor's port is the
topology's (`metrics: {port, host, names}`), bound when the supervisor starts (one in use
is refused then) and served, once every actor is READY, by a process of its own
(launch/metricsd.py) that asks the supervisor as the CLI does: a supervisor that is stopped
or busy leaves scrapes answered. The first scrape waits for the first answers, so it is
complete. Every series a topology can have is there from the first scrape, at 0 when
nothing happened: each queue, each MRD's every agent state, each Chat Server's outcomes.
A request by a name the port is not served as is refused (launch/httpguard.py).
Every metric is named `mroute_...`:

- `mroute_build_info{version,python,pyzmq,libzmq}` 1
- `mroute_actor_up{actor,role}` 1 when RUNNING or DEGRADED (answering);
  `mroute_actor_degraded{actor,role}` 1 while DEGRADED, else 0, and
  `mroute_actor_degraded_reason{actor,role,reason}` 1 while it is, saying why;
  `mroute_actor_restarts_total{actor,role}`; `mroute_log_dropped_bytes_total{actor,role}`
  (its output the supervisor could not write to its log file);
  `mroute_stats_age_seconds{actor,role}` how old what the scrape shows of the actor is (its
  stats and its state: over a second when it or the supervisor did not answer in time)
- `mroute_messages_received_total`, `mroute_messages_sent_total`,
  `mroute_messages_refused_total`, `mroute_messages_dropped_total` `{actor,role}`
- `mroute_tasks_total{event}` (Comm: created, routed, accepted, closed, requeued, rona,
  expired), `mroute_tasks_live`, `mroute_tasks_waiting{queue}`,
  `mroute_queue_oldest_wait_seconds{queue}`
- `mroute_agents{mrd,state}` logged-in agents by state
- `mroute_auth_failures_total{actor,role,reason}` CURVE handshakes an actor refused
  (reason: unknown_key, no_curve, bad_handshake); only actors that bind CURVE sockets
- `mroute_chat_tasks_total{actor,outcome}` a simulated Chat Server's tasks: created,
  routed, accepted, closed, abandoned, expired, lost, refused, errors, gave_up
- `mroute_routing_latency_seconds{actor}` histogram (Task sent -> TaskAgentSelected, per
  Chat Server); `mroute_queue_wait_seconds{queue}` histogram (Comm: until accepted or gone);
  `mroute_queue_tasks_total{queue,outcome}` (created, accepted, left)
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from wire.states import AGENT_STATES, LOGOUT
from wire.stats import Histogram, bucket_low, bucket_mid

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Powers of two in microseconds (0.512 ms ... 67 s): edges of our own buckets, so that each
# `le` bucket counts exactly what is <= its bound.
BOUNDS_S = tuple((1 << k) / 1e6 for k in range(9, 27))
# What a simulated Chat Server counts of its own tasks: `lost` are acknowledged tasks a
# (restarted) Comm no longer knew; `gave_up` requests never answered in a minute.
CHAT_OUTCOMES = ("created", "routed", "accepted", "closed", "abandoned", "expired", "lost", "refused", "errors",
                 "gave_up")
COMM_EVENTS = {"tasks_created": "created", "tasks_routed": "routed", "tasks_accepted": "accepted",
               "tasks_closed": "closed", "tasks_requeued": "requeued", "rona": "rona", "expired": "expired",
               "offers": "offered"}


def prometheus_buckets(hist: Histogram) -> tuple[list[tuple[str, float]], float]:
    """Our log-linear buckets folded into cumulative Prometheus buckets, and the sum (from
    bucket middles: within 3 % of the truth)."""
    cumulative, total = [], 0.0
    for bound in BOUNDS_S:
        cumulative.append((repr(bound), float(sum(n for b, n in hist.counts.items()
                                                   if bucket_low(b + 1) / 1e6 <= bound))))
    cumulative.append(("+Inf", float(hist.count)))
    total = sum(bucket_mid(b) * n for b, n in hist.counts.items()) / 1e6
    return cumulative, total


@dataclass(frozen=True)
class Known:
    """The label values a topology can have, so that each series is there at 0 before
    anything happens (and while the actor that counts it is down); for the supervisor's
    port, where its serving process asks (the supervisor's control socket) and the names
    it is served as besides its address (`metrics.names`, the addresses of `hosts:`)."""
    queues: tuple[str, ...] = ()
    mrds: tuple[str, ...] = ()
    control: str | None = None
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, topology: Any) -> "Known":
        return cls(tuple(topology.queues), tuple(topology.mrds), topology.control_endpoint("control"),
                   tuple(topology.metrics.get("names", ())) + tuple(topology.hosts.values()))


AUTH_REASONS = ("unknown_key", "no_curve", "bad_handshake")
BINDING_ROLES = ("comm", "mre", "gc")


class TopologyCollector:
    """Reads a view: `view()` returns (the actors' status, their stats) or, with each
    actor's age in seconds, (status, stats, ages)."""

    def __init__(self, view: Callable[[], tuple[Any, ...]], known: Known = Known()):
        self.view = view
        self.known = known

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        actors, stats, *aged = self.view()
        yield build_info()
        if aged:
            yield stats_age(actors, aged[0])
        up = GaugeMetricFamily("mroute_actor_up", "1 when the actor is RUNNING or DEGRADED (answering)",
                               labels=["actor", "role"])
        degraded = GaugeMetricFamily("mroute_actor_degraded", "1 while the actor serves only in part, else 0",
                                     labels=["actor", "role"])
        degraded_reason = GaugeMetricFamily("mroute_actor_degraded_reason", "1 while DEGRADED, with why",
                                            labels=["actor", "role", "reason"])
        restarts = CounterMetricFamily("mroute_actor_restarts", "restarts by the supervisor", labels=["actor", "role"])
        log_dropped = CounterMetricFamily("mroute_log_dropped_bytes", "output the supervisor could not write to the "
                                          "actor's log file", labels=["actor", "role"])
        messages = {key: CounterMetricFamily(f"mroute_messages_{name}", f"messages {name}", labels=["actor", "role"])
                    for key, name in (("received", "received"), ("sent", "sent"), ("refused", "refused"),
                                      ("send_dropped", "dropped"))}
        refused = CounterMetricFamily("mroute_auth_failures", "CURVE handshakes refused",
                                      labels=["actor", "role", "reason"])
        outcomes = CounterMetricFamily("mroute_chat_tasks", "a simulated Chat Server's tasks, by outcome",
                                       labels=["actor", "outcome"])
        latencies: dict[str, Histogram] = {}
        comm: dict[str, Any] = {}
        for actor in actors:
            labels = [actor["name"], actor["role"]]
            up.add_metric(labels, 1.0 if actor["state"] in ("RUNNING", "DEGRADED") else 0.0)
            degraded.add_metric(labels, 1.0 if actor["state"] == "DEGRADED" else 0.0)
            if actor["state"] == "DEGRADED":
                degraded_reason.add_metric([*labels, actor.get("reason", "")], 1.0)
            restarts.add_metric(labels, float(actor["restarts"]))
            log_dropped.add_metric(labels, float(actor.get("log_dropped_bytes", 0)))
            data = stats.get(actor["name"], {})
            for key, family in messages.items():
                family.add_metric(labels, float(data.get("counters", {}).get(key, 0)))
            by_reason = data.get("auth", {}).get("by_reason", {})
            zeros = AUTH_REASONS if actor["role"] in BINDING_ROLES else ()   # 0 without CURVE: none refused
            for reason in dict.fromkeys([*zeros, *by_reason]):
                refused.add_metric([*labels, reason], float(by_reason.get(reason, 0)))
            if actor["role"] == "chat":  # one series each: a restarted server resets only its own
                latencies[actor["name"]] = Histogram.from_json(data.get("latency", {}))
                for outcome in CHAT_OUTCOMES:
                    outcomes.add_metric([actor["name"], outcome], float(data.get(outcome, 0)))
            elif actor["role"] == "comm":
                comm = data
        yield up
        yield degraded
        yield degraded_reason
        yield restarts
        yield log_dropped
        yield from messages.values()
        yield refused
        yield outcomes
        if any(actor["role"] == "comm" for actor in actors):   # Comm's series where Comm is
            yield from self.comm_families(comm)
        latency = HistogramMetricFamily("mroute_routing_latency_seconds", "Task sent -> TaskAgentSelected",
                                        labels=["actor"])
        for name, hist in latencies.items():
            buckets, total = prometheus_buckets(hist)
            latency.add_metric([name], buckets, total)
        yield latency

    def comm_families(self, comm: dict[str, Any]) -> Any:
        """Tasks, queues and agents, as Comm counts them: every known queue and state at 0."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        tasks = CounterMetricFamily("mroute_tasks", "task events counted by Comm", labels=["event"])
        for key, event in COMM_EVENTS.items():
            tasks.add_metric([event], float(comm.get(key, 0)))
        yield tasks
        yield GaugeMetricFamily("mroute_tasks_live", "tasks Comm holds (waiting, offered or held)",
                                value=float(comm.get("tasks_live", 0)))
        waiting = GaugeMetricFamily("mroute_tasks_waiting", "tasks waiting for an agent", labels=["queue"])
        oldest = GaugeMetricFamily("mroute_queue_oldest_wait_seconds", "the longest wait now", labels=["queue"])
        queues = comm.get("queues", {})
        per_queue = CounterMetricFamily("mroute_queue_tasks", "tasks of a queue since Comm started: created, "
                                        "accepted, left (closed before an agent took them)", labels=["queue", "outcome"])
        waits = HistogramMetricFamily("mroute_queue_wait_seconds", "waiting for an agent, until accepted or gone",
                                      labels=["queue"])
        for queue in dict.fromkeys([*self.known.queues, *queues]):
            q = queues.get(queue, {})
            waiting.add_metric([queue], float(q.get("waiting", 0)))
            oldest.add_metric([queue], float(q.get("oldest_wait_s", 0)))
            for outcome in ("created", "accepted", "left"):
                per_queue.add_metric([queue, outcome], float(q.get(outcome, 0)))
            buckets, total = prometheus_buckets(Histogram.from_json(q.get("wait", {})))
            waits.add_metric([queue], buckets, total)
        yield waiting
        yield oldest
        yield per_queue
        yield waits
        agents = GaugeMetricFamily("mroute_agents", "agents by MRD and state", labels=["mrd", "state"])
        by_mrd = comm.get("agents_by_state", {})
        for mrd in dict.fromkeys([*self.known.mrds, *by_mrd]):
            by_state = by_mrd.get(mrd, {})
            for state in dict.fromkeys([*AGENT_STATES, *by_state]):
                if state != LOGOUT:
                    agents.add_metric([mrd, state], float(by_state.get(state, 0)))
        yield agents


@functools.lru_cache(maxsize=1)
def versions() -> tuple[str, str, str, str]:
    import platform

    import zmq
    from . import version
    return version(), platform.python_version(), zmq.pyzmq_version(), zmq.zmq_version()


def stats_age(actors: list[dict[str, Any]], ages: dict[str, float]) -> Any:
    from prometheus_client.core import GaugeMetricFamily
    age = GaugeMetricFamily("mroute_stats_age_seconds", "how old what this scrape shows of the actor is: over a "
                            "second when it (or the supervisor) did not answer in time; +Inf: never",
                            labels=["actor", "role"])
    for actor in actors:
        age.add_metric([actor["name"], actor["role"]], round(ages.get(actor["name"], float("inf")), 3))
    return age


def build_info() -> Any:
    from prometheus_client.core import GaugeMetricFamily
    info = GaugeMetricFamily("mroute_build_info", "the versions this mroute runs with",
                             labels=["version", "python", "pyzmq", "libzmq"])
    info.add_metric(list(versions()), 1.0)
    return info


def exposition(collector: TopologyCollector) -> bytes:
    """The text a scrape gets."""
    from prometheus_client import CollectorRegistry, generate_latest
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry)


STOP_WAIT_S = 2.0   # seconds the serving process has to go when the supervisor closes


@dataclass
class Target:
    """The supervisor's scrape target: the port bound in the supervisor, served by a
    process of its own (launch/metricsd.py), started again if it dies."""
    sock: socket.socket
    host: str
    known: Known
    server_port: int
    proc: subprocess.Popen[bytes] | None = None
    closing: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)   # no process started once closing


def bind(host: str, port: int, known: Known) -> Target:
    """The port, bound now (a port in use raises OSError here) and served once `start` is
    called: a scrape that comes earlier waits in its queue for the first answers."""
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                backlog=64)
    return Target(sock, host, known, sock.getsockname()[1])


def start(target: Target) -> None:
    """Serve the port from a process of our own: a thread here starts it, waits for it and
    starts it again should it die (it dies with that thread: the parent-death signal)."""
    threading.Thread(target=keep_serving, args=(target,), name="metrics", daemon=True).start()


def keep_serving(target: Target) -> None:
    config = {"fd": target.sock.fileno(), "parent": os.getpid(), "control": target.known.control,
              "host": target.host, "names": list(target.known.names), "queues": list(target.known.queues),
              "mrds": list(target.known.mrds)}
    while True:
        with target.lock:
            if target.closing.is_set():
                return
            proc = target.proc = subprocess.Popen(
                [sys.executable, "-m", "launch.metricsd", orjson.dumps(config).decode()],
                pass_fds=(target.sock.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
        assert proc.stderr is not None
        for line in proc.stderr:   # its lines where ours go now (a detached supervisor's log, once it has one)
            try:
                os.write(2, line)
            except OSError:
                pass
        proc.stderr.close()
        status = proc.wait()
        if not target.closing.wait(1.0):   # not asked to go: a bug, said, and served again
            logging.getLogger("mroute.supervisor").error("the metrics server exited (status %s): starting it "
                                                          "again", status)


def close(target: Target) -> None:
    with target.lock:
        target.closing.set()
        proc = target.proc
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    target.sock.close()

