"""`mroute load --csv PREFIX`: Locust's three files, read as the tools that read Locust's
read them (csv.DictReader over Locust's own columns), and ours beside them. Locust has no
reader of its own, and importing it patches the standard library with gevent's, so its
columns are copied here from its source (locust 2.47.0, locust/stats.py: StatsCSV
requests_csv_columns and failures_columns, StatsCSVFileWriter stats_history_csv_columns,
with get_readable_percentiles(PERCENTILES_TO_REPORT))."""

from __future__ import annotations

import csv

from launch.load import locustcsv, rows
from wire.stats import Histogram

LOCUST_PERCENTILES = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
LOCUST_STATS = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
                *LOCUST_PERCENTILES]
LOCUST_HISTORY = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *LOCUST_PERCENTILES,
                  "Total Request Count", "Total Failure Count", "Total Median Response Time",
                  "Total Average Response Time", "Total Min Response Time", "Total Max Response Time",
                  "Total Average Content Size"]
LOCUST_FAILURES = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]


def histogram(*ms: float) -> Histogram:
    hist = Histogram()
    for value in ms:
        hist.record(value / 1000)
    return hist


def report() -> dict:
    """A run of 10 s: 200 tasks routed in 1..200 ms (3 refused, 2 abandoned, 1 unfinished),
    a queue that took them all and one that took none, two seconds of history."""
    route = histogram(*range(1, 201))
    stats = [rows.stats_row("server", "chat.1", "routing latency", 200, 5, route, 10.0),
             rows.stats_row("queue", "sales", "queue wait", 200, 2, histogram(*[0.5] * 200), 10.0),
             rows.stats_row("queue", "empty", "queue wait", 0, 0, Histogram(), 10.0),
             rows.stats_row("", "Aggregated", "routing latency", 200, 5, route, 10.0)]
    failures = [{"kind": "abandoned", "type": "", "code": "", "count": 2},
                {"kind": "unfinished", "type": "", "code": "", "count": 1},
                {"kind": "refused", "type": "Task", "code": "OVERLOADED", "count": 3}]
    series = [{"t": 1.0, "time": 1_700_000_000.6, "phase": "load", "open": 7, "created": 20, "created_per_s": 20.0,
               "failures": 0, "failures_per_s": 0.0, "route_total": rows.latency_figures(histogram(*range(1, 21)))},
              {"t": 2.0, "time": 1_700_000_001.6, "phase": "drain", "open": 0, "created": 200,
               "created_per_s": 180.0, "failures": 5, "failures_per_s": 5.0, "route_total": rows.latency_figures(route)}]
    return {"stats": stats, "failures": failures, "series": series}


def read(path):
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames, list(reader)


def test_locusts_rounding_of_response_times():
    # locust/stats.py bucket_response_time's own examples, and the precision below 100 ms
    assert [locustcsv.bucketed(ms) for ms in (147, 3432, 58760, 12.4, 12.6, 0.3)] == [150, 3400, 59000, 12, 13, 0]


def test_csv_writes_locusts_three_files_with_its_columns_and_ours_beside_them(tmp_path):
    written = rows.write_csv(str(tmp_path / "run"), report())
    assert sorted(p.name for p in written) == ["run_failures.csv", "run_mroute.csv", "run_mroute_history.csv",
                                               "run_stats.csv", "run_stats_history.csv"]
    assert (tmp_path / "run_stats.csv").read_bytes().split(b"\n")[0].endswith(b"\r")   # csv.writer's CRLF

    columns, stats = read(tmp_path / "run_stats.csv")
    assert columns == LOCUST_STATS
    # sorted by name as Locust sorts its entries, the Aggregated row last
    assert [(r["Type"], r["Name"]) for r in stats] == [("Queue", "empty"), ("Task", "route"), ("Queue", "sales"),
                                                       ("", "Aggregated")]
    route, total = stats[1], stats[3]
    assert {k: v for k, v in route.items() if k != "Type" and k != "Name"} == \
        {k: v for k, v in total.items() if k != "Type" and k != "Name"}
    assert route["Request Count"] == "200" and route["Failure Count"] == "5"
    assert float(route["Requests/s"]) == 20.0 and float(route["Failures/s"]) == 0.5
    assert route["Average Content Size"] == "0.0"
    # percentiles and the median are whole ms, as Locust's are; min, max and the average are not rounded so
    percentiles = [int(route[p]) for p in LOCUST_PERCENTILES]
    assert percentiles == sorted(percentiles) and 95 <= percentiles[0] <= 105 and percentiles[-1] == 200
    assert 195 <= percentiles[LOCUST_PERCENTILES.index("99%")] <= 200
    assert int(route["Median Response Time"]) == percentiles[0]
    # (the least sample to its histogram bucket's lower edge: the buckets are 6 % wide)
    assert 0.94 <= float(route["Min Response Time"]) <= 1.0 and float(route["Max Response Time"]) == 200.0
    assert 97 < float(route["Average Response Time"]) < 104
    # a row no request reached: Locust's N/A percentiles and zeros
    empty = stats[0]
    assert [empty[p] for p in LOCUST_PERCENTILES] == ["N/A"] * 11
    assert (empty["Request Count"], empty["Median Response Time"], empty["Max Response Time"]) == ("0", "0", "0")
    # half a ms buckets to 0, below the least sample: Locust then gives the least sample as the median
    sales = stats[2]
    assert sales["50%"] == "0" and sales["Median Response Time"] == sales["Min Response Time"] != "0"
    assert sales["Failure Count"] == "2"

    columns, history = read(tmp_path / "run_stats_history.csv")
    assert columns == LOCUST_HISTORY
    assert [(r["Timestamp"], r["User Count"], r["Type"], r["Name"]) for r in history] == \
        [("1700000000", "7", "", "Aggregated"), ("1700000001", "0", "", "Aggregated")]
    assert history[1]["Requests/s"] == "180.000000" and history[1]["Failures/s"] == "5.000000"
    assert history[1]["Total Request Count"] == "200" and history[1]["Total Failure Count"] == "5"
    assert history[1]["100%"] == "200" and history[0]["100%"] == "20"   # the run so far, as Locust's history
    assert history[1]["Total Median Response Time"] == route["Median Response Time"]

    columns, failures = read(tmp_path / "run_failures.csv")
    assert columns == LOCUST_FAILURES
    assert [(r["Method"], r["Name"], r["Error"], r["Occurrences"], r["First Seen"]) for r in failures] == [
        ("Task", "route", "abandoned", "2", ""), ("Task", "route", "unfinished", "1", ""),
        ("Task", "route", "Task OVERLOADED", "3", ""), ("Queue", "sales", "left the queue unanswered", "2", "")]

    # ours: the rows by server and queue with our percentiles, and the seconds with what Locust has no column for
    columns, mine = read(tmp_path / "run_mroute.csv")
    assert columns[:4] == ["type", "name", "measure", "count"] and "p99.9_ms" in columns
    assert [r["name"] for r in mine] == ["chat.1", "sales", "empty", "Aggregated"]
    columns, _ = read(tmp_path / "run_mroute_history.csv")
    assert "offered_per_s" in columns and "route_p99_ms" in columns
