"""`mroute`: start, inspect and stop a topology."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import click
import orjson

from actors.loop import die_with_parent

from . import client, report
from .supervisor import AlreadyRunning, StartError, Supervisor, is_locked, kill_survivors, read_state
from .topology import Topology, TopologyError, load

COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "red", "bright_cyan", "bright_green")


def topology_option(fn: Any, *flags: str) -> Any:
    return click.option(*(flags or ("-f", "--file")), "file", default="topology.yaml", show_default=True,
                        type=click.Path(dir_okay=False), help="the topology file")(fn)


def topology_long_option(fn: Any) -> Any:
    """For `logs`, where -f means follow, as in tail -f."""
    return topology_option(fn, "--file")


def load_or_exit(file: str, host: str | None = None) -> Topology:
    """The topology in FILE; on a topology spread over hosts, this host's share (--host, or
    MROUTE_HOST in the environment)."""
    try:
        return load(file).for_host(host or os.environ.get("MROUTE_HOST") or None)
    except TopologyError as exc:
        raise click.ClickException(str(exc))


def host_option(fn: Any) -> Any:
    return click.option("--host", default=None, metavar="NAME",
                        help="on a topology placed on hosts: this host's share [env MROUTE_HOST]")(fn)


def prefixer(topology: Topology) -> Any:
    """honcho-style output: every child's lines prefixed with a coloured, aligned `name.N |`."""
    names = [name for name, _ in topology.instances()]
    width = max((len(n) for n in names), default=4)
    colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}

    def echo(name: str, line: str) -> None:
        prefix = click.style(f"{name:<{width}} |", fg=colours.get(name, "white"))
        click.echo(f"{prefix} {line}")
    return echo


@click.group()
def main() -> None:
    """Contact-centre media routing over ZeroMQ: start, watch and stop topologies."""


@main.command()
@topology_option
@click.option("--detach", is_flag=True, help="return once every actor is READY; the topology runs on")
@click.option("--for", "duration", type=float, default=None, metavar="SECONDS",
              help="run this long, print a summary of what was routed, then stop")
@click.option("--quiet", is_flag=True, help="do not echo the actors' output")
@click.option("--json", "as_json", is_flag=True, help="with --for: print the summary as one JSON line")
@click.option("--daemon", is_flag=True, hidden=True)
@click.option("--log-json", is_flag=True, help="actors log JSON lines (with TaskId and AgentId where a line has them)")
@host_option
def up(file: str, detach: bool, duration: float | None, quiet: bool, as_json: bool, daemon: bool, log_json: bool,
       host: str | None) -> None:
    """Start the topology in FILE (with --host, the actors placed on that host)."""
    topology = load_or_exit(file, host)
    if log_json:
        os.environ["MROUTE_LOG_FORMAT"] = "json"  # the actors inherit it
    if host:
        os.environ["MROUTE_HOST"] = host  # a detached supervisor starts the same share
    if detach:
        sys.exit(spawn_detached(file, topology))
    if daemon:
        sys.exit(run_daemon(topology))
    # In the foreground we belong to whoever started us; TERM lets us stop our children.
    die_with_parent(os.getppid(), signal.SIGTERM)
    supervisor = Supervisor(topology, echo=None if quiet else prefixer(topology))
    started = time.monotonic()
    try:
        supervisor.claim()
        supervisor.start()
        click.secho(f"mroute: {topology.name} is up ({len(supervisor.children)} actors, "
                    f"{time.monotonic() - started:.2f} s); Ctrl-C stops it", fg="green", err=True)
        t0 = time.monotonic()
        supervisor.serve(duration)
        if duration is not None and not supervisor.loop.stop_reason:
            stats = supervisor.stats_now()
            roles = {c.name: c.role for c in supervisor.children.values()}
            summary = report.summarize(stats, roles, time.monotonic() - t0)
            if as_json:
                click.echo(orjson.dumps(summary).decode())
            else:
                report.print_summary(summary)
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc))
    except StartError as exc:
        click.secho(f"mroute: {exc}", fg="red", err=True)
        raise SystemExit(1)
    finally:
        supervisor.stop()
        supervisor.close()


