"""`mroute status`: each actor's state; exit 0 only when all are RUNNING, 3 when nothing runs."""

from __future__ import annotations

import sys

import click
import orjson

from .. import client
from .common import host_option, human_seconds, load_or_exit, topology_option


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
        reasons = any(a.get("reason") for a in state["actors"])
        if reasons:  # why an actor is DEGRADED, UNRESPONSIVE or FATAL (its last start failure)
            table.add_column("reason", overflow="fold")
        for a in state["actors"]:
            colour = {"RUNNING": "green", "DEGRADED": "yellow"}.get(a["state"], "red")
            table.add_row(a["name"], a["role"], str(a["pid"] or "-"), f"[{colour}]{a['state']}[/{colour}]",
                          human_seconds(a["uptime"]), str(a["restarts"]), *([a.get("reason", "")] if reasons else []))
        dropped = state["supervisor"].get("log_dropped_bytes", 0)
        unwritten = state["supervisor"].get("files_unwritten", [])
        if dropped or unwritten:
            table.caption = (f"log bytes dropped (write failed): {dropped:,}" if dropped else "") + \
                (f"   not yet written: {', '.join(unwritten)} ({state['supervisor'].get('last_write_error')})"
                 if unwritten else "")
        Console().print(table)
    sys.exit(0 if all_running else 1)
