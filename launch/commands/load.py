"""`mroute load`: offer customers to a fleet of simulated Chat Servers and account for
every task."""

from __future__ import annotations

import os
from typing import Any

import click
import orjson

from .. import client
from ..load import rows as loadrows, thresholds
from ..supervisor import StartError
from ..topology import TopologyError
from .common import load_or_exit, topology_option


def duration_option(name: str, default: str | None, help: str) -> Any:
    from wire.dist import parse, parse_optional

    def convert(_ctx: Any, _param: Any, value: Any) -> Any:
        try:
            return (parse_optional if default is None else parse)(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc))
    return click.option(name, default=default, callback=convert, show_default=True, metavar="DIST",
                        help=f"{help}: fixed:X, uniform:A,B or exp:MEAN (seconds)")


def profile_option(_ctx: Any, _param: Any, value: str) -> Any:
    from ..load.plan import parse_profile
    try:
        return parse_profile(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc))


def check_queues(path: str | None, scenario: Any, topology: Any) -> None:
    from ..load.scenario import ScenarioError, check_queues as check
    # the fleet's servers route on the base's Chat Servers' MRD (fleet.py: fleet_topology)
    mrd = next((a.get("mrd") for a in topology.actors.values() if a.get("role") == "chat" and a.get("mrd")), "chat")
    try:
        check(scenario, topology.queues, mrd)
    except ScenarioError as exc:
        raise click.UsageError(f"scenario {path}: {exc}")


def check_voice(path: str | None, scenario: Any, topology: Any, desking: int) -> Any:
    """The scenario's voice plan with its queue resolved (None: no voice), refused unless the
    topology can take its calls; `desking`: how many of the directory's agents, from the top,
    the Chat Servers desk (fleet.py: fleet_topology)."""
    from ..load.scenario import ScenarioError, voice_queue
    try:
        return voice_queue(scenario, topology.actors, topology.mrds, topology.agents[:desking])
    except ScenarioError as exc:
        raise click.UsageError(f"scenario {path}: {exc}")


def interrupt_on_term() -> None:
    """TERM, or HUP (the terminal closed), ends the run as Ctrl-C does: through the fleet's
    `close`, which gives the Chat Servers their settings back."""
    import signal

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def read_scenario(path: str | None) -> Any:
    from ..load import scenario
    if path is None:
        return scenario.Scenario()
    try:
        return scenario.read(path)
    except scenario.ScenarioError as exc:
        raise click.UsageError(f"scenario {path}: {exc}")


@click.command("load")
@topology_option()
@click.option("--scenario", "scenario_file", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="a YAML scenario: the flags' settings and the behaviours they cannot say (queues and their "
                   "weights, priority, offers left to time out, breaks, shifts, voice calls); a flag given here wins")
@click.option("--chat-servers", "servers", type=click.IntRange(1), default=None,
              help="simulated Chat Servers to spawn  [default: 2]; with --attach, scale the chat actor to this")
@click.option("--agents-per-server", "agents", type=click.IntRange(1), default=None,
              help="agents each Chat Server desks  [default: 10]")
@click.option("--rate", type=click.FloatRange(0, 1_000_000), default=10.0, show_default=True,
              help="customers (tasks) per second over the whole fleet, at the profile's peak")
@click.option("--duration", type=click.FloatRange(0.5), default=10.0, show_default=True, help="seconds of arrivals")
@click.option("--profile", default="constant", show_default=True, callback=profile_option,
              help="arrivals over time: constant (Poisson), ramp (0 up to --rate), steps[:N] (N stairs up to it)")
@duration_option("--handle", "exp:2", "handling time of a task by its agent")
@duration_option("--think", "uniform:0.05,0.3", "time an agent takes to accept an offer")
@duration_option("--patience", None, "time a customer waits for an agent before giving up  [default: none]")
@click.option("--drain", type=click.FloatRange(0), default=10.0, show_default=True,
              help="seconds allowed after the last arrival for tasks to finish")
