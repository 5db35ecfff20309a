"""A load's figures in Locust's three CSV files (`--csv PREFIX`: PREFIX_stats.csv,
PREFIX_stats_history.csv, PREFIX_failures.csv), column for column and rounded as Locust
2.47 writes them (locust/stats.py: StatsCSV, StatsCSVFileWriter), so that the tools
testers already feed Locust's files read ours.

A Locust row is a (Type, Name) a user's requests went to. Ours:

- `Task,route`: every task the fleet created, its response time the routing latency
  (Task sent -> TaskAgentSelected); failures are what the report counts as the run's:
  abandoned, expired, Errors received (refusals among them) and lost. A task routed without
  a latency sample is one of Locust's requests without a response time: counted, not in the
  percentiles.
- `Queue,NAME`: the tasks each queue took, their response time the wait for an agent;
  failures, the tasks that left it before an agent took them.
- `,Aggregated`: the route row again. Locust's total is every request of every row; ours
  would count each task twice (routed, then waiting) and mix two measures in one
  distribution, so the run's headline figure stands there instead.

The history is Locust's default one (no --csv-full-history): a row a second of the
Aggregated entry, its rates that second's and its percentiles and totals the run's so far.
"""

from __future__ import annotations

import csv
import io
from typing import Any

# locust/stats.py PERCENTILES_TO_REPORT, as get_readable_percentiles labels them
PERCENTILES = (("50%", 50), ("66%", 66), ("75%", 75), ("80%", 80), ("90%", 90), ("95%", 95), ("98%", 98),
               ("99%", 99), ("99.9%", 99.9), ("99.99%", 99.99), ("100%", 100))
LABELS = tuple(label for label, _ in PERCENTILES)
STATS_COLUMNS = ("Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                 "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
                 *LABELS)
HISTORY_COLUMNS = ("Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *LABELS,
                   "Total Request Count", "Total Failure Count", "Total Median Response Time",
                   "Total Average Response Time", "Total Min Response Time", "Total Max Response Time",
                   "Total Average Content Size")
FAILURE_COLUMNS = ("Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen")
ROUTE = ("Task", "route")


def bucketed(ms: float) -> int:
    """Locust's bucket_response_time: a response time to about two significant digits, the
    precision of its percentiles and median."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


def figures(requests: int, latency: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """([median, average, min, max, content size], percentiles) of a row, as Locust writes
    them: percentiles "N/A" without a request and 0 without a sample; the median clamped
    between min and max, since it is bucketed and they are not."""
    low, high = latency.get("min_ms") or 0, latency.get("max_ms") or 0
    shares = latency.get("percentiles_ms") or {}
    if not requests:
        return [0, 0.0, 0, 0, 0], ["N/A"] * len(LABELS)
    percentiles = [bucketed(shares[label]) if shares.get(label) is not None else 0 for label in LABELS]
    median = min(max(percentiles[0], low), high) if shares.get("50%") is not None else 0
    return [median, latency.get("average_ms") or 0.0, low, high, 0.0], percentiles


def stats_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The route row and a row per queue, sorted by name as Locust sorts its entries, then
    Aggregated."""
    mine = {("Queue", row["name"]): row for row in report["stats"] if row["type"] == "queue"}
    total = next(row for row in report["stats"] if row["name"] == "Aggregated")
    mine[ROUTE] = total
    rows = []
    for (kind, name), row in [*sorted(mine.items(), key=lambda item: (item[0][1], item[0][0])), (("", "Aggregated"),
                                                                                                  total)]:
        times, percentiles = figures(row["count"], row)
        rows.append([kind, name, row["count"], row["failures"], *times, row["rate_per_s"],
                     row["failures_per_s"], *percentiles])
    return rows


def history_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for second in report["series"]:
        total = second.get("route_total", {})
        times, percentiles = figures(second["created"], total)
        rows.append([int(second["time"]), second["open"], "", "Aggregated",
                     f"{second['created_per_s']:2f}", f"{second.get('failures_per_s', 0):2f}", *percentiles,
                     second["created"], second.get("failures", 0), *times])
    return rows


def failure_rows(report: dict[str, Any]) -> list[list[Any]]:
    """A task's failures against the route row, by what happened (an Error: the message
    type it answered and its Code, e.g. `Task OVERLOADED`); a queue's against its row.
    Unfinished tasks are listed though no row counts them as failures: a tester must see
    them. Nothing times the first and last of each, so those stay empty, as Locust leaves
    them when it does not know."""
    rows = []
    for row in report["failures"]:
        error = f"{row['type']} {row['code']}" if row["code"] else row["kind"]
        rows.append([*ROUTE, error, row["count"], "", ""])
    for row in report["stats"]:
        if row["type"] == "queue" and row["failures"]:
            rows.append(["Queue", row["name"], "left the queue unanswered", row["failures"], "", ""])
    return rows


def texts(report: dict[str, Any]) -> dict[str, str]:
    """The three files' texts by suffix, written by csv.writer as Locust's are."""
    out = {}
    for suffix, columns, rows in (("stats", STATS_COLUMNS, stats_rows(report)),
                                  ("stats_history", HISTORY_COLUMNS, history_rows(report)),
                                  ("failures", FAILURE_COLUMNS, failure_rows(report))):
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(columns)
        writer.writerows(rows)
        out[suffix] = text.getvalue()
    return out
