"""`mroute stats [NAME]`: what each actor counts (messages in and out, ...) and the figures
of its role (Comm's agents and tasks, the MRE's decisions, a Chat Server's latency ...), as
the supervisor gathers them from the running actors."""

from __future__ import annotations

from typing import Any

import click
import orjson

from .. import client
from .common import host_option, load_or_exit, topology_option


def chosen(actors: list[dict[str, Any]], name: str | None) -> list[dict[str, Any]]:
    """All, an actor's instances (`chat`) or one instance (`chat.2`)."""
    if name is None or name == "all":
        return actors
    picked = [a for a in actors if a["name"] == name or a["name"].rpartition(".")[0] == name]
    if not picked:
        raise click.ClickException(f"no actor or instance named {name!r} "
                                   f"(have: {', '.join(a['name'] for a in actors)})")
    return picked


def is_histogram(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"counts", "count", "max_us"}


def readable(value: Any) -> str:
    if is_histogram(value):
        from wire.stats import Histogram
        hist = Histogram.from_json(value)
        if not hist.count:
            return "0 samples"
        p50, p99 = hist.percentile(50), hist.percentile(99)
        return (f"{hist.count:,} samples, p50 {(p50 or 0) / 1000:.2f} ms, p99 {(p99 or 0) / 1000:.2f} ms, "
                f"max {value['max_us'] / 1000:.2f} ms")
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, dict)):
        text = orjson.dumps(value).decode()
        return text if len(text) <= 80 else f"{len(value)} entries"
    return str(value)


def rows(stats: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(figure, value) pairs, nested figures spelled `outer.inner`, histograms summarized."""
    out = []
    for key, value in stats.items():
        if isinstance(value, dict) and 0 < len(value) <= 12 and not is_histogram(value) and prefix.count(".") < 2:
            out.extend(rows(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", readable(value)))
    return out


@click.command()
@topology_option()
@host_option
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="one JSON object: each actor's role, state and stats")
def stats(file: str, host: str | None, name: str | None, as_json: bool) -> None:
    """The actors' stats: counters (messages received, sent, ...) and their role's figures,
    for all, an actor's instances (chat) or one instance (chat.2)."""
    topology = load_or_exit(file, host)
    actors = chosen(client.ask(topology, "status", command="stats")["actors"], name)
    gathered = client.ask(topology, "stats", timeout=5, command="stats")["actors"]
    view = {a["name"]: {"role": a["role"], "state": a["state"],
                        "stats": gathered.get(a["name"], {"error": {"reason": f"{a['name']} is {a['state']}"}})}
            for a in actors}
    if as_json:
        click.echo(orjson.dumps({"topology": topology.name, "actors": view}).decode())
        return
    from rich.console import Console
    from rich.table import Table
    console = Console()
    for actor, entry in view.items():
        table = Table(title=f"{actor} ({entry['role']}, {entry['state']})", title_justify="left")
        table.add_column("figure")
        table.add_column("value", justify="right")
        figures = entry["stats"]
        if "error" in figures:
            table.add_row("error", str(figures["error"].get("reason", figures["error"])))
        else:
            counters = figures.get("counters", {})
            for key, value in rows(counters, "counters."):
                table.add_row(key, value)
            if counters:
                table.add_section()
            for key, value in rows({k: v for k, v in figures.items() if k != "counters"}):
                table.add_row(key, value)
        console.print(table)
