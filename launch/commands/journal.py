"""Comm's journal as an operator handles it: `mroute reset` (start empty next time; the
journal is set aside, never deleted), `mroute backup FILE` (a consistent copy, also while
running, refused when the journal cannot be read whole), and the question `up --fresh` and
`reset` ask on a terminal before they set live tasks aside."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from urllib.parse import quote

import click

from wire.kernel.rundir import journal_path

from ..supervisor import is_locked
from ..supervisor.rundir import JournalNotDiscarded, discard_journal, journal_summary
from ..topology import Topology
from .common import host_option, load_or_exit, topology_option


def set_aside(kept: Path) -> str:
    return f"the journal was set aside as {kept}"


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
    """Set Comm's journal aside (renamed beside itself, never deleted), so that the next `up`
    starts with no agents and no tasks."""
    topology = load_or_exit(file, host)
    if is_locked(topology.run_dir):
        raise click.ClickException(f"topology {topology.name!r} is running: `mroute down` first")
    summary = journal_summary(journal_path(topology.run_dir))
    if not summary.get("exists"):
        click.echo(f"{topology.name}: no journal to discard")
        return
    confirm_discard(topology, yes)
    try:
        kept = discard_journal(topology.run_dir)
    except JournalNotDiscarded as exc:
        raise click.ClickException(str(exc))
    if kept is None:
        click.echo(f"{topology.name}: no journal to discard")
        return
    click.echo(f"{topology.name}: journal discarded ({what_it_holds(summary)}); {set_aside(kept)}; "
               "the next `up` starts empty")


class Damaged(Exception):
    """SQLite's words for a journal that cannot be read whole."""


def copy_journal(source: Path, copy_path: Path, running: bool) -> None:
    """SQLite's online backup of `source`, then checked: the backup copies pages as they
    are, and a damaged journal made a damaged copy said to be good (issue 24). The copy is
    one consistent moment of the journal: its quick_check is the journal's. A backup never
    creates or changes the journal: read-only while Comm may write (WAL), immutable when
    nothing runs and no -wal holds anything (read-only mode would create an empty one)."""
    wal = Path(f"{source}-wal")
    mode = "mode=ro" if running or (wal.exists() and wal.stat().st_size > 0) else "immutable=1"
    copy = sqlite3.connect(copy_path)
    try:
        live = sqlite3.connect(f"file:{quote(str(source))}?{mode}", uri=True)
        try:
            live.backup(copy)
            words = [row[0] for row in copy.execute("PRAGMA quick_check(5)")]
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                raise Damaged(str(exc)) from exc
            raise
        finally:
            live.close()
        if words != ["ok"]:
            raise Damaged(" ".join("; ".join(words).split()))
    finally:
        copy.close()


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
        copy_journal(source, partial, running=is_locked(topology.run_dir))
        partial.replace(target)   # a backup that stopped half-way never looks like a whole one
    except Damaged as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"backup failed: the journal {source} is damaged ({exc}); nothing was "
                                   f"written to {target}")
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"backup failed: {exc}")
    click.echo(f"{topology.name}: journal copied to {target} ({what_it_holds(journal_summary(target))})")
