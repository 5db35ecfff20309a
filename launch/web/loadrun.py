"""A load started from the web console: `mroute load --attach` on the running topology, in
a thread of its own (the driver paces itself with sleeps), its rows told to the load page
as they come, its reports kept for download when it ends."""

from __future__ import annotations

import datetime
import threading
from typing import Any, Callable

from wire.dist import parse, parse_optional

from .. import loadpage, loadrows, thresholds, version
from ..fleet import AttachedFleet
from ..load import LoadPlan, parse_profile, run_load
from ..topology import Topology


class StoppableFleet(AttachedFleet):
    """The running topology's Chat Servers; `stop` ends the run at its next pause."""

    def __init__(self, topology: Topology, servers: int | None, stop: threading.Event):
        super().__init__(topology, servers)
        self.stop_asked = stop

    def wait(self, seconds: float) -> bool:
        return not self.stop_asked.wait(seconds)


def plan_of(form: dict[str, Any]) -> tuple[LoadPlan, int | None]:
    """The page's form as a plan; ValueError names the field that is wrong."""
    def number(key: str, default: float, low: float) -> float:
        try:
            value = float(form.get(key) or default)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: {form.get(key)!r} is not a number")
        if value < low:
            raise ValueError(f"{key}: must be at least {low:g}")
        return value
    try:
        handle, think = parse(form.get("handle") or "exp:2"), parse(form.get("think") or "uniform:0.05,0.3")
        patience = parse_optional(form.get("patience") or None)
        profile = parse_profile(form.get("profile") or "constant")
    except ValueError as exc:
        raise ValueError(f"{exc}")
    servers = form.get("chat_servers")
    plan = LoadPlan(rate=number("rate", 10, 0), duration=number("duration", 30, 0.5), handle=handle, think=think,
                    patience=patience, profile=profile, drain=number("drain", 10, 0))
    return plan, int(number("chat_servers", 1, 1)) if servers else None


class LoadRun:
    def __init__(self, topology: Topology, tell: Callable[[dict[str, Any]], None]):
        self.topology = topology
        self.tell = tell          # thread-safe: the server hands it to its loop
        self.thread: threading.Thread | None = None
        self.stop_asked = threading.Event()
        self.report: dict[str, Any] | None = None
        self.error = ""
        self.form: dict[str, Any] = {}

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, form: dict[str, Any]) -> None:
        if self.running:
            raise RuntimeError("a load is running already: stop it first")
        plan, servers = plan_of(form)
        self.form, self.report, self.error = dict(form), None, ""
        self.stop_asked.clear()
        self.thread = threading.Thread(target=self.run, args=(plan, servers), name="web-load", daemon=True)
        self.thread.start()

    def run(self, plan: LoadPlan, servers: int | None) -> None:
        self.tell({"kind": "started", "form": self.form})
        try:
            fleet = StoppableFleet(self.topology, servers, self.stop_asked)
            try:
                report = run_load(plan, fleet, lambda row: self.tell({"kind": "row", "row": row}))
            finally:
                fleet.close()
            report["run"] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                             "version": version(), "command": "the web console's load page",
                             "chat_servers": len(fleet.chats)}
            report["verdict"] = thresholds.judge(report, [], thresholds.LOAD_FIGURES)
            self.report = report
            self.tell({"kind": "done", "summary": {k: report[k] for k in (
                "created", "closed", "abandoned", "lost", "closed_per_s", "route_p50_us", "route_p99_us")}})
        except Exception as exc:   # the page must hear why, the console goes on
            self.error = str(exc)
            self.tell({"kind": "failed", "reason": self.error})

    def stop(self) -> None:
        self.stop_asked.set()

    def files(self) -> dict[str, tuple[str, str]]:
        """The last run's reports: name -> (content type, text)."""
        if self.report is None:
            return {}
        import orjson
        out = {"report.html": ("text/html", loadpage.html_page(self.report)),
               "report.json": ("application/json", orjson.dumps(self.report, option=orjson.OPT_INDENT_2).decode())}
        out.update({f"report_{suffix}.csv": ("text/csv", text)
                    for suffix, text in loadrows.csv_texts(self.report).items()})
        return out