def spawn_detached(file: str, topology: Topology) -> int:
    """Start a supervisor in its own session and wait for its word: READY or why not."""
    if is_locked(topology.run_dir):
        raise click.ClickException(f"topology {topology.name!r} is running already: `mroute down` first")
    proc = subprocess.Popen([sys.executable, "-m", "launch.cli", "up", "-f", file, "--daemon"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().decode().strip()
    if first.startswith("READY"):
        click.echo(f"mroute: {topology.name} is up ({first.split(' ', 1)[1]}); supervisor pid {proc.pid}")
        return 0
    rest = proc.stdout.read().decode(errors="replace")
    proc.wait(timeout=30)
    click.secho(f"mroute: {topology.name} did not start:\n{first}\n{rest}".rstrip(), fg="red", err=True)
    return 1


def run_daemon(topology: Topology) -> int:
    """The detached supervisor: say READY (or the failure) on stdout, then log to a file."""
    supervisor = Supervisor(topology)
    started = time.monotonic()
    try:
        try:
            supervisor.claim()
            supervisor.start()
        except (AlreadyRunning, StartError) as exc:
            print(f"FAILED {exc}", flush=True)
            return 1
        print(f"READY {len(supervisor.children)} actors in {time.monotonic() - started:.2f} s", flush=True)
        log = os.open(topology.run_dir / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        supervisor.serve()
        return 0
    finally:
        supervisor.stop()
        supervisor.close()


@main.command()
@topology_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable: endpoints, actors, supervisor")
@host_option
def status(file: str, as_json: bool, host: str | None) -> None:
    """Show each actor's state; exit non-zero unless all are RUNNING."""
    topology = load_or_exit(file, host)
    try:
        state = client.ask(topology, "status")
    except client.NotRunning as exc:
        if as_json:
            click.echo(orjson.dumps({"name": topology.name, "running": False, "endpoints": topology.endpoints,
                                     "actors": []}).decode())
        else:
            click.echo(str(exc))
        sys.exit(3)
    except client.NoAnswer as exc:
        raise click.ClickException(str(exc))
    all_running = all(a["state"] == "RUNNING" for a in state["actors"])
    if as_json:
        click.echo(orjson.dumps({**state, "running": True}).decode())
    else:
        from rich.console import Console
        from rich.table import Table
        table = Table(title=f"{state['name']} (supervisor pid {state['supervisor']['pid']})")
        for column in ("name", "role", "pid", "state", "uptime", "restarts"):
            table.add_column(column)
        for a in state["actors"]:
            colour = "green" if a["state"] == "RUNNING" else "red"
            table.add_row(a["name"], a["role"], str(a["pid"] or "-"), f"[{colour}]{a['state']}[/{colour}]",
                          f"{a['uptime']:.0f} s", str(a["restarts"]))
        Console().print(table)
    sys.exit(0 if all_running else 1)


@main.command()
@topology_option
@click.option("--timeout", type=float, default=15.0, show_default=True, help="seconds to wait for the stop")
@host_option
def down(file: str, timeout: float, host: str | None) -> None:
    """Stop the topology. Idempotent; also ends survivors named in the state file."""
    topology = load_or_exit(file, host)
    run_dir = topology.run_dir
    try:
        pid = client.ask(topology, "down")["pid"]
    except client.NotRunning:
        pid = None
    except client.NoAnswer:  # hung: take it down by force
        pid = read_state(run_dir).get("supervisor", {}).get("pid")
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while is_locked(run_dir) and time.monotonic() < deadline:
        time.sleep(0.02)  # the lock is released by the supervisor's exit: nothing to wait on but polling
    killed = kill_survivors(run_dir)
    if is_locked(run_dir):
        raise click.ClickException(f"the supervisor of {topology.name!r} did not stop within {timeout:.0f} s")
    click.echo(f"mroute: {topology.name} is down" + (f" (killed survivors {killed})" if killed else "")
               + ("" if pid else " (was not running)"))


def control(file: str, verb: str, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Ask the supervisor; by default wait as long as it may take to stop and start actors."""
    topology = load_or_exit(file)
    if timeout is None:
        timeout = topology.supervisor["stop_grace"] + topology.supervisor["ready_timeout"] + 5
    try:
        return client.ask(topology, verb, body, timeout=timeout)
    except (client.NotRunning, client.NoAnswer) as exc:
        raise click.ClickException(str(exc))


def print_actors(answer: dict[str, Any]) -> None:
    for actor in answer.get("actors", []):
        click.echo(f"{actor['name']:<12} {actor['state']:<9} pid {actor['pid'] or '-'}")


@main.command()
@topology_option
@click.argument("name")
def restart(file: str, name: str) -> None:
    """Restart an actor (all its instances), one instance (chat.2), or all."""
    print_actors(control(file, "restart", {"name": name}))


@main.command()
@topology_option
@click.argument("name")
def stop(file: str, name: str) -> None:
    """Stop an actor, an instance or all; it stays STOPPED until started."""
    print_actors(control(file, "stop", {"name": name}))


@main.command()
@topology_option
@click.argument("name")
def start(file: str, name: str) -> None:
    """Start what was stopped (or FATAL) again."""
    print_actors(control(file, "start", {"name": name}))


@main.command()
@topology_option
@click.argument("assignment", metavar="NAME=N")
def scale(file: str, assignment: str) -> None:
    """Run N instances of an actor (e.g. chat=5): new ones start, the highest-numbered stop."""
    name, _, count = assignment.partition("=")
    if not name or not count.isdigit():
        raise click.BadParameter(f"expected NAME=N, e.g. chat=5, not {assignment!r}")
    print_actors(control(file, "scale", {"name": name, "count": int(count)}))


@main.command()
@topology_long_option
@click.argument("name", required=False)
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines")
@click.option("-n", "lines", type=int, default=20, show_default=True, help="lines of each log to show first")
def logs(file: str, name: str | None, follow: bool, lines: int) -> None:
    """Show the actors' logs (all, an actor's instances, or one instance)."""
    from .logs import show_logs
    topology = load_or_exit(file)
    show_logs(topology, name, lines, follow, prefixer(topology))


@main.command()
@topology_option
@click.option("--count", type=int, default=None, help="exit after this many events")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.option("--timeout", type=float, default=None, help="exit after this many seconds")
def events(file: str, count: int | None, as_json: bool, timeout: float | None) -> None:
    """Stream lifecycle events (an actor STARTING, RUNNING, EXITED, BACKOFF, FATAL, ...)."""
    from .probe import stream_events
    topology = load_or_exit(file)
    if not is_locked(topology.run_dir):
        raise click.ClickException(f"topology {topology.name!r} is not running")
    stream_events(topology, count, as_json, timeout)


@main.command()
@topology_option
@click.argument("type")
@click.argument("body", default="{}")
@click.option("--queue", default=None, help="the queue to put it on (default: the one the catalogue gives)")
@click.option("--wait", type=float, default=1.0, show_default=True, help="seconds to print what comes back")
def send(file: str, type: str, body: str, queue: str | None, wait: float) -> None:
    """Put one message on its documented queue and print what comes back to the sender.

    Example: mroute send Task '{"Mrd": "chat", "ClientUniqueId": "c1"}'"""
    from .probe import send_and_listen
    topology = load_or_exit(file)
    if not is_locked(topology.run_dir):
        raise click.ClickException(f"topology {topology.name!r} is not running")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"BODY is not JSON: {exc}")
    send_and_listen(topology, type, parsed, queue, wait)


@main.command()
@topology_option
@click.argument("task_id")
def flush(file: str, task_id: str) -> None:
    """Close a task whatever its state (code FORCE_CLOSED)."""
    answer = control(file, "ask", {"role": "comm", "verb": "flush", "body": {"task": task_id}}, timeout=5)
    click.echo(f"{answer['TaskId']} {answer['State']} {answer['Code']}")


@main.command()
@topology_option
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
def explain(file: str, task_id: str, as_json: bool) -> None:
    """How the MRE routed a task: steps reached, candidates, who was chosen and why."""
    from .report import print_explanation
    answer = control(file, "ask", {"role": "mre", "verb": "explain", "body": {"task": task_id}}, timeout=5)
    if as_json:
        click.echo(orjson.dumps(answer).decode())
    elif not answer.get("known"):
        raise click.ClickException(f"the MRE has no record of task {task_id}")
    else:
        print_explanation(answer)


@main.command(context_settings={"ignore_unknown_options": True})
@topology_option
@click.option("--shell", "interactive", is_flag=True, help="an interactive session (history, Tab completion)")
@click.option("--wait", type=float, default=1.0, show_default=True, help="seconds to print what comes back")
@click.argument("agent")
@click.argument("command", required=False)
@click.argument("params", nargs=-1)
def gc(file: str, interactive: bool, wait: float, agent: str, command: str | None, params: tuple[str, ...]) -> None:
    """Send one Generic Connector command as AGENT and print the events that come back.

    Example: mroute gc alice Login pw-alice 1001   (parameters as separate words)"""
    from .gcclient import one_command, shell
    topology = load_or_exit(file)
    if interactive:
        shell(topology, agent)
    elif command is None:
        raise click.UsageError("name a COMMAND, or use --shell")
    else:
        one_command(topology, agent, command, params, wait)


@main.command()
@topology_option
@click.argument("queue")
@click.option("--ani", default="", help="the caller's number")
def call(file: str, queue: str, ani: str) -> None:
    """Place an inbound call on a voice queue of the simulated contact centre."""
    answer = control(file, "ask", {"role": "gc", "verb": "call", "body": {"queue": queue, "ani": ani}}, timeout=5)
    click.echo(f"call {answer['dialog']} on {queue}")


@main.command("voice-side")
@topology_option
@click.argument("status", type=click.Choice(["up", "down"]))
def voice_side(file: str, status: str) -> None:
    """Take the simulated voice side down or bring it back: the GC says OUT_OF_SERVICE / IN_SERVICE."""
    answer = control(file, "ask", {"role": "gc", "verb": "service", "body": {"up": status == "up"}}, timeout=5)
    click.echo(f"voice side {answer['status']}")


@main.command()
@topology_option
@click.argument("agent")
@click.argument("number")
def preview(file: str, agent: str, number: str) -> None:
    """Offer an outbound preview call of NUMBER to AGENT (as the dialer would)."""
    answer = control(file, "ask", {"role": "gc", "verb": "preview", "body": {"agent": agent, "number": number}},
                     timeout=5)
    click.echo(f"preview {answer['dialog']} offered to {agent}")


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
    from .load import parse_profile
    try:
        return parse_profile(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc))


@main.command("load")
@topology_option
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
@click.option("--json", "json_file", type=click.Path(dir_okay=False), help="write the full report as JSON here")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help="write a self-contained HTML report here")
@click.option("--quiet", is_flag=True, help="no live progress")
def load_command(file: str, servers: int | None, agents: int | None, rate: float, duration: float, profile: Any,
                 handle: Any, think: Any, patience: Any, drain: float, attach: bool, json_file: str | None,
                 html_file: str | None, quiet: bool) -> None:
    """Offer customers to a fleet of simulated Chat Servers and account for every task.

    Spawns the fleet with the topology file's Comm, MRE and GC (in a run directory of its
    own), or drives a running topology's chat servers with --attach. Prints live progress,
    then a summary; exits 1 if any task was lost."""
    from pathlib import Path

    from rich.console import Console
    from rich.live import Live

    from . import loadreport
    from .load import AttachedFleet, LoadPlan, SpawnedFleet, accounted, run_load
    topology = load_or_exit(file)
    plan = LoadPlan(rate=rate, duration=duration, handle=handle, think=think, patience=patience, profile=profile,
                    drain=drain)
    console = Console(stderr=True)
    try:
        if attach:
            if agents is not None:
                raise click.UsageError("--agents-per-server is fixed by the running topology's file "
                                       "(actors.chat.agents); it cannot change with --attach")
            fleet: Any = AttachedFleet(topology, servers)
        else:
            with console.status("starting the fleet..."):
                fleet = SpawnedFleet(Path(file), servers or 2, agents or 10, plan)
    except (client.NotRunning, client.NoAnswer, RuntimeError, StartError, TopologyError) as exc:
        raise click.ClickException(str(exc))
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
        fleet.close()
    out = Console()
    for table in loadreport.summary_tables(result):
        out.print(table)
    if json_file:
        Path(json_file).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    if html_file:
        Path(html_file).write_text(loadreport.html_page(result))
    if result["interrupted"]:
        raise click.ClickException("interrupted: the figures cover the run up to the interruption")
    if result["lost"] or not accounted(result):
        raise click.ClickException(f"{result['lost']} tasks lost; created {result['created']} does not add up"
                                   if not accounted(result) else f"{result['lost']} tasks lost")


@main.command()
@topology_option
@host_option
@click.option("--once", is_flag=True, help="print one frame and exit (for scripts)")
@click.option("--json", "as_json", is_flag=True, help="with --once: the frame as one JSON object")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="seconds between frames (rates are measured over it)")
def top(file: str, host: str | None, once: bool, as_json: bool, interval: float) -> None:
    """A live view of a running topology: processes (state, CPU, memory, messages/s in and
    out), agents by state per MRD, waiting queues, tasks routed/s and routing latency."""
    from rich.console import Console
    from rich.live import Live

    from .top import frame, look, render
    topology = load_or_exit(file, host)
    try:
        before = look(topology)
        if once:
            time.sleep(interval)  # the rates are measured over this interval
            view = frame(before, look(topology))
            if as_json:
                click.echo(orjson.dumps(view).decode())
            else:
                Console().print(render(view))
            return
        with Live(console=Console(), refresh_per_second=4, screen=True) as live:
            while True:
                time.sleep(interval)
                after = look(topology)
                live.update(render(frame(before, after)))
                before = after
    except (client.NotRunning, client.NoAnswer) as exc:
        raise click.ClickException(str(exc))
    except KeyboardInterrupt:
        pass


@main.command()
@topology_option
@host_option
@click.argument("queues", nargs=-1)
@click.option("--type", "type_filter", default=None, metavar="T", help="only messages of this type")
@click.option("--agent", default=None, metavar="A", help="only messages about this agent")
@click.option("--count", type=click.IntRange(1), default=None, metavar="N", help="stop after N messages")
@click.option("--timeout", type=float, default=None, metavar="S", help="stop after S seconds")
def tap(file: str, host: str | None, queues: tuple[str, ...], type_filter: str | None, agent: str | None,
        count: int | None, timeout: float | None) -> None:
    """Print the messages crossing the documented queues and topics (all, or QUEUES:
    General, RoutingEngine, CommunicationServer, GC, ChatEvents, GCEvents), decoded, one
    line each, without taking them from their consumers. Passwords are hidden."""
    from . import tap as tapping
    unknown = [q for q in queues if q not in tapping.QUEUES]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: the queues are {', '.join(tapping.QUEUES)}",
                                 param_hint="QUEUES")
    topology = load_or_exit(file, host)
    try:
        tapping.tap(topology, queues, type_filter, agent, count, click.echo, timeout)
    except (client.NotRunning, client.NoAnswer) as exc:
        raise click.ClickException(str(exc))
    except KeyboardInterrupt:
        pass


@main.command()
@topology_option
@host_option
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="the hops as one JSON object")
def trace(file: str, host: str | None, task_id: str, as_json: bool) -> None:
    """A task's path through the processes: every message naming it that an actor took,
    in time order, with the time from each hop to the next (from the actors' memory of
    their last 20,000 such messages)."""
    from datetime import datetime
    topology = load_or_exit(file, host)
    try:
        answers = client.ask(topology, "ask", {"name": "all", "verb": "trace", "body": {"task": task_id}})["actors"]
    except (client.NotRunning, client.NoAnswer) as exc:
        raise click.ClickException(str(exc))
    hops = sorted(({**event, "actor": name} for name, answer in answers.items() for event in answer.get("events", [])),
                  key=lambda hop: hop["at"])
    if not hops:
        raise click.ClickException(f"no actor remembers task {task_id}")
    for before, hop in zip([None, *hops], hops):
        hop["after_ms"] = round((hop["at"] - before["at"]) * 1000, 3) if before else 0.0
    if as_json:
        click.echo(orjson.dumps({"task": task_id, "hops": hops,
                                 "total_ms": round((hops[-1]["at"] - hops[0]["at"]) * 1000, 3)}).decode())
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"task {task_id}: {len(hops)} hops in {(hops[-1]['at'] - hops[0]['at']) * 1000:.2f} ms")
    for column in ("time", "+ms", "taken by", "from queue", "message", "agent"):
        table.add_column(column, justify="right" if column == "+ms" else "left")
    for hop in hops:
        table.add_row(datetime.fromtimestamp(hop["at"]).strftime("%H:%M:%S.%f")[:-3], f"{hop['after_ms']:.3f}",
                      hop["actor"], hop["queue"], hop["type"], hop["agent"] or "")
    Console().print(table)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default="keys")
@click.option("--client", "clients", multiple=True, metavar="NAME", help="also make (and allow) a client's key pair")
def keys(directory: str, clients: tuple[str, ...]) -> None:
    """Make CURVE keys for a topology (`security: {curve: DIRECTORY}`): the server's, our
    actors', and the allow-list; --client NAME adds a client's key pair to hand out."""
    from pathlib import Path

    from wire.curve import add_client, make_keys
    path = Path(directory)
    make_keys(path)
    click.echo(f"{path}: server.key_secret, actors.key_secret, allowed/ (mode 0700)")
    for name in clients:
        click.echo(f"client {name}: give it {add_client(path, name)}; its public key is in {path / 'allowed'}")


@main.command()
@topology_option
@click.option("--duration", type=click.FloatRange(2), default=20.0, show_default=True, help="seconds of load and kills")
@click.option("--rate", type=click.FloatRange(0.1, 10_000), default=20.0, show_default=True, help="tasks/s offered")
@click.option("--chat-servers", "servers", type=click.IntRange(1), default=2, show_default=True)
@click.option("--agents-per-server", "agents", type=click.IntRange(1), default=5, show_default=True)
@click.option("--seed", type=int, default=None, help="make the choice of victims repeatable")
@click.option("--json", "as_json", is_flag=True, help="the last line is one JSON object with the account")
def chaos(file: str, duration: float, rate: float, servers: int, agents: int, seed: int | None,
          as_json: bool) -> None:
    """Run a load while killing a random actor (SIGKILL) every 1-2 s, then account for
    every task: created, routed, closed, unfinished, lost, double assigned, over capacity.
    Exits 1 if any task was lost, given to two agents, or over an agent's limit."""
    from pathlib import Path

    from .chaos import run_chaos
    load_or_exit(file)
    try:
        account = run_chaos(Path(file), duration, rate, servers, agents, seed,
                            progress=lambda line: click.echo(line, err=True))
    except (StartError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    if not as_json:
        click.echo(f"{account['kills']} kills in {account['duration_s']} s: " + ", ".join(
            f"{k}: {account[k]}" for k in ("created", "routed", "closed", "unfinished", "lost", "double_assigned",
                                           "over_capacity", "gaps", "missed", "resyncs")))
    click.echo(orjson.dumps(account).decode())
    if account["lost"] or account["double_assigned"] or account["over_capacity"]:
        raise SystemExit(1)


@main.group(invoke_without_command=True)
@topology_option
@click.option("--json", "as_json", is_flag=True, help="the last line is one JSON object with every figure")
@click.option("--step", type=float, default=3.0, show_default=True, help="seconds per offered rate")
@click.option("--chat-servers", "servers", type=click.IntRange(1), default=2, show_default=True,
              help="simulated Chat Servers offering the load (250 agents each)")
@click.option("--memory-agents", type=click.IntRange(0), default=100_000, show_default=True,
              help="logged-in agents at which to measure Comm's and the MRE's bytes per agent (0: skip)")
@click.pass_context
def bench(ctx: click.Context, file: str, as_json: bool, step: float, servers: int, memory_agents: int) -> None:
    """Benchmarks: print figures (never pass/fail). Without a subcommand: the raw ZeroMQ
    ceiling and the system's throughput and routing latency, measured in the same run."""
    if ctx.invoked_subcommand is not None:
        return
    from pathlib import Path

    from .bench import comm_bytes_per_agent, raw_ceiling, routing_cost, system_figures
    load_or_exit(file)
    started = time.monotonic()
    try:
        figures = {**raw_ceiling(), **system_figures(Path(file), servers=servers, step_s=step)}
    except (StartError, TopologyError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    if memory_agents:
        figures.update(memory_agents=memory_agents, comm_bytes_per_agent=comm_bytes_per_agent(memory_agents),
                       mre_bytes_per_agent=routing_cost(memory_agents, decisions=1000)["mre_bytes_per_agent"])
    figures["duration_s"] = round(time.monotonic() - started, 1)
    figures["route_p50_vs_raw_rtt"] = round(figures["route_p50_us"] / figures["raw_rtt_p50_us"], 2)
    if not as_json:
        click.echo(f"raw ZeroMQ: {figures['raw_msgs_per_s']:,} msgs/s one way; round trip through three "
                   f"processes p50 {figures['raw_rtt_p50_us']} us")
        for step_row in figures["steps"]:
            click.echo(f"offered {step_row['offered_per_s']:>8,.0f} tasks/s -> completed "
                       f"{step_row['completed_per_s']:>8,} lifecycles/s")
        click.echo(f"system: {figures['tasks_per_s']:,} full lifecycles/s (Task -> routed -> accepted -> closed), "
                   f"{figures['agents']} agents on {figures['chat_servers']} Chat Servers")
        click.echo(f"routing latency at {figures['latency_rate_per_s']:.0f} tasks/s: p50 {figures['route_p50_us']} us "
                   f"({figures['route_p50_vs_raw_rtt']}x the raw round trip), p99 {figures['route_p99_us']} us")
        busiest = figures["steps"][-1]["cpu_percent"]
        click.echo("CPU % per process at the last step: " + ", ".join(f"{n} {p}" for n, p in busiest.items()))
        if memory_agents:
            click.echo(f"state per logged-in agent at {memory_agents:,} agents: "
                       f"Comm {figures['comm_bytes_per_agent']:,} "
                       f"bytes, MRE {figures['mre_bytes_per_agent']:,} bytes")
    click.echo(orjson.dumps(figures).decode())


@bench.command("raw")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def bench_raw(as_json: bool) -> None:
    """The raw ZeroMQ ceiling on this machine: messages/s and the three-process round trip."""
    from .bench import raw_ceiling
    figures = raw_ceiling()
    if as_json:
        click.echo(orjson.dumps(figures).decode())
        return
    click.echo(f"raw PUSH/PULL, ipc, two processes: {figures['raw_msgs_per_s']:,} messages/s "
               f"({figures['raw_codec_msgs_per_s']:,}/s with orjson encode + decode per message)")
    click.echo(f"raw round trip chat -> comm -> mre -> comm -> chat, three processes: "
               f"p50 {figures['raw_rtt_p50_us']} us, p99 {figures['raw_rtt_p99_us']} us")


@bench.command("routing")
@click.option("--agents", "sizes", default="100,1000,10000,100000", show_default=True,
              help="comma-separated numbers of logged-in agents")
@click.option("--decisions", type=int, default=20_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line, the last a summary")
def bench_routing(sizes: str, decisions: int, as_json: bool) -> None:
    """Cost of one routing decision as the logged-in agents grow, next to raw ZeroMQ."""
    from .bench import raw_push_pull_us, routing_cost
    raw = raw_push_pull_us()
    rows = [routing_cost(int(n), decisions) for n in sizes.split(",")]
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        click.echo(orjson.dumps({"raw_push_pull_us": round(raw, 2), "rows": rows}).decode())
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"routing decision cost (3-step queue, {decisions} decisions each)")
    for column in ("agents", "p50 us", "p99 us", "mean us", "x raw msg", "MRE bytes/agent"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(f"{row['agents']:,}", f"{row['route_p50_us']:.1f}", f"{row['route_p99_us']:.1f}",
                      f"{row['mean_us']:.1f}", f"{row['route_p50_us'] / raw:.1f}", f"{row['mre_bytes_per_agent']:,}")
    Console().print(table)
    click.echo(f"raw ZeroMQ, same run: {raw:.2f} us per orjson message through PUSH/PULL (ipc, one process)")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False), default="topology.yaml")
def check(file: str) -> None:
    """Validate a topology file without starting anything."""
    topology = load_or_exit(file)
    instances = topology.instances()
    click.echo(f"{file}: ok: topology {topology.name!r}, {len(instances)} processes "
               f"({', '.join(n for n, _ in instances)}), {len(topology.agents)} agents, "
               f"MRDs {', '.join(topology.mrds)}; run directory {topology.run_dir}")


if __name__ == "__main__":
    main()
