"""`mroute flush TASK_ID` and `mroute explain TASK_ID`: a task, as Comm and the MRE hold it."""

from __future__ import annotations

import click
import orjson

from .common import control, topology_option


@click.command()
@topology_option()
@click.argument("task_id")
def flush(file: str, task_id: str) -> None:
    """Close a task whatever its state (code FORCE_CLOSED)."""
    answer = control(file, "ask", {"role": "comm", "verb": "flush", "body": {"task": task_id}}, timeout=5)
    click.echo(f"{answer['TaskId']} {answer['State']} {answer['Code']}")


@click.command()
@topology_option()
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
def explain(file: str, task_id: str, as_json: bool) -> None:
    """How the MRE routed a task: steps reached, candidates, who was chosen and why."""
    from ..report import print_explanation
    answer = control(file, "ask", {"role": "mre", "verb": "explain", "body": {"task": task_id}}, timeout=5)
    if as_json:
        click.echo(orjson.dumps(answer).decode())
    elif not answer.get("known"):
        raise click.ClickException(f"the MRE has no record of task {task_id}")
    else:
        print_explanation(answer)
