"""`mroute tap`: the messages crossing the documented queues, decoded, without taking them."""

from __future__ import annotations

import click

from .common import host_option, load_or_exit, topology_option


@click.command()
@topology_option()
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
    from .. import tap as tapping
    unknown = [q for q in queues if q not in tapping.QUEUES]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: the queues are {', '.join(tapping.QUEUES)}",
                                 param_hint="QUEUES")
    topology = load_or_exit(file, host)
    try:
        tapping.tap(topology, queues, type_filter, agent, count, click.echo, timeout)
    except KeyboardInterrupt:
        pass
