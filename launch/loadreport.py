"""What `mroute load` shows: the live line, the summary table and the HTML page.

The page is one file with inline SVG and no script or network reference, so it can be
mailed, attached to a ticket or opened years later."""

from __future__ import annotations

import html
from typing import Any

from wire.stats import Histogram, bucket_low

SUMMARY_ROWS = (("created", "tasks created"), ("acknowledged", "acknowledged by Comm (QUEUED)"),
                ("refused", "refused by Comm (OVERLOADED)"),
                ("routed", "routed (agent chosen)"),
                ("routed_unmeasured", "routed, selection not seen (no latency sample)"),
                ("accepted", "accepted by agents"),
                ("closed", "closed (DONE)"), ("abandoned", "abandoned (customer gave up)"),
                ("expired", "expired (time to live)"), ("closed_other", "closed otherwise"),
                ("unfinished", "unfinished when the drain ended"), ("unacknowledged", "never acknowledged"),
                ("lost", "lost"), ("errors", "errors received"))
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
    return [tasks, procs]


# SVG --------------------------------------------------------------------------------------------

WIDTH, HEIGHT, PAD = 720, 260, 50
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")


def nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def axes(title: str, x_label: str, y_label: str, x_max: float, y_max: float) -> list[str]:
    w, h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    out = [f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
           f'<line x1="{PAD}" y1="{PAD + h}" x2="{PAD + w}" y2="{PAD + h}" stroke="#333"/>',
           f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{PAD + h}" stroke="#333"/>',
           f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">{html.escape(x_label)}</text>',
           f'<text x="14" y="{HEIGHT / 2}" transform="rotate(-90 14 {HEIGHT / 2})" text-anchor="middle">'
           f'{html.escape(y_label)}</text>']
    for i in range(5):
        y = PAD + h - h * i / 4
        out.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{PAD + w}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{PAD - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{y_max * i / 4:g}</text>')
        x = PAD + w * i / 4
        out.append(f'<text x="{x:.1f}" y="{PAD + h + 14}" text-anchor="middle" font-size="10">{x_max * i / 4:g}</text>')
    return out


def line_chart(title: str, y_label: str, series: dict[str, list[tuple[float, float | None]]]) -> str:
    points = [(x, y) for values in series.values() for x, y in values if y is not None]
    x_max = nice_max(max((x for x, _ in points), default=1))
    y_max = nice_max(max((y for _, y in points), default=1))
    w, h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    parts = axes(title, "seconds", y_label, x_max, y_max)
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{PAD + w * x / x_max:.1f},{PAD + h - h * y / y_max:.1f}" for x, y in values if y is not None)
        if path:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        parts.append(f'<text x="{PAD + 10 + 130 * i}" y="{PAD - 8}" fill="{colour}" font-size="11">'
                     f'{html.escape(name)}</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}">{"".join(parts)}</svg>'


def histogram_chart(title: str, hist: Histogram) -> str:
    """Bars per histogram bucket, on a log scale of latency (the buckets are log-linear)."""
    w, h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    items = sorted(hist.counts.items())
    parts = [f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
             f'<line x1="{PAD}" y1="{PAD + h}" x2="{PAD + w}" y2="{PAD + h}" stroke="#333"/>']
    if items:
        first, last = items[0][0], items[-1][0] + 1
        top = max(n for _, n in items)
        span = max(1, last - first)
        bar = w / span
        for index, n in items:
            height = h * n / top
            x = PAD + (index - first) * bar
            parts.append(f'<rect x="{x:.1f}" y="{PAD + h - height:.1f}" width="{max(bar - 0.5, 0.5):.1f}" '
                         f'height="{height:.1f}" fill="{COLOURS[0]}">'
                         f'<title>{ms(bucket_low(index))}+: {n}</title></rect>')
        for index in (first, first + span // 2, last - 1):
            x = PAD + (index - first) * bar
            parts.append(f'<text x="{x:.1f}" y="{PAD + h + 14}" font-size="10" text-anchor="middle">'
                         f'{ms(bucket_low(index))}</text>')
        parts.append(f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end" font-size="10">{top}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">routing latency (log scale); '
                 f'{hist.count:,} tasks</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}">{"".join(parts)}</svg>'


def html_page(report: dict[str, Any]) -> str:
    series = report["series"]
    t = [row["t"] for row in series]

    def line(key: str, scale: float = 1.0) -> list[tuple[float, float | None]]:
        return [(x, row[key] / scale if row[key] is not None else None) for x, row in zip(t, series)]

    charts = [
        histogram_chart("Routing latency (Task sent to TaskAgentSelected)",
                        Histogram.from_json(report["latency_histogram"])),
        line_chart("Throughput", "tasks/s", {"offered": line("offered_per_s"), "created": line("created_per_s"),
                                             "routed": line("routed_per_s"), "closed": line("closed_per_s"),
                                             "abandoned": line("abandoned_per_s")}),
        line_chart("Queue depth", "tasks waiting (Comm)", {"waiting": line("waiting")}),
        line_chart("Routing latency percentiles", "ms", {"p50": line("route_p50_us", 1000),
                                                         "p99": line("route_p99_us", 1000)}),
    ]
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{report[key]:,}</td></tr>" for key, label in SUMMARY_ROWS)
    streams = "".join(f"<tr><td>{html.escape(label)}</td><td>{report[key]:,}</td></tr>" for key, label in STREAM_ROWS)
    rows += "".join(f"<tr><td>routing latency {p}</td><td>{ms(report[f'route_{p}_us'])}</td></tr>"
                    for p in ("p50", "p90", "p99", "max"))
    rows += "".join(f"<tr><td>queue wait {p}</td><td>{ms(report[f'queue_wait_{p}_us'])}</td></tr>"
                    for p in ("p50", "p99", "max"))
    procs = "".join(f"<tr><td>{html.escape(name)}</td><td>{p['pid']}</td><td>{p['cpu_s']}</td>"
                    f"<td>{p['cpu_percent']}</td><td>{p['peak_rss_mb']}</td></tr>"
                    for name, p in report["processes"].items())
    plan = report["plan"]
    title = (f"mroute load: {plan['chat_servers']} Chat Servers, {html.escape(plan['profile'])} up to "
             f"{plan['rate']:g} tasks/s for {plan['duration_s']:g} s")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
svg{{display:block;margin:1em 0;font-family:sans-serif}}</style></head><body>
<h1>{title}</h1>
<p>handling {html.escape(str(plan['handle']))}, think {html.escape(str(plan['think']))}, patience
{html.escape(str(plan['patience'] or 'none'))}; {report['load_s']} s of load, {report['drain_s']} s of drain{
' (interrupted)' if report['interrupted'] else ''}.</p>
<h2>Tasks</h2><table>{rows}</table>
<h2>Comm's numbered streams</h2>
<p>{html.escape(stream_note(report))}. A gap is recovered by a Resync; it is no failure, but each is messages
Comm could not deliver.</p>
<table>{streams}</table>
{''.join(charts)}
<h2>Processes</h2><table><tr><th>process</th><th>pid</th><th>CPU s</th><th>CPU %</th><th>peak RSS MB</th></tr>
{procs}</table>
</body></html>
"""
