"""`mroute status`: each actor's state; exit 0 only when all are RUNNING, 3 when nothing runs."""

from __future__ import annotations

import sys

import click
import orjson

from .. import client
from .common import host_option, load_or_exit, topology_option


@click.command()
@topology_option()
@click.option("--json", "as_json", is_flag=True, help="machine-readable: endpoints, actors, supervisor")
@host_option
def status(file: str, as_json: bool, host: str | None) -> None:
    """Show each actor's state; exit non-zero unless all are RUNNING."""
    topology = load_or_exit(file, host)
    try:
        state = client.ask(topology, "status")
    except client.NotRunning as exc:
        if as_json:
            click.echo(orjson.dumps({"name": topology.name, "running": False,
                                     "endpoints": topology.served_endpoints(),
                                     "actors": []}).decode())
        else:
            click.echo(str(exc))
        sys.exit(3)
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
