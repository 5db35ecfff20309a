"""What `mroute load` shows on the terminal: the live line or table, and the summary
tables (the HTML page is loadpage.py, the CSV files loadrows.py)."""

from __future__ import annotations

from typing import Any

from .rows import VOICE_ROWS, behaviour_counts

SUMMARY_ROWS = (("created", "tasks created"), ("acknowledged", "acknowledged by Comm (QUEUED)"),
                ("refused", "refused OVERLOADED"),
                ("throttled", "of which the Chat Servers' throttle refused, unsent"),
                ("routed", "routed (agent chosen)"),
                ("routed_unmeasured", "routed, selection not seen (no latency sample)"),
                ("accepted", "accepted by an agent (each task once)"),
                ("closed", "closed (DONE)"), ("abandoned", "abandoned (customer gave up)"),
                ("expired", "expired (time to live)"), ("closed_other", "closed otherwise"),
                ("unfinished", "unfinished when the drain ended"), ("unacknowledged", "never acknowledged"),
                ("lost", "lost"), ("errors", "errors received"))


def voice_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, figure) for each voice figure, offered first; none when no voice ran."""
    voice = report.get("voice")
    if not voice:
        return []
    return [(f"calls offered a second on {voice['queue']} (talk {voice['talk']}, ring {voice['ring']})",
             f"{voice['calls_per_s']:g}/s"),
            *((label, f"{voice[key]:,}") for key, label in VOICE_ROWS),
            ("calls placed a second", f"{voice['calls_placed_per_s']:,.2f}/s")]


# Comm numbers what it publishes to each Chat Server: a gap there is recovered by a Resync (no
# failure), but shown, since every gap is messages Comm could not deliver.
STREAM_ROWS = (("gaps", "gaps in Comm's numbered streams"), ("missed", "messages missed in those gaps"),
               ("resyncs", "resyncs asked (Snapshot)"), ("streams", "new Comm streams heard (restarts)"))


def stream_note(report: dict[str, Any]) -> str:
    """One sentence on the fleet's streams: the figures say nothing when they are all zero."""
    if not report.get("gaps") and not report.get("streams"):
        return "no gap in Comm's numbered streams"
    return (f"{report.get('gaps', 0):,} gaps in Comm's numbered streams ({report.get('missed', 0):,} messages "
            f"missed), {report.get('streams', 0):,} new streams; the Chat Servers resynchronised "
            f"{report.get('resyncs', 0):,} times")


def ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f} ms"


def progress_line(row: dict[str, Any]) -> str:
    missed = f"  missed {row['missed']:,} in {row['gaps']:,} gaps" if row.get("gaps") else ""
    return (f"{row['t']:6.1f}s {row['phase']:5s} offered {row['offered_per_s']:8.1f}/s  created "
            f"{row['created_per_s']:8.1f}/s  routed {row['routed']:>8,}  closed {row['closed']:>8,}  "
            f"waiting {row['waiting']:>6,}  p50 {ms(row['route_p50_us']):>9s}  p99 {ms(row['route_p99_us']):>9s}"
            f"{missed}")


def progress_table(row: dict[str, Any], duration: float) -> Any:
    from rich.table import Table
    table = Table(title=f"mroute load: {row['t']:.0f} s of {duration:.0f} s ({row['phase']})", expand=False,
                  caption=f"{row['missed']:,} messages missed in {row['gaps']:,} gaps, resynchronised"
                  if row.get("gaps") else None)
    for column in ("offered/s", "created/s", "routed/s", "closed/s", "routed", "closed", "abandoned", "waiting",
                   "p50", "p99"):
        table.add_column(column, justify="right")
    table.add_row(f"{row['offered_per_s']:,.0f}", f"{row['created_per_s']:,.0f}", f"{row['routed_per_s']:,.0f}",
                  f"{row['closed_per_s']:,.0f}", f"{row['routed']:,}", f"{row['closed']:,}", f"{row['abandoned']:,}",
                  f"{row['waiting']:,}", ms(row["route_p50_us"]), ms(row["route_p99_us"]))
    return table


def limit_note(threshold: dict[str, Any]) -> str:
    """What a threshold against the base came to: ` (= 10.8)`, or that the base had no sample."""
    if "limit" not in threshold:
        return ""
    return " (base: no sample)" if threshold["limit"] is None else f" (= {threshold['limit']:g})"


