"""Issue 30: a scenario's figures in the reports people and tools read: the HTML page and
our own CSV file (PREFIX_mroute.csv) show the tasks by the queue customers chose and what
the agents did, each behaviour count by its key, one added later too; Locust's three files
keep their columns and rows."""

from __future__ import annotations

import csv
import re

import pytest

from launch.load import page, plan, rows
from wire.stats import Histogram

from .test_load_csv import LOCUST_FAILURES, LOCUST_HISTORY, LOCUST_STATS, read, report as csv_report

QUEUES = {"sales": {"created": 90, "refused": 0, "accepted": 88, "closed": 86, "abandoned": 2, "expired": 0,
                    "closed_other": 0, "lost": 0, "wait_p50_ms": 305.2, "wait_p90_ms": 682.7, "wait_p99_ms": 942.1,
                    "wait_max_ms": 990.0},
          "support": {"created": 29, "refused": 1, "accepted": 27, "closed": 27, "abandoned": 1, "expired": 0,
                      "closed_other": 0, "lost": 0, "wait_p50_ms": 2162.7, "wait_p90_ms": 3899.4,
                      "wait_p99_ms": 3959.4, "wait_max_ms": 4001.0}}
# the six counts of today, two the issue names that another change adds, and one a later
# version may add to plan.BEHAVIOUR_COUNTS without a label (added there by `later` below)
BEHAVIOURS = {"offered": 167, "ignored": 35, "rona": 19, "breaks": 31, "logouts": 23, "chats_interrupted": 9,
              "transferred": 12, "conferenced": 6, "made_up_later": 4}


def full_report(**more) -> dict:
    """What html_page reads of a run, with the scenario's figures."""
    base = csv_report()
    keys = ("created", "acknowledged", "refused", "throttled", "routed", "routed_unmeasured", "accepted", "closed",
            "abandoned", "expired", "closed_other", "unfinished", "unacknowledged", "lost", "errors", "gaps",
            "missed", "resyncs", "streams")
    return {**base, **dict.fromkeys(keys, 0), "created": 119, "closed": 113,
            "plan": {"chat_servers": 2, "profile": "constant", "rate": 25, "duration_s": 5, "handle": "fixed:0.3",
                     "think": "fixed:0.01", "patience": None},
            "agents": 8, "load_s": 5.0, "drain_s": 1.0, "interrupted": False, "closed_per_s": 22.6,
            **{f"route_{p}_us": 800.0 for p in ("p50", "p90", "p95", "p99", "max")},
            **{f"queue_wait_{p}_us": 300.0 for p in ("p50", "p99", "max")},
            "latency_histogram": Histogram().to_json(), "processes": {}, "queues": QUEUES, **more}


@pytest.fixture
def later(monkeypatch):
    monkeypatch.setattr(plan, "BEHAVIOUR_COUNTS", (*plan.BEHAVIOUR_COUNTS, "made_up_later"))


