"""`mroute trace TASK_ID`: a task's path through the processes."""

from __future__ import annotations

import click
import orjson

from .. import client
from .common import host_option, load_or_exit, topology_option


@click.command()
@topology_option()
@host_option
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="the hops as one JSON object")
def trace(file: str, host: str | None, task_id: str, as_json: bool) -> None:
    """A task's path through the processes: every message naming it that an actor took,
    in time order, with the time from each hop to the next (from the actors' memory of
    their last 20,000 such messages)."""
    topology = load_or_exit(file, host)
    answers = client.ask(topology, "ask", {"name": "all", "verb": "trace", "body": {"task": task_id}})["actors"]
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

    from ..traceview import HopTable
    Console().print(HopTable(task_id, hops))
