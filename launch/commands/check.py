"""`mroute check FILE`: validate a topology file without starting anything."""

from __future__ import annotations

import click

from .common import load_or_exit, resolve_file


@click.command()
@click.argument("file", type=click.Path(dir_okay=False), required=False, callback=resolve_file)
def check(file: str) -> None:
    """Validate a topology file (FILE, else mroute -f FILE, $MROUTE_FILE or ./topology.yaml)
    without starting anything."""
    topology = load_or_exit(file)
    instances = topology.instances()
    click.echo(f"{file}: ok: topology {topology.name!r}, {len(instances)} processes "
               f"({', '.join(n for n, _ in instances)}), {len(topology.agents)} agents, "
               f"MRDs {', '.join(topology.mrds)}; run directory {topology.run_dir}")
