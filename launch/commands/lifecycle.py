"""`mroute restart | stop | start NAME` and `mroute scale NAME=N`: the supervisor changes
what runs and answers with the actors' states once they are there."""

from __future__ import annotations

import sys

import click

from .. import client
from .common import control, print_actors, topology_option


@click.command()
@topology_option()
@click.argument("name")
def restart(file: str, name: str) -> None:
    """Restart an actor (all its instances), one instance (chat.2), or all."""
    print_actors(control(file, "restart", {"name": name}))


@click.command()
@topology_option()
@click.argument("name")
def stop(file: str, name: str) -> None:
    """Stop an actor, an instance or all; it stays STOPPED until started."""
    print_actors(control(file, "stop", {"name": name}))


@click.command()
@topology_option()
@click.argument("name")
def start(file: str, name: str) -> None:
    """Start what was stopped (or FATAL) again."""
    print_actors(control(file, "start", {"name": name}))


@click.command()
@topology_option()
@click.option("--force", is_flag=True, help="start Chat Servers even when the directory has too few agents for them")
@click.argument("assignment", metavar="NAME=N")
def scale(file: str, force: bool, assignment: str) -> None:
    """Run N instances of an actor (e.g. chat=5): new ones start, the highest-numbered stop
    (their agents are logged out at once). Chat Servers that would desk too few agents are
    refused with the reason; on a terminal, mroute asks."""
    name, _, count = assignment.partition("=")
    if not name or not count.isdigit():
        raise click.BadParameter(f"expected NAME=N, e.g. chat=5, not {assignment!r}")
    body = {"name": name, "count": int(count), "force": force}
    try:
        answer = control(file, "scale", body)
    except client.Refused as exc:
        if not exc.answer.get("confirm") or not sys.stdin.isatty():
            raise click.ClickException(f"{exc}" + (" (--force starts them anyway)" if exc.answer.get("confirm") else ""))
        click.echo(f"{exc}.", err=True)
        if not click.confirm("Start them anyway?", default=False):
            raise SystemExit(1)
        answer = control(file, "scale", {**body, "force": True})
    print_actors(answer)
    if answer.get("logged_out"):
        click.echo(f"logged out at once (their tasks back to the queues): {', '.join(answer['logged_out'])}")
