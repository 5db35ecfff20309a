"""`mroute events`: the supervisor's lifecycle event stream."""

from __future__ import annotations

import click

from .common import running_topology, topology_option


@click.command()
@topology_option()
@click.option("--count", type=int, default=None, help="exit after this many events")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.option("--timeout", type=float, default=None, help="exit after this many seconds")
def events(file: str, count: int | None, as_json: bool, timeout: float | None) -> None:
    """Stream lifecycle events (an actor STARTING, RUNNING, DEGRADED, EXITED, BACKOFF, FATAL, ...)."""
    from ..probe import stream_events
    stream_events(running_topology(file), count, as_json, timeout)
