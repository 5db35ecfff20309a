"""A load started from the web console: `mroute load --attach` on the running topology, in
a thread of its own (the driver paces itself with sleeps), its rows told to the load page
as they come, its reports kept for download when it ends."""

from __future__ import annotations

import math
import threading
from typing import Any, Callable

from wire.dist import parse, parse_optional

from ..load import page as loadpage, rows as loadrows, scenario as scenarios, thresholds
from ..load.fleet import AttachedFleet, desked_by_running
from ..load.run import run_details, run_load
from ..load.plan import LoadPlan, parse_profile
from ..topology import Topology


class StoppableFleet(AttachedFleet):
    """The running topology's Chat Servers; `stop` ends the run at its next pause."""

    def __init__(self, topology: Topology, servers: int | None, stop: threading.Event):
        super().__init__(topology, servers)
        self.stop_asked = stop

    def wait(self, seconds: float) -> bool:
        return not self.stop_asked.wait(seconds)


LIMITS = {"rate": (0, 100_000, 10), "duration": (0.5, 86_400, 30), "drain": (0, 3_600, 10),
          "chat_servers": (1, 1_000, None)}


# a scenario's settings (scenario.Scenario.flags, by load_command's parameter) as the form's fields
FIELDS = {"servers": "chat_servers", "rate": "rate", "duration": "duration", "profile": "profile",
          "patience": "patience", "handle": "handle", "think": "think", "drain": "drain"}


def scenario_of(text: str, topology: Topology) -> scenarios.Scenario:
    """A scenario pasted or uploaded on the page, checked as `mroute load --attach --scenario`
    checks its file; ScenarioError names the key."""
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise scenarios.ScenarioError("(file)", f"not YAML: {exc}") from None
    scenario = scenarios.parse(data)
    if "agents" in scenario.flags:   # as the command refuses --agents-per-server with --attach
        raise scenarios.ScenarioError("agents_per_server", "fixed by the running topology's file "
                                                           "(actors.chat.agents): it cannot change from the console")
    # the Chat Servers route on their MRD (as commands/load.py's check_queues finds it)
    mrd = next((a.get("mrd") for a in topology.actors.values() if a.get("role") == "chat" and a.get("mrd")), "chat")
    scenarios.check_queues(scenario, topology.queues, mrd)
    # its voice calls go to the running GC's queue (as commands/load.py's check_voice finds it)
    scenario.voice = scenarios.voice_queue(scenario, topology.actors, topology.mrds,
                                           topology.agents[:desked_by_running(topology)])
    return scenario


def scenario_fields(scenario: scenarios.Scenario) -> dict[str, str]:
    """The form's fields a scenario sets, as the page shows them."""
    return {FIELDS[name]: "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
            for name, value in scenario.flags.items() if name in FIELDS}


def check(form: dict[str, Any], topology: Topology) -> dict[str, Any]:
    """What the page shows of its scenario before a run: the fields it sets, the behaviours."""
    try:
        scenario = scenario_of(str(form.get("scenario") or ""), topology)
    except scenarios.ScenarioError as exc:
        raise ValueError(f"scenario: {exc}") from None
    return {"fields": scenario_fields(scenario), "behaviour": scenario.behaviour.to_json(),
            "voice": scenario.voice.to_json() if scenario.voice is not None else None}


def plan_of(form: dict[str, Any], topology: Topology) -> tuple[LoadPlan, int | None]:
    """The page's form as a plan; ValueError names the field, or the scenario's key, that is
    wrong. A field given wins over the scenario's setting, as a flag wins over the file."""
    behaviour, voice = None, None
    text = str(form.get("scenario") or "")
    if text.strip():
        try:
            scenario = scenario_of(text, topology)
        except scenarios.ScenarioError as exc:
            raise ValueError(f"scenario: {exc}") from None
        form = {**scenario_fields(scenario), **{k: v for k, v in form.items() if v is not None and v != ""}}
        behaviour, voice = scenario.behaviour, scenario.voice
    values: dict[str, Any] = {}
    for key, (low, high, default) in LIMITS.items():
        raw = form.get(key)
        if raw is None or raw == "":
            values[key] = default
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: {raw!r} is not a number")
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{key}: must be from {low:g} to {high:g}, not {raw!r}")
        values[key] = value
    handle, think = parse(form.get("handle") or "exp:2"), parse(form.get("think") or "uniform:0.05,0.3")
    plan = LoadPlan(rate=values["rate"], duration=values["duration"], handle=handle, think=think,
                    patience=parse_optional(form.get("patience") or None),
                    profile=parse_profile(form.get("profile") or "constant"), drain=values["drain"])
    if behaviour is not None:
        plan.behaviour = behaviour
    plan.voice = voice
    servers = values["chat_servers"]
    return plan, int(servers) if servers is not None else None


class LoadRun:
    def __init__(self, topology: Topology, tell: Callable[[dict[str, Any]], None]):
        self.topology = topology
        self.tell = tell          # thread-safe: the server hands it to its loop
        self.thread: threading.Thread | None = None
        self.stop_asked = threading.Event()
        self.report: dict[str, Any] | None = None
        self.reports: dict[str, tuple[str, str]] = {}   # rendered once, when the run ends
        self.error = ""
        self.form: dict[str, Any] = {}

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, form: dict[str, Any]) -> None:
        if self.running:
            raise RuntimeError("a load is running already: stop it first")
        plan, servers = plan_of(form, self.topology)
        self.form, self.report, self.reports, self.error = dict(form), None, {}, ""
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
            report["run"] = run_details("the web console's load page"
                                        + (", with a scenario" if self.form.get("scenario") else ""), fleet)
            if self.form.get("scenario"):   # what ran, to run it again
                report["run"]["scenario"] = self.form["scenario"]
            report["verdict"] = thresholds.judge(report, [], thresholds.LOAD_FIGURES)
            self.report, self.reports = report, self.render(report)
            self.tell({"kind": "done", "summary": {k: report[k] for k in (
                "created", "closed", "abandoned", "lost", "unfinished", "interrupted", "closed_per_s",
                "route_p50_us", "route_p99_us")},
                "behaviours": {key: n for key, _label, n in loadrows.behaviour_counts(report)},
                "queues": report.get("queues", {})})
        except Exception as exc:   # the page must hear why, the console goes on
            self.error = str(exc)
            self.tell({"kind": "failed", "reason": self.error})

    def stop(self) -> None:
        self.stop_asked.set()

    def join(self, timeout: float) -> None:
        """Wait (bounded) for a stopped run to give the Chat Servers their settings back."""
        if self.thread is not None:
            self.thread.join(timeout)

    @staticmethod
    def render(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """The run's reports: name -> (content type, text)."""
        import orjson
        out = {"report.html": ("text/html", loadpage.html_page(report)),
               "report.json": ("application/json", orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())}
        out.update({f"report_{suffix}.csv": ("text/csv", text) for suffix, text in loadrows.csv_texts(report).items()})
        return out
