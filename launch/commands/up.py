"""`mroute up`: start a topology in the foreground, for a bounded run, or detached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
import orjson

from wire.kernel.loop import die_with_parent

from .. import report
from ..supervisor import AlreadyRunning, StartError, Supervisor, is_locked, running_already
from ..topology import Topology
from .common import host_option, load_or_exit, prefixer, topology_option
from .journal import confirm_discard, set_aside


@click.command()
@topology_option()
@click.option("--detach", is_flag=True, help="return once every actor is READY; the topology runs on")
@click.option("--for", "duration", type=float, default=None, metavar="SECONDS",
              help="run this long, print a summary of what was routed, then stop")
@click.option("--quiet", is_flag=True, help="do not echo the actors' output")
@click.option("--json", "as_json", is_flag=True, help="with --for: print the summary as one JSON line")
@click.option("--daemon", is_flag=True, hidden=True)
@click.option("--log-json", is_flag=True, help="actors log JSON lines (with TaskId and AgentId where a line has them)")
@click.option("--fresh", is_flag=True,
              help="discard Comm's journal and start with no agents and no tasks (asks on a terminal)")
@click.option("--yes", is_flag=True, help="with --fresh: do not ask")
@host_option
def up(file: str, detach: bool, duration: float | None, quiet: bool, as_json: bool, daemon: bool, log_json: bool,
       fresh: bool, yes: bool, host: str | None) -> None:
    """Start the topology in FILE (with --host, the actors placed on that host). It carries
    on from Comm's journal, however the last run ended; --fresh starts empty."""
    topology = load_or_exit(file, host)
    if fresh and not daemon:
        if is_locked(topology.run_dir):
            raise click.ClickException(running_already(topology.run_dir, topology.name))
        confirm_discard(topology, yes)
    if log_json:
        os.environ["MROUTE_LOG_FORMAT"] = "json"  # the actors inherit it
    if host:
        os.environ["MROUTE_HOST"] = host  # a detached supervisor starts the same share
    if detach:
        sys.exit(spawn_detached(file, topology, fresh))
    if daemon:
        sys.exit(run_daemon(topology, fresh))
    # In the foreground we belong to whoever started us; TERM lets us stop our children.
    die_with_parent(os.getppid(), signal.SIGTERM)
    supervisor = Supervisor(topology, echo=None if quiet else prefixer(topology), fresh=fresh)
    started = time.monotonic()
    try:
        supervisor.claim()
        if supervisor.discarded is not None:
            click.echo(f"mroute: {set_aside(supervisor.discarded)}", err=True)
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


def spawn_detached(file: str, topology: Topology, fresh: bool) -> int:
    """Start a supervisor in its own session and wait for its word: READY or why not."""
    if is_locked(topology.run_dir):
        raise click.ClickException(running_already(topology.run_dir, topology.name))
    proc = subprocess.Popen([sys.executable, "-m", "launch.cli", "up", "-f", file, "--daemon",
                             *(["--fresh"] if fresh else [])],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().decode().strip()
    if first.startswith("READY"):
        click.echo(f"mroute: {topology.name} is up ({first.split(' ', 1)[1]}); supervisor pid {proc.pid}")
        return 0
    rest = proc.stdout.read().decode(errors="replace")
    proc.wait(timeout=30)
    first = first.removeprefix("FAILED ")
    click.secho(f"mroute: {topology.name} did not start:\n{first}\n{rest}".rstrip(), fg="red", err=True)
    return 1


def run_daemon(topology: Topology, fresh: bool) -> int:
    """The detached supervisor: say READY (or the failure) on stdout, then log to a file."""
    supervisor = Supervisor(topology, fresh=fresh)
    started = time.monotonic()
    try:
        try:
            supervisor.claim()
            supervisor.start()
        except (AlreadyRunning, StartError) as exc:
            print(f"FAILED {exc}", flush=True)
            return 1
        kept = f"; {set_aside(supervisor.discarded)}" if supervisor.discarded is not None else ""
        print(f"READY {len(supervisor.children)} actors in {time.monotonic() - started:.2f} s{kept}", flush=True)
        log = os.open(topology.run_dir / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        supervisor.serve()
        return 0
    finally:
        supervisor.stop()
        supervisor.close()
