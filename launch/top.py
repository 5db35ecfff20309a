"""`mroute top`: a running topology at a glance, from what its supervisor and actors report.

Each frame is two looks at every actor's stats, `interval` seconds apart: rates (messages
in and out, tasks routed) and CPU are the differences; latency percentiles are those of
the tasks routed in between (the Chat Servers' histograms, merged and subtracted)."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from wire import states as S
from wire.stats import Histogram

from . import client
from .procstat import cpu_seconds, memory_kb
from .topology import Topology

SERVICE_LEVEL_S = 20.0  # the usual contact-centre target: answered within 20 s


def look(topology: Topology) -> dict[str, Any]:
    status = client.ask(topology, "status")
    stats = client.ask(topology, "stats")["actors"]
    pids = {a["name"]: a["pid"] for a in status["actors"] if a.get("pid")}
    return {"at": time.monotonic(), "status": status, "stats": stats,
            "cpu": {name: cpu_seconds(pid) for name, pid in pids.items()}}


def frame(before: dict[str, Any], after: dict[str, Any], topology: Topology | None = None) -> dict[str, Any]:
    """What one frame shows, as plain data (also what `--json` prints). Every MRD, agent
    state and queue of the topology is there, zero included, whatever Comm answered."""
    seconds = max(1e-9, after["at"] - before["at"])
    processes = []
    for actor in after["status"]["actors"]:
        name = actor["name"]
        now, was = after["stats"].get(name, {}), before["stats"].get(name, {})
        if "error" in now or "error" in was:  # no answer this time: no rate rather than a wrong one
            now = was = {}
        counters, old = now.get("counters", {}), was.get("counters", {})
        cpu_now, cpu_was = after["cpu"].get(name), before["cpu"].get(name)
        processes.append({
            "name": name, "role": actor["role"], "state": actor["state"], "reason": actor.get("reason", ""),
            "pid": actor["pid"], "uptime": actor.get("uptime", 0.0),
            "restarts": actor["restarts"],
            "cpu_percent": round(100 * (cpu_now - cpu_was) / seconds, 1)
            if cpu_now is not None and cpu_was is not None else None,
            "rss_mb": round(memory_kb(actor["pid"]).get("VmRSS", 0) / 1024, 1) if actor["pid"] else None,
            "in_per_s": round((counters.get("received", 0) - old.get("received", 0)) / seconds, 1),
            "out_per_s": round((counters.get("sent", 0) - old.get("sent", 0)) / seconds, 1)})
    roles = {a["name"]: a["role"] for a in after["status"]["actors"]}
    comm = next((after["stats"][n] for n, r in roles.items() if r == "comm" and n in after["stats"]), {})
    comm_was = next((before["stats"][n] for n, r in roles.items() if r == "comm" and n in before["stats"]), {})
    latency_now, latency_was = Histogram(), Histogram()
    for name, role in roles.items():
        if role == "chat":
            latency_now.merge(Histogram.from_json(after["stats"].get(name, {}).get("latency", {})))
            latency_was.merge(Histogram.from_json(before["stats"].get(name, {}).get("latency", {})))
    window = latency_now.minus(latency_was) if latency_now.count >= latency_was.count else latency_now
    waits = Histogram.from_json(comm.get("queue_wait", {}))
    within = sum(n for bucket, n in waits.counts.items() if bucket_upper_s(bucket) <= SERVICE_LEVEL_S)
    agents_by_state = {mrd: dict.fromkeys(S.AGENT_STATES, 0) for mrd in (topology.mrds if topology else {})}
    for mrd, by in comm.get("agents_by_state", {}).items():
        agents_by_state.setdefault(mrd, dict.fromkeys(S.AGENT_STATES, 0)).update(by)
    queues = {name: {"mrd": q["mrd"], "waiting": 0, "oldest_wait_s": 0.0}
              for name, q in (topology.queues if topology else {}).items()}
    for name, q in comm.get("queues", {}).items():
        queues.setdefault(name, {"mrd": "?"}).update(q)
    return {
        "topology": after["status"]["name"], "processes": processes,
        "agents_by_state": agents_by_state, "queues": queues,
        "routed_per_s": round((comm.get("tasks_routed", 0) - comm_was.get("tasks_routed", 0)) / seconds, 1),
        "route_p50_us": window.percentile(50), "route_p99_us": window.percentile(99),
        "service_level": round(within / waits.count, 3) if waits.count else None,
    }


def bucket_upper_s(bucket: int) -> float:
    from wire.stats import bucket_low
    return bucket_low(bucket + 1) / 1e6


def ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f} ms"


STATE_STYLES = {"RUNNING": "green", "STARTING": "cyan", "STOPPING": "cyan", "BACKOFF": "yellow",
                "DEGRADED": "bold yellow", "UNRESPONSIVE": "bold red", "FATAL": "bold red", "EXITED": "red",
                "STOPPED": "dim"}
KEY_HINTS = "q quit   Ctrl-C quit"


def render(view: dict[str, Any], interval: float | None = None) -> "Frame":
    return Frame(view, interval)


# (column, minimum width): each wide enough for the widest value it usually holds
# (UNRESPONSIVE, a 7-digit pid, 123,456/s), so that its columns never move between frames.
PROCESS_COLUMNS = (("process", 7), ("state", 12), ("pid", 7), ("restarts", 8), ("CPU %", 5), ("RSS MB", 6),
                   ("in/s", 7), ("out/s", 7))
QUEUE_COLUMNS = (("queue", 16), ("MRD", 8), ("waiting", 8), ("oldest wait", 11))
GAP = 2   # columns between the agents and the queues when they stand side by side


class Frame:
    """Three tables whose columns never change between frames (widths fixed, every state and
    queue listed), a summary line, and the keys, laid out for the console's width when it is
    drawn (a live view follows a resized terminal): boxed when the boxes fit, else without
    the outer edges, which keeps every column within 80; the agents and the queues side by
    side when both fit, and the summary on one line when it does."""

    def __init__(self, view: dict[str, Any], interval: float | None = None):
        self.view, self.interval = view, interval

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        boxed = natural_width(console, self.processes(boxed=True)) <= width
        agents, queues = self.agents(boxed), self.queues(boxed)
        yield self.processes(boxed)
        if natural_width(console, agents) + GAP + natural_width(console, queues) <= width:
            grid = Table.grid(padding=(0, GAP, 0, 0))
            grid.add_row(agents, queues)
            yield grid
        else:
            yield agents
            yield queues
        yield Text(pack(self.summary(), width))
        yield Text(KEY_HINTS + (f"   refresh every {self.interval:g} s" if self.interval else ""), style="reverse")

    def processes(self, boxed: bool) -> Table:
        view = self.view
        procs = table(f"mroute top: {view['topology']}", boxed)
        for column, width in PROCESS_COLUMNS:
            procs.add_column(column, justify="left" if column in ("process", "state") else "right", min_width=width)
        for p in view["processes"]:
            procs.add_row(p["name"], Text(p["state"], style=STATE_STYLES.get(p["state"], "")), str(p["pid"] or "-"),
                          str(p["restarts"]), "-" if p["cpu_percent"] is None else f"{p['cpu_percent']:.1f}",
                          "-" if p["rss_mb"] is None else f"{p['rss_mb']:.1f}", f"{p['in_per_s']:,.0f}",
                          f"{p['out_per_s']:,.0f}")
        # why a process is DEGRADED or UNRESPONSIVE, under the table: its columns stay put
        notes = [f"{p['name']} {p['state']}: {p['reason']}" for p in view["processes"] if p.get("reason")]
        if notes:
            procs.caption, procs.caption_justify = "\n".join(notes), "left"
        return procs

    def agents(self, boxed: bool) -> Table:
        """States down, MRDs across: every state is a row, so the table is as narrow as the MRDs."""
        by_state = self.view["agents_by_state"]
        agents = table("agents by state", boxed)
        agents.add_column("state", min_width=17)
        mrds = sorted(by_state)
        for mrd in mrds:
            agents.add_column(mrd, justify="right", min_width=6)
        for state in S.AGENT_STATES:
            agents.add_row(state, *(str(by_state[mrd].get(state, 0)) for mrd in mrds))
        return agents

    def queues(self, boxed: bool) -> Table:
        queues = table("queues", boxed)
        for column, width in QUEUE_COLUMNS:
            queues.add_column(column, justify="left" if column in ("queue", "MRD") else "right", min_width=width)
        for name, q in sorted(self.view["queues"].items()):
            queues.add_row(name, q.get("mrd", "?"), str(q["waiting"]),
                           f"{q['oldest_wait_s']:.1f} s" if q["waiting"] else "-")
        return queues

    def summary(self) -> list[str]:
        view, sl = self.view, self.view["service_level"]
        return [f"routed {view['routed_per_s']:,.1f}/s",
                f"routing latency p50 {ms(view['route_p50_us'])}, p99 {ms(view['route_p99_us'])}",
                f"service level (accepted within {SERVICE_LEVEL_S:.0f} s) "
                + ("-" if sl is None else f"{100 * sl:.1f} %")]


def natural_width(console: Console, renderable: Any) -> int:
    """Its width with room to spare (a measure within the console's width is capped at it)."""
    return Measurement.get(console, console.options.update_width(10_000), renderable).maximum


def pack(parts: list[str], width: int, sep: str = "   ") -> str:
    """The parts on as few lines as fit `width`, never breaking one."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(sep) + len(part) <= width:
            lines[-1] += sep + part
        else:
            lines.append(part)
    return "\n".join(lines)


def table(title: str, boxed: bool) -> Table:
    """Boxed, or (narrow) with inner lines only: the outer edges and padding cost 4 columns."""
    if boxed:
        return Table(title=title)
    return Table(title=title, box=box.MINIMAL_HEAVY_HEAD, show_edge=False, pad_edge=False)
