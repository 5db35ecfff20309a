"""`mroute restart | stop | start NAME` and `mroute scale NAME=N`: the supervisor changes
what runs and answers with the actors' states once they are there."""

from __future__ import annotations

import click

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
@click.argument("assignment", metavar="NAME=N")
def scale(file: str, assignment: str) -> None:
    """Run N instances of an actor (e.g. chat=5): new ones start, the highest-numbered stop."""
    name, _, count = assignment.partition("=")
    if not name or not count.isdigit():
        raise click.BadParameter(f"expected NAME=N, e.g. chat=5, not {assignment!r}")
    print_actors(control(file, "scale", {"name": name, "count": int(count)}))
