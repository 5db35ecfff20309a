"""The rows of a load's tables (stats, history, failures), built once from the run's first
and last readings; the summary, the CSV files (ours here, Locust's in locustcsv.py) and
the HTML page only show them.

A stats row is a Chat Server (type `server`: its routing latency: Task sent -> TaskAgentSelected), a
queue (its tasks' wait for an agent, as Comm measures it) or the whole run (every server's
routing latency). Its failures: a server's customers who gave up, tasks that expired,
Errors it received (refusals among them) and tasks that died with a Comm; a queue's tasks
that left it before an agent took them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from wire.stats import Histogram

from . import locustcsv
from .plan import Reading

# what a task's row counts as failures: a customer who gave up, a task that expired, an Error
# received (refusals among them), a task that died with a Comm
FAILURE_COUNTS = ("abandoned", "expired", "errors", "lost")
# what a scenario's agents did (wire/behaviour.py)
BEHAVIOUR_ROWS = (("offered", "offers to our agents (a task offered again counts again)"),
                  ("ignored", "offers left to time out (agents.ignore_offer)"),
                  ("rona", "offers taken back by Comm (RONA)"), ("breaks", "NOT_READY breaks taken"),
                  ("logouts", "agents logged out (shifts)"),
                  ("chats_interrupted", "chat agents interrupted by a call"),
                  ("transfers", "chats drawn for a transfer"),
                  ("transferred", "chats transferred to another agent (agents.transfer)"),
                  ("transfer_refused", "transfers Comm refused (the chat stayed with its agent)"),
                  ("transfer_skipped", "transfers not asked (no agent of the desk with room)"),
                  ("conferences", "chats drawn for a conference"),
                  ("conferenced", "chats another agent joined (agents.conference)"),
                  ("conference_refused", "conferences Comm refused"),
                  ("conference_skipped", "conferences not asked (no agent of the desk with room)"),
                  ("parts_ended", "conference participants that left before the owner closed"))
HOOK_ROWS = (("hook_errors", "hook calls that failed (the draw stood)"),
             ("hook_names_dropped", "hook counts dropped (past 64 names)"))
# what the GC's simulated callers did, when a scenario's voice calls ran (actors/gc/callers.py)
VOICE_ROWS = (("calls_placed", "calls placed on the voice queue"),
              ("calls_answered", "calls answered (by the phone or its agent)"),
              ("calls_ended", "calls the caller ended (talk over)"),
              ("calls_dropped", "calls dropped (released, logout)"),
              ("calls_refused", "calls refused (queue full)"),
              ("calls_unfinished", "calls not ended when the drain ended"),
              ("calls_live_at_start", "calls live when the run began"))
PERCENTILES = (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p99.9", 99.9))
STATS_COLUMNS = ("type", "name", "measure", "count", "failures", "median_ms", "average_ms", "min_ms", "max_ms",
                 *(f"{name}_ms" for name, _ in PERCENTILES), "rate_per_s", "failures_per_s")
# our file's last columns: only a row of a queue customers chose fills them (its `count` is created)
OWN_COLUMNS = (*STATS_COLUMNS, "accepted", "abandoned")
HISTORY_COLUMNS = ("time", "t", "phase", "offered_per_s", "created_per_s", "routed_per_s", "closed_per_s",
                   "abandoned_per_s", "waiting", "open", "route_p50_ms", "route_p90_ms", "route_p99_ms",
                   "route_max_ms", "created", "routed", "closed", "abandoned", "gaps", "missed")


def ms(us: float | None) -> float | None:
    return round(us / 1000, 3) if us is not None else None


def latency_figures(hist: Histogram) -> dict[str, Any]:
    """A latency's figures in ms: median, average, min, max, and the percentiles Locust
    reports (by its labels, for its CSV files)."""
    return {"median_ms": ms(hist.percentile(50)), "average_ms": ms(hist.mean()), "min_ms": ms(hist.low()),
            "max_ms": ms(float(hist.max_us)) if hist.count else None,
            "percentiles_ms": {label: ms(hist.percentile(p)) for label, p in locustcsv.PERCENTILES}}


def stats_row(kind: str, name: str, measure: str, count: int, failures: int, hist: Histogram,
              seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"type": kind, "name": name, "measure": measure, "count": count, "failures": failures,
                           **latency_figures(hist)}
    row.update({f"{label}_ms": ms(hist.percentile(p)) for label, p in PERCENTILES})
    row["rate_per_s"] = round(count / seconds, 2) if seconds else 0.0
    row["failures_per_s"] = round(failures / seconds, 2) if seconds else 0.0
    return row


def server_failures(before: dict[str, Any], after: dict[str, Any]) -> int:
    return sum(int(after.get(k, 0)) - int(before.get(k, 0)) for k in FAILURE_COUNTS)


def stats_rows(first: Reading, last: Reading, seconds: float, lost: int) -> list[dict[str, Any]]:
    """A row per Chat Server, a row per queue Comm knows, and the aggregated row."""
    rows = []
    for name, after in sorted(last.servers.items()):
        before = first.servers.get(name, {})
        latency = Histogram.from_json(after.get("latency", {})).minus(Histogram.from_json(before.get("latency", {})))
        rows.append(stats_row("server", name, "routing latency",
                              int(after.get("created", 0)) - int(before.get("created", 0)),
                              server_failures(before, after), latency, seconds))
    for queue, after in sorted(last.comm.get("queues", {}).items()):
        before = first.comm.get("queues", {}).get(queue, {})
        wait = Histogram.from_json(after.get("wait", {})).minus(Histogram.from_json(before.get("wait", {})))
        rows.append(stats_row("queue", queue, "queue wait", int(after.get("created", 0)) - int(before.get("created", 0)),
                              int(after.get("left", 0)) - int(before.get("left", 0)), wait, seconds))
    counts = {k: last.counts[k] - first.counts[k] for k in ("created", "abandoned", "expired", "errors", "lost")}
    failures = counts["abandoned"] + counts["expired"] + counts["errors"] + max(lost, counts["lost"])
    rows.append(stats_row("", "Aggregated", "routing latency", counts["created"], failures,
                          last.latency.minus(first.latency), seconds))
    return rows


QUEUE_COUNTS = ("created", "refused", "accepted", "closed", "abandoned", "expired", "closed_other", "lost")


def queue_figures(first: Reading, last: Reading) -> dict[str, dict[str, Any]]:
    """The Chat Servers' tasks by the queue their customers chose (a scenario's
    `customers.queues`), summed over the servers: counts, and the wait for an agent (Task
    sent -> agent chosen) in ms."""
    counts: dict[str, dict[str, int]] = {}
    waits: dict[str, Histogram] = {}
    for name, after in last.servers.items():
        before = first.servers.get(name, {}).get("queues", {})
        for queue, figures in after.get("queues", {}).items():
            was = before.get(queue, {})
            mine = counts.setdefault(queue, dict.fromkeys(QUEUE_COUNTS, 0))
            for key in QUEUE_COUNTS:
                mine[key] += int(figures.get(key, 0)) - int(was.get(key, 0))
            wait = Histogram.from_json(figures.get("wait", {})).minus(Histogram.from_json(was.get("wait", {})))
            waits.setdefault(queue, Histogram()).merge(wait)
    return {queue: {**counts[queue], **{f"wait_{label}_ms": ms(waits[queue].percentile(p))
                                        for label, p in (("p50", 50), ("p90", 90), ("p99", 99))},
                    "wait_max_ms": ms(float(waits[queue].max_us)) if waits[queue].count else None}
            for queue in sorted(counts)}


def failure_rows(first: Reading, last: Reading, counts: dict[str, int], lost: int,
                 unfinished: int) -> list[dict[str, Any]]:
    """What did not end well, by kind and, for Errors, by the Type they answered and Code."""
    rows = [{"kind": kind, "type": "", "code": "", "count": n} for kind, n in
            (("abandoned", counts["abandoned"]), ("expired", counts["expired"]), ("lost", lost),
             ("unfinished", unfinished)) if n]
    codes: dict[str, int] = {}
    for name, after in last.servers.items():
        before = first.servers.get(name, {}).get("error_codes", {})
        for key, n in after.get("error_codes", {}).items():
            codes[key] = codes.get(key, 0) + n - int(before.get(key, 0))
    for key, n in sorted(codes.items()):
        if n:
            type, _, code = key.partition(" ")
            rows.append({"kind": "refused" if type == "Task" else "error", "type": type, "code": code, "count": n})
    return rows


def agents_by_state(comm: dict[str, Any]) -> dict[str, int]:
    """Logged-in agents by state on the MRD that has the most of them (the one the Chat
    Servers route on), from Comm's stats."""
    by_mrd = comm.get("agents_by_state", {})
    busiest = max(by_mrd.values(), key=lambda states: sum(n for s, n in states.items() if s != "LOGOUT"),
                  default={})
    return {state: int(n) for state, n in busiest.items() if state != "LOGOUT"}


