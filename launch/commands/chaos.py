"""`mroute chaos`: a load while actors are killed at random, then an account of every task."""

from __future__ import annotations

import click
import orjson

from ..load import thresholds
from ..supervisor import StartError
from .common import load_or_exit, topology_option


@click.command()
@topology_option()
@click.option("--duration", type=click.FloatRange(2), default=20.0, show_default=True, help="seconds of load and kills")
@click.option("--rate", type=click.FloatRange(0.1, 10_000), default=20.0, show_default=True, help="tasks/s offered")
@click.option("--chat-servers", "servers", type=click.IntRange(1), default=2, show_default=True)
@click.option("--agents-per-server", "agents", type=click.IntRange(1), default=5, show_default=True)
@click.option("--seed", type=int, default=None, help="make the choice of victims repeatable")
@click.option("--json", "as_json", is_flag=True, help="the last line is one JSON object with the account")
@thresholds.click_option(thresholds.CHAOS_FIGURES)
def chaos(file: str, duration: float, rate: float, servers: int, agents: int, seed: int | None,
          as_json: bool, fail_on: list[thresholds.Threshold]) -> None:
    """Run a load while killing a random actor (SIGKILL) every 1-2 s, then account for
    every task: created, routed, closed, unfinished, lost, double assigned, over capacity.
    Exits 1 if any task was lost, given to two agents, or over an agent's limit, or a
    --fail-on threshold was missed."""
    from pathlib import Path

    from ..load.chaos import run_chaos
    load_or_exit(file)
    try:
        account = run_chaos(Path(file), duration, rate, servers, agents, seed,
                            progress=lambda line: click.echo(line, err=True))
    except (StartError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    if not as_json:
        click.echo(f"{account['kills']} kills in {account['duration_s']} s: " + ", ".join(
            f"{k}: {account[k]}" for k in ("created", "routed", "closed", "unfinished", "lost", "double_assigned",
                                           "over_capacity", "gaps", "missed", "resyncs")))
    account["verdict"] = thresholds.judge(account, fail_on, thresholds.CHAOS_FIGURES)
    click.echo(orjson.dumps(account).decode())
    if not account["verdict"]["passed"]:
        click.secho(f"thresholds missed: {thresholds.missed(account['verdict'])}", fg="red", err=True)
    if account["lost"] or account["double_assigned"] or account["over_capacity"] or not account["verdict"]["passed"]:
        raise SystemExit(1)
