"""The summary printed after a bounded run: what the topology did, from its actors' stats."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from wire.stats import Histogram

CHAT_COUNTS = ("created", "queued", "routed", "accepted", "closed", "errors")


def summarize(stats: dict[str, Any], roles: dict[str, str], duration: float) -> dict[str, Any]:
    """Fold the actors' stats into one summary (counts summed over Chat Servers, latency
    histograms merged bucket by bucket)."""
    latency = Histogram()
    chat = dict.fromkeys(CHAT_COUNTS, 0)
    comm: dict[str, Any] = {}
    for name, data in stats.items():
        if "error" in data:
            continue
        if roles.get(name) == "chat":
            for key in CHAT_COUNTS:
                chat[key] += data.get(key, 0)
            latency.merge(Histogram.from_json(data.get("latency", {})))
        elif roles.get(name) == "comm":
            comm = data
    return {"duration_s": round(duration, 1), "agents_logged_in": comm.get("agents_logged_in", 0),
            "tasks_created": chat["created"], "tasks_routed": chat["routed"], "tasks_accepted": chat["accepted"],
            "tasks_closed": chat["closed"], "tasks_waiting": comm.get("tasks_waiting", 0),
            "errors": chat["errors"],
            "route_p50_us": latency.percentile(50), "route_p99_us": latency.percentile(99),
            "route_max_us": latency.max_us if latency.count else None,
            "unanswered": sorted(name for name, data in stats.items() if "error" in data)}


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"mroute: {summary['duration_s']} s", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    fmt = lambda us: "-" if us is None else (f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} us")  # noqa: E731
    rows = [("agents logged in", summary["agents_logged_in"]), ("tasks created", summary["tasks_created"]),
            ("tasks routed", summary["tasks_routed"]), ("tasks accepted", summary["tasks_accepted"]),
            ("tasks closed", summary["tasks_closed"]), ("tasks waiting", summary["tasks_waiting"]),
            ("routing latency p50", fmt(summary["route_p50_us"])), ("routing latency p99", fmt(summary["route_p99_us"])),
            ("routing latency max", fmt(summary["route_max_us"])), ("errors", summary["errors"])]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    if summary["unanswered"]:
        console.print(f"[yellow]no stats from: {', '.join(summary['unanswered'])}[/yellow]")


def print_explanation(answer: dict[str, Any], console: Console | None = None) -> None:
    """`mroute explain`: the task's routing history in words; for its last offer, the other
    agents of the MRD and why each was not chosen; while it waits, every agent of its queue
    with what keeps it from taking the task."""
    from datetime import datetime
    console = console or Console(soft_wrap=True)
    where = f" in queue {answer['queue']}, policy {answer['policy']}" if "queue" in answer else " (no longer routed)"
    console.print(f"[bold]task {answer['task']}[/bold]{where}")
    if answer.get("policy_words"):
        console.print(f"  the policy prefers: {answer['policy_words']}")
    for d in answer["decisions"]:
        stamp = datetime.fromtimestamp(d["time"]).strftime("%H:%M:%S.%f")[:-3]
        details = ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("time", "event", "candidates", "clock"))
        console.print(f"  {stamp} [cyan]{d['event']}[/cyan] {details}")
        for c in d.get("candidates", []):
            console.print(f"      best of step {c['step']}: {c['agent']} ({c['words']})")
    not_chosen = answer.get("not_chosen")
    if not_chosen:
        console.print("  not chosen at the last offer:")
        for row in sorted(not_chosen, key=lambda r: (r["step"] is None, r["step"] or 0, r["agent"])):
            step = "no step" if row["step"] is None else f"step {row['step']}"
            words = f": {row['words']}" if row.get("words") else ""
            console.print(f"    {row['agent']:<12} {step:<8} {row['why']}{words}")
    elif not_chosen is None and any(d["event"] == "offered" for d in answer["decisions"]):
        console.print("  (the other agents at that offer were not recorded: the MRD has more than 32 agents, "
                      "so each decision keeps only the best of each step)")
    for step in answer.get("steps", []):
        mark = "reached" if step["reached"] else "not reached"
        console.print(f"  step {step['step']}: {step['expr']!r} timeout {step['timeout']:g} s, {mark}, "
                      f"{step['eligible']} eligible now")
    if answer.get("waiting"):
        console.print("  why no agent takes it now:")
        for a in answer.get("agents", []):
            words = f": {a['words']}" if a.get("words") else ""
            console.print(f"    {a['agent']:<12} {a['state']:<18} {a['why']}{words}")