def behaviour_counts(report: dict[str, Any]) -> list[tuple[str, str, int]]:
    """What the scenario's agents and customers did: (key, label, count) for each behaviour
    count the report has, by key, so that a count added later shows without a change here."""
    from .plan import BEHAVIOUR_COUNTS
    labels = dict(BEHAVIOUR_ROWS)
    keys = dict.fromkeys([*BEHAVIOUR_COUNTS, *labels])
    found = [(key, labels.get(key, key), report[key]) for key in keys
             if isinstance(report.get(key), int) and not isinstance(report.get(key), bool)]
    if report.get("plan", {}).get("hook") or report.get("hook") or report.get("hook_errors"):   # a hook ran
        found += [(f"hook.{name}", f"hook: {name}", n) for name, n in sorted(report.get("hook", {}).items())]
        found += [(key, label, report.get(key, 0)) for key, label in HOOK_ROWS]
    return found


def own_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """PREFIX_mroute.csv's rows: the stats rows; a row per queue customers chose (type
    `customer_queue`: created as its count, its failures those abandoned, expired, refused
    or lost, the wait for an agent as its times); a row per behaviour count (type `behaviour`);
    a row per voice count when a scenario's calls ran (type `voice`)."""
    out = list(report["stats"])
    for name, q in report.get("queues", {}).items():
        out.append({"type": "customer_queue", "name": name, "measure": "wait for an agent (Task sent -> agent chosen)",
                    "count": q.get("created", 0),
                    "failures": sum(q.get(k, 0) for k in ("abandoned", "expired", "refused", "lost")),
                    "median_ms": q.get("wait_p50_ms"), "p50_ms": q.get("wait_p50_ms"), "p90_ms": q.get("wait_p90_ms"),
                    "p99_ms": q.get("wait_p99_ms"), "max_ms": q.get("wait_max_ms"),
                    "accepted": q.get("accepted", 0), "abandoned": q.get("abandoned", 0)})
    out += [{"type": "behaviour", "name": key, "measure": label, "count": n}
            for key, label, n in behaviour_counts(report)]
    voice = report.get("voice") or {}
    out += [{"type": "voice", "name": key, "measure": label, "count": voice[key]} for key, label in VOICE_ROWS
            if key in voice]
    return out