def summary_tables(report: dict[str, Any]) -> list[Any]:
    from rich.table import Table
    plan = report["plan"]
    tasks = Table(title=f"mroute load: {plan['chat_servers']} Chat Servers, {plan['profile']} up to "
                        f"{plan['rate']:g} tasks/s for {plan['duration_s']:g} s", show_header=False)
    tasks.add_column("", justify="left")
    tasks.add_column("", justify="right")
    for key, label in SUMMARY_ROWS:
        tasks.add_row(label, f"{report[key]:,}")
    tasks.add_section()
    for _key, label, n in behaviour_counts(report):
        tasks.add_row(label, f"{n:,}")
    tasks.add_section()
    if report.get("voice"):
        for label, figure in voice_lines(report):
            tasks.add_row(label, figure)
        tasks.add_section()
    for key, label in STREAM_ROWS:
        tasks.add_row(label, f"{report[key]:,}")
    tasks.add_section()
    tasks.add_row("throughput (closed/s while loading)", f"{report['closed_per_s']:,.1f}")
    tasks.add_row("routing latency p50 / p90 / p99 / max",
                  " / ".join(ms(report[f"route_{p}_us"]) for p in ("p50", "p90", "p99", "max")))
    tasks.add_row("queue wait p50 / p99 / max",
                  " / ".join(ms(report[f"queue_wait_{p}_us"]) for p in ("p50", "p99", "max")))
    procs = Table(title="processes (CPU while loading, memory at the end)")
    for column in ("process", "pid", "CPU s", "CPU %", "peak RSS MB", "RSS MB"):
        procs.add_column(column, justify="right" if column != "process" else "left")
    for name, p in report["processes"].items():
        procs.add_row(name, str(p["pid"]), str(p["cpu_s"]), str(p["cpu_percent"]), str(p["peak_rss_mb"]),
                      str(p["rss_mb"]))
    rows = Table(title="by Chat Server and by queue, in ms (a server's: routing latency; a queue's: the wait)")
    for column in ("type", "name", "count", "fail", "median", "p90", "p99", "max", "per s"):
        rows.add_column(column, justify="left" if column in ("type", "name") else "right")
    for row in report.get("stats", []):
        rows.add_row(row["type"], row["name"], f"{row['count']:,}", f"{row['failures']:,}",
                     *(f"{row[k]:,.1f}" if row[k] is not None else "-" for k in ("median_ms", "p90_ms", "p99_ms",
                                                                                  "max_ms")),
                     f"{row['rate_per_s']:,.1f}")
    tables = [tasks, rows]
    if report.get("queues"):
        tables.append(queue_table(report["queues"]))
    tables.append(procs)
    if report.get("compare"):
        from .compare import table
        tables.append(table(report["compare"]))
    verdict = report.get("verdict") or {"thresholds": []}
    if verdict["thresholds"]:
        judged = Table(title="thresholds (--fail-on): " + ("all met" if verdict["passed"] else "MISSED"))
        for column in ("threshold", "actual", ""):
            judged.add_column(column, justify="left" if column == "threshold" else "right")
        for t in verdict["thresholds"]:
            judged.add_row(t["threshold"] + limit_note(t), "no sample" if t["actual"] is None else f"{t['actual']:g}",
                           "met" if t["passed"] else "[bold red]MISSED[/]")
        tables.append(judged)
    return tables


def queue_table(queues: dict[str, dict[str, Any]]) -> Any:
    """The tasks by the queue their customers chose (a scenario's `customers.queues`)."""
    from rich.table import Table
    table = Table(title="by the queue customers chose (wait: Task sent -> agent chosen)")
    for column in ("queue", "created", "accepted", "abandoned", "closed", "wait p50", "p90", "p99"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for name, q in queues.items():
        table.add_row(name, f"{q['created']:,}", f"{q['accepted']:,}", f"{q['abandoned']:,}", f"{q['closed']:,}",
                      *("-" if q[k] is None else f"{q[k]:,.1f} ms" for k in ("wait_p50_ms", "wait_p90_ms",
                                                                              "wait_p99_ms")))
    return table