@click.option("--attach", is_flag=True, help="drive the chat servers of the running topology instead of spawning")
@click.option("--attach-pods", "pods", multiple=True, metavar="HOST:PORT",
              help="drive Chat Servers run by an orchestrator (`mroute actor`) through their health ports; a name "
                   "of several addresses (a headless Service, e.g. local-chat:8080) is every pod behind it; "
                   "give Comm's too for the queue's figures (repeatable)")
@click.option("--control-token-file", "token_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="with --attach-pods from another host: a file with the pods' control token (the Secret "
                   "NAME-control's)  [env MROUTE_CONTROL_TOKEN: the token itself]")
@thresholds.click_option(thresholds.LOAD_FIGURES, relative=True)
@click.option("--compare", "compare_file", type=click.Path(dir_okay=False, exists=True), metavar="BASE.json",
              help="show this run's figures beside an earlier run's --json report, each change in percent "
                   "(in the JSON report: `compare`); --fail-on may then say `base`")
@click.option("--csv", "csv_prefix", metavar="PREFIX",
              help="write Locust's CSV files (PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv) "
                   "and ours (PREFIX_mroute.csv, PREFIX_mroute_history.csv)")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), help="write the full report as JSON here")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help="write a self-contained HTML report here")
@click.option("--quiet", is_flag=True, help="no live progress")
@click.pass_context
def load_command(ctx: click.Context, file: str, scenario_file: str | None, servers: int | None, agents: int | None, rate: float, duration: float, profile: Any,
                 handle: Any, think: Any, patience: Any, drain: float, attach: bool, pods: tuple[str, ...],
                 token_file: str | None,
                 fail_on: list[thresholds.Threshold], compare_file: str | None, csv_prefix: str | None,
                 json_file: str | None, html_file: str | None, quiet: bool) -> None:
    """Offer customers to a fleet of simulated Chat Servers and account for every task.

    Spawns the fleet with the topology file's Comm, MRE and GC (in a run directory of its
    own), drives a running topology's chat servers with --attach, or Chat Server pods with
    --attach-pods (no topology file needed then). Prints live progress,
    then a summary; exits 1 if any task was lost or a --fail-on threshold was missed."""
    from pathlib import Path

    from rich.console import Console
    from rich.live import Live

    from ..load import page as loadpage, report as loadreport
    from ..load.fleet import AttachedFleet, PodsFleet, SpawnedFleet, desked_by_running
    import shlex
    import sys

    from ..load import compare
    from ..load.plan import LoadPlan
    from ..load.run import accounted, run_details, run_load
    scenario = read_scenario(scenario_file)
    # the scenario's settings, but for a flag given on the command line (or its variable)
    given = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    chosen = {name: value for name, value in scenario.flags.items() if ctx.get_parameter_source(name) not in given}
    servers, agents = chosen.get("servers", servers), chosen.get("agents", agents)
    rate, duration, profile = chosen.get("rate", rate), chosen.get("duration", duration), chosen.get("profile", profile)
    handle, think = chosen.get("handle", handle), chosen.get("think", think)
    patience, drain = chosen.get("patience", patience), chosen.get("drain", drain)
    # before anything starts: a threshold against a base needs one, and the base must be a report
    relative = [str(t) for t in fail_on if t.relative is not None]
    if relative and compare_file is None:
        raise click.UsageError(f"--fail-on {relative[0]!r} compares with a base run: give --compare BASE.json "
                               f"(an earlier `mroute load --json` report)")
    try:
        base = compare.read_base(compare_file) if compare_file else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--compare")
    plan = LoadPlan(rate=rate, duration=duration, handle=handle, think=think, patience=patience, profile=profile,
                    drain=drain, behaviour=scenario.behaviour, hook=scenario.hook,
                    voice=scenario.voice)
    if scenario.hook and (pods or attach):
        raise click.UsageError(f"scenario {scenario_file}: hook: runs only in the Chat Servers mroute load spawns; "
                               "running ones run the hook their topology names (actors.NAME.hook)")
    console = Console(stderr=True)
    if pods or attach:   # servers someone else runs: whatever ends the run, they get their settings back
        interrupt_on_term()
    try:
        if pods:
            if servers is not None or agents is not None or attach:
                raise click.UsageError("--attach-pods drives the pods as they run: scale them with the orchestrator "
                                       "(kubectl scale statefulset ...), not --chat-servers or --agents-per-server")
            if scenario.voice is not None:
                raise click.UsageError(f"scenario {scenario_file}: voice: --attach-pods drives Chat Servers only; "
                                       "voice calls need the GC of a topology (spawned, or --attach)")
            token = Path(token_file).read_text().strip() if token_file else os.environ.get("MROUTE_CONTROL_TOKEN")
            fleet: Any = PodsFleet(list(pods), token)
        elif attach:
            if agents is not None:
                raise click.UsageError("--agents-per-server is fixed by the running topology's file "
                                       "(actors.chat.agents); it cannot change with --attach")
            topology = load_or_exit(file)
            check_queues(scenario_file, scenario, topology)
            plan.voice = check_voice(scenario_file, scenario, topology, desked_by_running(topology, servers))
            fleet = AttachedFleet(topology, servers,
                                  say=lambda text: console.print(text, soft_wrap=True, markup=False, highlight=False))
        else:
            # refused here, with the key and the reason, before anything starts
            spawned = load_or_exit(file)
            check_queues(scenario_file, scenario, spawned)
            plan.voice = check_voice(scenario_file, scenario, spawned, (servers or 2) * (agents or 10))
            with console.status("starting the fleet..."):
                fleet = SpawnedFleet(Path(file), servers or 2, agents or 10, plan)
    except (client.NoAnswer, RuntimeError, StartError, TopologyError) as exc:
        raise click.ClickException(str(exc))
    result: dict[str, Any] | None = None
    try:
        if quiet:
            result = run_load(plan, fleet)
        elif console.is_terminal:
            with Live(console=console, refresh_per_second=4) as live:
                result = run_load(plan, fleet, lambda row: live.update(loadreport.progress_table(row, duration)))
        else:
            result = run_load(plan, fleet, lambda row: click.echo(loadreport.progress_line(row), err=True))
    except (RuntimeError, client.NoAnswer) as exc:
        raise click.ClickException(f"the load run failed: {exc}")
    finally:
        # a spawned fleet's logs are kept when a task was lost or the run failed: they say why
        kept = isinstance(fleet, SpawnedFleet) and (result is None or result.get("lost", 0) > 0)
        if isinstance(fleet, SpawnedFleet):
            fleet.close(keep=kept)
        else:
            fleet.close()
        if kept:
            click.echo(f"the fleet's logs are kept in {fleet.directory}", err=True)
    result["run"] = run_details(shlex.join(["mroute", *sys.argv[1:]]), fleet)
    if base is not None:
        result["compare"] = compare.compare(result, base, compare_file)
    result["verdict"] = thresholds.judge(result, fail_on, thresholds.LOAD_FIGURES, base)
    out = Console()
    for table in loadreport.summary_tables(result):
        out.print(table)
    if csv_prefix:
        for path in loadrows.write_csv(csv_prefix, result):
            click.echo(f"wrote {path}", err=True)
    if json_file:
        Path(json_file).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    if html_file:
        Path(html_file).write_text(loadpage.html_page(result))
    if result["interrupted"]:
        raise click.ClickException("interrupted: the figures cover the run up to the interruption")
    if result["lost"] or not accounted(result):
        raise click.ClickException(f"{result['lost']} tasks lost; created {result['created']} does not add up"
                                   if not accounted(result) else f"{result['lost']} tasks lost")
    if not result["verdict"]["passed"]:
        raise click.ClickException(f"thresholds missed: {thresholds.missed(result['verdict'])}")