def own_csv_texts(report: dict[str, Any]) -> dict[str, str]:
    """Our own two files, by suffix: mroute (the rows by server, queue and the whole run,
    with the measure and our percentiles, then by the queue customers chose and the behaviour
    counts: own_rows) and mroute_history (a row a second, with what
    Locust's history has no column for: offered, routed, closed, waiting, agents by state)."""
    import io
    texts = {}
    states = list(dict.fromkeys(state for row in report["series"] for state in row.get("agents", {})))
    history = [{**row, **{f"route_{p}_ms": ms(row.get(f"route_{p}_us")) for p in ("p50", "p90", "p99", "max")},
                **{f"agents_{s}": row.get("agents", {}).get(s, 0) for s in states}} for row in report["series"]]
    for suffix, columns, rows in (("mroute", OWN_COLUMNS, own_rows(report)),
                                  ("mroute_history", (*HISTORY_COLUMNS, *(f"agents_{s}" for s in states)), history)):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
        texts[suffix] = out.getvalue()
    return texts


def csv_texts(report: dict[str, Any]) -> dict[str, str]:
    """Every CSV file of a run by suffix: Locust's three, then ours."""
    return {**locustcsv.texts(report), **own_csv_texts(report)}


def write_csv(prefix: str, report: dict[str, Any]) -> list[Path]:
    """PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv (Locust's),
    PREFIX_mroute.csv and PREFIX_mroute_history.csv (ours)."""
    written = []
    for suffix, text in csv_texts(report).items():
        path = Path(f"{prefix}_{suffix}.csv")
        with path.open("w", newline="") as file:   # Locust's lines end in CRLF, csv.writer's own
            file.write(text)
        written.append(path)
    return written