def cells(html: str, table_class: str) -> list[list[str]]:
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', html, re.S)
    assert table, f"no table {table_class}"
    return [re.findall(r"<t[dh]>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1))]


def test_the_html_report_shows_the_queues_customers_chose_and_every_behaviour_count(later):
    html = page.html_page(full_report(**BEHAVIOURS))
    assert cells(html, "queues") == [
        ["queue", "created", "accepted", "abandoned", "closed", "wait p50", "p90", "p99", "max"],
        ["sales", "90", "88", "2", "86", "305.20", "682.70", "942.10", "990.00"],
        ["support", "29", "27", "1", "27", "2,162.70", "3,899.40", "3,959.40", "4,001.00"]]
    shown = dict((label, int(n.replace(",", ""))) for label, n in cells(html, "behaviours"))
    assert shown["offers taken back by Comm (RONA)"] == 19 and shown["NOT_READY breaks taken"] == 31
    assert shown["chats transferred to another agent (agents.transfer)"] == 12 and shown["made_up_later"] == 4
    assert sorted(shown.values()) == sorted(BEHAVIOURS.values())


def test_a_run_without_a_scenario_shows_neither_table():
    html = page.html_page(full_report(queues={}))
    assert 'class="queues"' not in html and 'class="behaviours"' not in html


def test_our_csv_adds_a_row_per_queue_chosen_and_per_behaviour_and_locusts_files_do_not_change(tmp_path, later):
    plain = tmp_path / "plain"
    rows.write_csv(str(plain), csv_report())
    rows.write_csv(str(tmp_path / "run"), full_report(**BEHAVIOURS))
    for suffix, columns in (("stats", LOCUST_STATS), ("stats_history", LOCUST_HISTORY), ("failures", LOCUST_FAILURES)):
        assert read(tmp_path / f"run_{suffix}.csv")[0] == columns
        assert (tmp_path / f"run_{suffix}.csv").read_bytes() == (tmp_path / f"plain_{suffix}.csv").read_bytes()
    columns, mine = read(tmp_path / "run_mroute.csv")
    assert columns[-2:] == ["accepted", "abandoned"]
    assert [r["type"] for r in mine[:4]] == ["server", "queue", "queue", ""]   # the stats rows first, as before
    chosen = {r["name"]: r for r in mine if r["type"] == "customer_queue"}
    assert set(chosen) == {"sales", "support"}
    sales, support = chosen["sales"], chosen["support"]
    assert (sales["count"], sales["accepted"], sales["abandoned"], sales["failures"]) == ("90", "88", "2", "2")
    assert support["failures"] == "2"   # one abandoned, one refused
    assert (float(sales["p50_ms"]), float(sales["p90_ms"]), float(sales["p99_ms"])) == (305.2, 682.7, 942.1)
    counts = {r["name"]: int(r["count"]) for r in mine if r["type"] == "behaviour"}
    assert counts == BEHAVIOURS
    labels = {r["name"]: r["measure"] for r in mine if r["type"] == "behaviour"}
    assert labels["rona"] == "offers taken back by Comm (RONA)" and labels["made_up_later"] == "made_up_later"
    with (tmp_path / "run_mroute.csv").open(newline="") as file:   # every row as wide as the header
        assert {len(r) for r in csv.reader(file)} == {len(columns)}


VOICE = {"calls_per_s": 3.0, "queue": "sales", "talk": "fixed:0.3", "ring": "fixed:0.1", "calls_s": 4.0,
         "calls_placed": 13, "calls_answered": 12, "calls_ended": 10, "calls_dropped": 1, "calls_refused": 0,
         "calls_unfinished": 1, "calls_live_at_start": 0, "calls_placed_per_s": 3.25}


def test_a_voice_run_shows_its_calls_beside_the_chats_they_interrupted_in_html_terminal_and_csv(tmp_path):
    from rich.console import Console

    from launch.load import report as terminal
    report = full_report(**BEHAVIOURS, voice=VOICE)
    html = page.html_page(report)
    shown = dict(cells(html, "voice"))
    assert shown["calls offered a second on sales (talk fixed:0.3, ring fixed:0.1)"] == "3/s"
    assert (shown["calls placed on the voice queue"], shown["calls answered (by the phone or its agent)"],
            shown["calls the caller ended (talk over)"], shown["calls dropped (released, logout)"],
            shown["calls not ended when the drain ended"]) == ("13", "12", "10", "1", "1")
    assert dict(cells(html, "behaviours"))["chat agents interrupted by a call"] == "9"
    console = Console(width=200, record=True)
    for table in terminal.summary_tables(report):
        console.print(table)
    text = console.export_text()
    assert "calls placed on the voice queue" in text and "chat agents interrupted by a call" in text
    rows.write_csv(str(tmp_path / "run"), report)
    _columns, mine = read(tmp_path / "run_mroute.csv")
    assert {r["name"]: int(r["count"]) for r in mine if r["type"] == "voice"} == \
        {"calls_placed": 13, "calls_answered": 12, "calls_ended": 10, "calls_dropped": 1, "calls_refused": 0,
         "calls_unfinished": 1, "calls_live_at_start": 0}
    # without voice: no voice table, nor a line of it
    plain = full_report(**BEHAVIOURS)
    assert 'class="voice"' not in page.html_page(plain) and terminal.voice_lines(plain) == []


def test_the_voice_figures_are_the_runs_queues_only_and_add_up():
    from launch.load.run import calls_accounted, calls_live, voice_figures
    from wire.dist import parse

    def reading(sales: dict, support: dict) -> plan.Reading:
        zero = dict.fromkeys(plan.CHAT_COUNTS + plan.STREAM_COUNTS, 0)
        return plan.Reading(0.0, zero, Histogram(), Histogram(), 0, 0, 0, 0,
                            gc={"dialogs": 3, "calls": {"sales": sales, "support": support}})
    counts = ("calls_placed", "calls_answered", "calls_ended", "calls_dropped", "calls_refused", "calls_live")
    # another queue's calls (a topology's own `rate` on support) are not the run's, nor waited for
    first = reading(dict(zip(counts, (5, 4, 2, 1, 0, 2))), dict(zip(counts, (50, 50, 40, 0, 0, 10))))
    last = reading(dict(zip(counts, (27, 23, 20, 5, 2, 0))), dict(zip(counts, (90, 90, 70, 0, 0, 20))))
    voice = plan.VoicePlan(4.0, "sales", parse("fixed:1"))
    figures = voice_figures(voice, first, last, 5.0)
    assert {k: figures[k] for k in ("calls_placed", "calls_answered", "calls_ended", "calls_dropped",
                                    "calls_refused", "calls_unfinished", "calls_live_at_start")} == \
        {"calls_placed": 22, "calls_answered": 19, "calls_ended": 18, "calls_dropped": 4, "calls_refused": 2,
         "calls_unfinished": 0, "calls_live_at_start": 2}
    assert calls_accounted(figures) and calls_live(last, "sales") == 0 and calls_live(first, "support") == 10
    assert not calls_accounted({**figures, "calls_dropped": 1})
