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
import time
from typing import Any, Callable

from wire.stats import Histogram, bucket_low

from ..procstat import cpu_seconds, memory_kb
from . import rows as loadrows
from .fleet import Fleet
from .plan import BEHAVIOUR_COUNTS, CHAT_COUNTS, STREAM_COUNTS, VOICE_COUNTS, LoadPlan, Reading, VoicePlan


TICK = 0.25          # seconds between rate updates
SAMPLE_EVERY = 1.0   # seconds between samples of the time series
def window_max(window: Histogram) -> float | None:
    """The largest sample of a one-second window, to its bucket's upper edge: the max a
    histogram difference knows (its max_us is the whole run's)."""
    if not window.counts:
        return None
    return float(min(bucket_low(max(window.counts) + 1), window.max_us))


def failures(reading: Reading) -> int:
    return sum(reading.counts[k] for k in loadrows.FAILURE_COUNTS)


def us(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def queue_calls(reading: Reading, queue: str) -> dict[str, int]:
    """The GC's counts of one voice queue's calls (actors/gc/callers.py): another queue's (a
    topology's `rate`) are not the run's."""
    return {k: int(n) for k, n in ((reading.gc.get("calls") or {}).get(queue) or {}).items()}


def calls_live(reading: Reading, queue: str) -> int:
    """The queue's calls not ended yet (waiting, ringing or talking): a voice run drains them too."""
    return queue_calls(reading, queue).get("calls_live", 0)


def voice_figures(voice: VoicePlan, first: Reading, last: Reading, seconds: float) -> dict[str, Any]:
    """The GC's callers on the run's queue over the run, as differences like the chats': they add
    up, placed + live at the start = ended + dropped + refused + unfinished (live at the end)."""
    if not last.gc:
        raise RuntimeError("the GC did not report its calls: no voice figures")
    before, after = queue_calls(first, voice.queue_name), queue_calls(last, voice.queue_name)
    counts = {k: after.get(k, 0) - before.get(k, 0) for k in VOICE_COUNTS}
    return {**voice.to_json(), "calls_s": round(seconds, 2), **counts,
            "calls_unfinished": after.get("calls_live", 0), "calls_live_at_start": before.get("calls_live", 0),
            "calls_placed_per_s": round(counts["calls_placed"] / seconds, 2) if seconds else 0.0}


def calls_accounted(voice: dict[str, Any]) -> bool:
    """Every call placed on the run's queue (and every one live when it began) has an outcome
    or is still live."""
    return voice["calls_placed"] + voice["calls_live_at_start"] == sum(
        voice[k] for k in ("calls_ended", "calls_dropped", "calls_refused", "calls_unfinished"))


# The run -----------------------------------------------------------------------------------------

def run_load(plan: LoadPlan, fleet: Fleet, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    chats = fleet.chats
    pids = fleet.pids()
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    # A new run number: the servers count only what they create from now on.
    fleet.tell({"run": f"{os.getpid()}-{time.time_ns()}", "rate": 0.0, **plan.load_body()})
    voice = plan.voice
    if voice is not None:   # the phones' ring and the callers' talk; no call yet
        fleet.tell_gc(voice.gc_body(0.0))
    first = previous = Reading.of(fleet.stats(), chats)
    started = time.monotonic()
    calls_began = calls_ended = started
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
               "time": round(time.time(), 3), "waiting": now_reading.waiting, "open": now_reading.open,
               "route_p50_us": window.percentile(50), "route_p90_us": window.percentile(90),
               "route_p99_us": window.percentile(99), "route_max_us": window_max(window),
               "agents": loadrows.agents_by_state(now_reading.comm),
               **{k: now_reading.counts[k] - first.counts[k]
                  for k in ("created", "routed", "closed", "abandoned", "gaps", "missed")},
               # the run so far, as Locust's history gives it: failures, and the latency's figures
               "failures": failures(now_reading) - failures(first),
               "failures_per_s": round((failures(now_reading) - failures(before)) / seconds, 1),
               "route_total": loadrows.latency_figures(now_reading.latency.minus(first.latency))}
        series.append(row)
        if progress is not None:
            progress(row)
        return row

    try:
        if voice is not None:
            fleet.tell_gc(voice.gc_body(voice.calls_per_s))
            calls_began = time.monotonic()
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
        if voice is not None:
            fleet.tell_gc(voice.stop_body())
            calls_ended = time.monotonic()
        cpu_load = {name: cpu_seconds(pid) for name, pid in pids.items()}
        reading = at_load_end = Reading.of(fleet.stats(), chats)
        load_ended = reading.at
        # Drain: no more customers (nor callers); wait for every task we made, and every call,
        # to end (bounded).
        drain_deadline = time.monotonic() + plan.drain
        while not interrupted and (reading.open or reading.unacknowledged
                                       or (voice and calls_live(reading, voice.queue_name))) \
                and time.monotonic() < drain_deadline:
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
        if voice is not None:      # and calls
            fleet.tell_gc(voice.stop_body())
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
                 "chat_servers": len(chats), **plan.load_body(), "hook": plan.hook,
                 **({"voice": voice.to_json()} if voice else {})},
        "agents": sum(int(s.get("agents", 0)) for s in last.servers.values()),
        "load_s": round(load_seconds, 2), "drain_s": round(last.at - load_ended, 2), "interrupted": interrupted,
        "created": counts["created"], "acknowledged": counts["queued"], "refused": counts["refused"],
        "throttled": counts["throttled"],
        "routed": counts["routed"], "routed_unmeasured": counts["routed_unmeasured"],
        "accepted": counts["accepted"], "closed": counts["closed"], "abandoned": counts["abandoned"],
        "expired": counts["expired"], "closed_other": counts["closed_other"], "unfinished": last.open,
        "unacknowledged": last.unacknowledged, "lost": lost, "lost_with_comm": died, "errors": counts["errors"],
        **{k: counts[k] for k in STREAM_COUNTS},
        **{k: counts[k] for k in BEHAVIOUR_COUNTS},
        "hook_errors": counts["hook_errors"], "hook_names_dropped": counts["hook_names_dropped"],
        "hook": {k: n - first.hook.get(k, 0) for k, n in last.hook.items()},
        "created_per_s": round((at_load_end.counts["created"] - first.counts["created"]) / load_seconds, 1)
        if load_seconds else 0.0,
        "closed_per_s": round((at_load_end.counts["closed"] - first.counts["closed"]) / load_seconds, 1)
        if load_seconds else 0.0,
        "route_p50_us": us(latency.percentile(50)), "route_p90_us": us(latency.percentile(90)),
        "route_p95_us": us(latency.percentile(95)), "route_p99_us": us(latency.percentile(99)), "route_max_us": latency.max_us if latency.count else None,
        "queue_wait_p50_us": us(wait.percentile(50)), "queue_wait_p99_us": us(wait.percentile(99)),
        "queue_wait_max_us": wait.max_us if wait.count else None,
        "latency_histogram": latency.to_json(), "processes": processes, "series": series,
        "stats": loadrows.stats_rows(first, last, load_seconds, lost),
        "failures": loadrows.failure_rows(first, last, counts, lost, last.open),
        "queues": loadrows.queue_figures(first, last),
        **({"voice": voice_figures(voice, first, last, calls_ended - calls_began)} if voice else {}),
    }


def run_details(command: str, fleet: Fleet) -> dict[str, Any]:
    """What a report says of its run: when, which mroute, the command, the servers."""
    import datetime

    from .. import version
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "version": version(), "command": command, "chat_servers": len(fleet.chats)}


def accounted(report: dict[str, Any]) -> bool:
    """Every task created has an outcome or is still known to be in progress."""
    ends = sum(report[k] for k in ("refused", "closed", "abandoned", "expired", "closed_other", "unfinished",
                                   "unacknowledged", "lost_with_comm"))
    return report["created"] == ends

