"""Comm's journal as an operator handles it: `mroute reset` (start empty next time),
`mroute backup FILE` (a consistent copy, also while running), and the question `up --fresh`
and `reset` ask on a terminal before they throw live tasks away."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from wire.rundir import journal_path

from ..supervisor import is_locked
from ..supervisor.rundir import discard_journal, journal_summary
from ..topology import Topology
from .common import host_option, load_or_exit, topology_option


def what_it_holds(summary: dict) -> str:
    if "unreadable" in summary:
        return f"a journal that cannot be read ({summary['unreadable']})"
    return f"{summary['live_tasks']} live tasks and {summary['agents_logged_in']} logged-in agents"


def confirm_discard(topology: Topology, yes: bool) -> None:
    """On a terminal, ask before discarding a journal that holds live tasks or agents; a
    script that said --fresh (or --yes) meant it."""
    summary = journal_summary(journal_path(topology.run_dir))
    holds = summary.get("exists") and (summary.get("live_tasks") or summary.get("agents_logged_in")
                                       or "unreadable" in summary)
    if holds and not yes and sys.stdin.isatty():
        click.confirm(f"The journal of {topology.name!r} holds {what_it_holds(summary)}. Discard it?",
                      default=False, abort=True)


@click.command()
@topology_option()
@host_option
@click.option("--yes", is_flag=True, help="do not ask, even on a terminal")
def reset(file: str, host: str | None, yes: bool) -> None:
    """Discard Comm's journal, so that the next `up` starts with no agents and no tasks."""
    topology = load_or_exit(file, host)
    if is_locked(topology.run_dir):
        raise click.ClickException(f"topology {topology.name!r} is running: `mroute down` first")
    summary = journal_summary(journal_path(topology.run_dir))
    if not summary.get("exists"):
        click.echo(f"{topology.name}: no journal to discard")
        return
    confirm_discard(topology, yes)
    discard_journal(topology.run_dir)
    click.echo(f"{topology.name}: journal discarded ({what_it_holds(summary)})")


@click.command()
@topology_option()
@host_option
@click.argument("destination", type=click.Path(dir_okay=False, writable=True))
def backup(file: str, host: str | None, destination: str) -> None:
    """Write a consistent copy of Comm's journal to DESTINATION, while running or not
    (SQLite's online backup). To restore: `mroute down`, copy it to the run directory as
    comm.sqlite, `mroute up`."""
    topology = load_or_exit(file, host)
    source = journal_path(topology.run_dir)
    if not source.exists():
        raise click.ClickException(f"topology {topology.name!r} has no journal at {source}")
    target = Path(destination)
    if target.resolve() == source.resolve():
        raise click.ClickException("the backup must go elsewhere than the journal itself")
    partial = target.with_name(target.name + ".partial")
    try:
        # read-only: a backup never creates or changes the journal; Comm may go on writing (WAL)
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as live, sqlite3.connect(partial) as copy:
            live.backup(copy)
        partial.replace(target)   # a backup that stopped half-way never looks like a whole one
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"backup failed: {exc}")
    click.echo(f"{topology.name}: journal copied to {target} ({what_it_holds(journal_summary(target))})")
