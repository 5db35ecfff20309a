"""The HTML report of `mroute load --html`: one self-contained file (inline SVG and CSS,
no script, no network), so that it can be mailed, attached to a ticket or opened years
later. What it shows, top to bottom: the verdict against the thresholds, the run's
details, the figures that matter, throughput, routing latency over time (log scale),
agents by state, queue depth, the latency distribution, a row per queue and per Chat
Server, the tasks by the queue customers chose, what the agents did (the behaviour counts),
the failures, Comm's numbered streams and the processes."""

from __future__ import annotations

from typing import Any

from wire.stats import Histogram, bucket_low

from .rows import behaviour_counts
from .report import STREAM_ROWS, SUMMARY_ROWS, stream_note, voice_lines
from .svgchart import Chart, Marker, density, esc

STATE_ORDER = ("READY", "RESERVED", "ACTIVE", "BUSY", "WORK_READY", "NOT_READY", "PENDING_NOT_READY", "INTERRUPTED",
               "LOGIN", "UNKNOWN")
STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:900px;
color:#222;line-height:1.4}h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #d8d8d8;padding:3px 7px;text-align:right;white-space:nowrap}th{background:#f4f4f4}
td:first-child,th:first-child,.rows td:nth-child(2),.rows th:nth-child(2){text-align:left}.verdict{display:inline-block;padding:4px 12px;border-radius:4px;
font-weight:bold;color:#fff}.pass{background:#2e7d32}.fail{background:#c62828}.none{background:#757575}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:1em 0}.card{border:1px solid #ddd;border-radius:6px;
padding:8px 12px;min-width:120px}.card b{display:block;font-size:1.3em}.card span{color:#666;font-size:.85em}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:.9em}dt{color:#666}dd{margin:0}
svg{display:block;margin:.8em 0;font-family:system-ui,sans-serif}svg .title{font-weight:bold;font-size:13px}
svg .tick{font-size:10px;fill:#555}svg .label{font-size:11px;fill:#333}svg .legend{font-size:11px}
svg .marker{font-size:10px}svg .grid{stroke:#eee}svg .axis{stroke:#444}.bad{color:#c62828;font-weight:bold}"""


def ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:,.2f} ms"


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return esc(value)


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def markers(report: dict[str, Any]) -> list[Marker]:
    """Where the profile stepped up, and where the drain began."""
    plan = report["plan"]
    out = []
    profile = str(plan["profile"])
    if profile.startswith("steps"):
        steps = int(profile.partition(":")[2] or 4)
        out += [Marker(plan["duration_s"] * i / steps, f"step {i + 1}") for i in range(1, steps)]
    out.append(Marker(report["load_s"], "drain", "#c62828"))
    return out


def charts(report: dict[str, Any]) -> list[str]:
    series = report["series"]
    end = max([report["load_s"] + report["drain_s"], *(row["t"] for row in series)], default=1.0)
    marks = markers(report)

    def line(key: str, scale: float = 1.0) -> list[tuple[float, float | None]]:
        return [(row["t"], row[key] / scale if row.get(key) is not None else None) for row in series]
    out = [Chart("Throughput", "tasks per second", end, markers=marks).lines({
        "offered": line("offered_per_s"), "created": line("created_per_s"), "routed": line("routed_per_s"),
        "closed": line("closed_per_s"), "abandoned": line("abandoned_per_s")})]
    out.append(Chart("Routing latency over time (Task sent to TaskAgentSelected), each second", "milliseconds (log)",
                     end, log_y=True, markers=marks).lines({
                         "p50": line("route_p50_us", 1000), "p90": line("route_p90_us", 1000),
                         "p99": line("route_p99_us", 1000), "max": line("route_max_us", 1000)}))
    states = [s for s in STATE_ORDER if any(row.get("agents", {}).get(s) for row in series)]
    states += sorted({s for row in series for s in row.get("agents", {})} - set(STATE_ORDER) - {"LOGOUT"})
    if states:
        out.append(Chart("Agents by state (Comm)", "agents", end, markers=marks).stacked(
            {s: [(row["t"], float(row.get("agents", {}).get(s, 0))) for row in series] for s in states}))
    out.append(Chart("Queue depth", "tasks", end, markers=marks).lines(
        {"waiting for an agent (Comm)": line("waiting"), "open at the Chat Servers": line("open")}))
    hist = Histogram.from_json(report["latency_histogram"])
    buckets = [(bucket_low(i) / 1000, bucket_low(i + 1) / 1000, n) for i, n in sorted(hist.counts.items()) if n]
    picks = {label: report.get(f"route_{key}_us") for label, key in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"))}
    out.append(density(f"Routing latency distribution ({hist.count:,} tasks)", buckets,
                       {label: value / 1000 for label, value in picks.items() if value is not None}))
    return out


def verdict_html(report: dict[str, Any]) -> str:
    verdict = report.get("verdict") or {"passed": True, "thresholds": []}
    lost = report["lost"]
    if not verdict["thresholds"]:
        badge = ('<span class="verdict fail">FAILED: tasks lost</span>' if lost else
                 '<span class="verdict none">no thresholds given (--fail-on)</span>')
        return f"<p>{badge}</p>"
    ok = verdict["passed"] and not lost
    rows = "".join(f"<tr><td>{esc(t['threshold'])}</td><td>{cell(t['actual'])}</td>"
                   f"<td class=\"{'' if t['passed'] else 'bad'}\">{'met' if t['passed'] else 'MISSED'}</td></tr>"
                   for t in verdict["thresholds"])
    return (f'<p><span class="verdict {"pass" if ok else "fail"}">{"PASSED" if ok else "FAILED"}</span></p>'
            f"<table><tr><th>threshold</th><th>actual</th><th></th></tr>{rows}</table>")


def details_html(report: dict[str, Any]) -> str:
    plan, run = report["plan"], report.get("run", {})
    items = [("date", run.get("date")), ("mroute", run.get("version")), ("command", run.get("command")),
             ("Chat Servers", plan["chat_servers"]), ("agents", report.get("agents")),
             ("arrivals", f"{plan['profile']} up to {plan['rate']:g} tasks/s for {plan['duration_s']:g} s"),
             ("handling / think / patience", f"{plan['handle']} / {plan['think']} / {plan['patience'] or 'none'}"),
             ("load / drain", f"{report['load_s']} s / {report['drain_s']} s"
                              + (" (interrupted)" if report["interrupted"] else ""))]
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{cell(v)}</dd>" for k, v in items if v is not None) + "</dl>"


def cards_html(report: dict[str, Any]) -> str:
    created = report["created"] or 1
    cards = [("closed per second", f"{report['closed_per_s']:,.1f}"), ("tasks created", f"{report['created']:,}"),
             ("routing p50", ms(report["route_p50_us"])), ("routing p99", ms(report["route_p99_us"])),
             ("queue wait p99", ms(report["queue_wait_p99_us"])),
             ("abandoned", f"{100 * report['abandoned'] / created:.1f} %"), ("lost", f"{report['lost']:,}")]
    return '<div class="cards">' + "".join(f'<div class="card"><b>{v}</b><span>{esc(k)}</span></div>'
                                           for k, v in cards) + "</div>"


def stats_html(report: dict[str, Any]) -> str:
    heads = ("name", "type", "count", "failures", "median", "average", "p90", "p95", "p99", "p99.9", "max", "per s")
    keys = ("name", "type", "count", "failures", "median_ms", "average_ms", "p90_ms", "p95_ms", "p99_ms", "p99.9_ms",
            "max_ms", "rate_per_s")
    rows = "".join("<tr>" + "".join(f"<td>{cell(row.get(k))}</td>" for k in keys) + "</tr>" for row in report["stats"])
    return (f"<table class=\"rows\"><tr>{''.join(f'<th>{h}</th>' for h in heads)}</tr>{rows}</table>"
            "<p>Times in milliseconds: a Chat Server's and the whole run's are routing latency, a queue's the wait "
            "for an agent (until accepted or gone); the CSV file (--csv) adds the least of each. Failures: customers who gave up, tasks that expired, Errors "
            "received and tasks lost; a queue's, tasks that left it before an agent took them.</p>")


def chosen_queues_html(report: dict[str, Any]) -> str:
    """The tasks by the queue their customers chose (a scenario's customers.queues)."""
    queues = report.get("queues") or {}
    if not queues:
        return ""
    heads = ("queue", "created", "accepted", "abandoned", "closed", "wait p50", "p90", "p99", "max")
    keys = ("created", "accepted", "abandoned", "closed", "wait_p50_ms", "wait_p90_ms", "wait_p99_ms", "wait_max_ms")
    rows = "".join(f"<tr><td>{esc(name)}</td>" + "".join(f"<td>{cell(q.get(k))}</td>" for k in keys) + "</tr>"
                   for name, q in queues.items())
    return (f"<h2>By the queue customers chose</h2><table class=\"queues\"><tr>"
            f"{''.join(f'<th>{h}</th>' for h in heads)}</tr>{rows}</table>"
            "<p>Counted by the Chat Servers; the wait, in milliseconds, from the Task sent to the agent chosen.</p>")


def behaviours_html(report: dict[str, Any]) -> str:
    found = behaviour_counts(report)
    if not found:
        return ""
    rows = "".join(f"<tr><td>{esc(label)}</td><td>{n:,}</td></tr>" for _key, label, n in found)
    return f"<h2>What the agents and customers did</h2><table class=\"behaviours\">{rows}</table>"


def voice_html(report: dict[str, Any]) -> str:
    """The scenario's voice calls, when they ran: what the GC's callers did."""
    lines = voice_lines(report)
    if not lines:
        return ""
    rows = "".join(f"<tr><td>{esc(label)}</td><td>{esc(figure)}</td></tr>" for label, figure in lines)
    return (f"<h2>Voice calls</h2><table class=\"voice\">{rows}</table><p>Placed by the GC's simulated callers; "
            "each agent's phone answers by itself after the ring and the caller hangs up after the talk. A call "
            "holds the agent's chats (INTERRUPTED, counted above).</p>")


def failures_html(report: dict[str, Any]) -> str:
    if not report["failures"]:
        return "<p>None: every task created was routed and ended as it should.</p>"
    rows = "".join(f"<tr><td>{esc(r['kind'])}</td><td>{esc(r['type'])}</td><td>{esc(r['code'])}</td>"
                   f"<td>{r['count']:,}</td></tr>" for r in report["failures"])
    return f"<table><tr><th>kind</th><th>answering</th><th>code</th><th>count</th></tr>{rows}</table>"


def html_page(report: dict[str, Any]) -> str:
    plan = report["plan"]
    title = (f"mroute load: {plan['chat_servers']} Chat Servers, {plan['profile']} up to {plan['rate']:g} tasks/s "
             f"for {plan['duration_s']:g} s")
    tasks = "".join(f"<tr><td>{esc(label)}</td><td>{report[key]:,}</td></tr>" for key, label in SUMMARY_ROWS)
    streams = "".join(f"<tr><td>{esc(label)}</td><td>{report[key]:,}</td></tr>" for key, label in STREAM_ROWS)
    procs = "".join(f"<tr><td>{esc(name)}</td><td>{p['pid']}</td><td>{cell(p['cpu_s'])}</td>"
                    f"<td>{cell(p['cpu_percent'])}</td><td>{cell(p['peak_rss_mb'])}</td></tr>"
                    for name, p in report["processes"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title><style>{STYLE}</style></head><body>
<h1>{esc(title)}</h1>
{verdict_html(report)}
{details_html(report)}
{cards_html(report)}
{''.join(charts(report))}
<h2>By queue and by Chat Server</h2>{stats_html(report)}
{chosen_queues_html(report)}
{behaviours_html(report)}
{voice_html(report)}
<h2>Failures</h2>{failures_html(report)}
<h2>Tasks</h2><table>{tasks}</table>
<h2>Comm's numbered streams</h2>
<p>{esc(sentence(stream_note(report)))}. A gap is recovered by a Resync: no failure, but each is messages Comm could not
deliver.</p><table>{streams}</table>
<h2>Processes</h2><p>CPU while loading, memory at the end (processes of this machine only).</p>
<table><tr><th>process</th><th>pid</th><th>CPU s</th><th>CPU %</th><th>peak RSS MB</th></tr>{procs}</table>
</body></html>
"""
