"""`mroute logs`: the actors' log files, prefixed like `up` prints them. Works on a stopped
topology too (the files stay). Its -f means follow, as in tail -f and docker compose: the
topology file is `--file` here, or the group's `mroute -f FILE logs -f`."""

from __future__ import annotations

import click

from .common import load_or_exit, prefixer, topology_option


@click.command()
@topology_option("--file")
@click.argument("name", required=False)
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines")
@click.option("-n", "lines", type=int, default=20, show_default=True, help="lines of each log to show first")
def logs(file: str, name: str | None, follow: bool, lines: int) -> None:
    """Show the actors' logs (all, an actor's instances, or one instance)."""
    from ..logs import show_logs
    topology = load_or_exit(file)
    try:
        show_logs(topology, name, lines, follow, prefixer(topology))
    except KeyboardInterrupt:
        pass
