"""What the verbs share, written once: the topology file (a verb's own -f, else the
group's -f, MROUTE_FILE or ./topology.yaml), loading it, this host's share, asking the
supervisor, and honcho-style output prefixes.

A topology that is not running raises `client.NotRunning` here, at once; the group turns
it into one message and exit status 3 for every verb (`status` prints its own)."""

from __future__ import annotations

import os
from typing import Any, Callable

import click

from .. import client
from ..supervisor import is_locked
from ..topology import Topology, TopologyError, load

DEFAULT_FILE = "topology.yaml"
FILE_ENV = "MROUTE_FILE"
COLOURS = ("cyan", "yellow", "green", "magenta", "blue", "red", "bright_cyan", "bright_green")


def group_file(ctx: click.Context | None = None) -> str:
    """The group's -f (itself from MROUTE_FILE, or ./topology.yaml)."""
    ctx = ctx or click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return (root.params.get("file") if root is not None else None) or os.environ.get(FILE_ENV) or DEFAULT_FILE


def resolve_file(ctx: click.Context, _param: Any, value: str | None) -> str:
    """A verb's own -f wins over the group's."""
    return value if value is not None else group_file(ctx)


def topology_option(*flags: str) -> Callable[[Any], Any]:
    """-f/--file FILE on a verb (`logs` passes just --file: its -f means follow)."""
    return click.option(*(flags or ("-f", "--file")), "file", default=None, callback=resolve_file,
                        type=click.Path(dir_okay=False), metavar="FILE",
                        help=f"the topology file  [default: mroute -f FILE, ${FILE_ENV} or ./{DEFAULT_FILE}]")


def host_option(fn: Any) -> Any:
    return click.option("--host", default=None, metavar="NAME",
                        help="on a topology placed on hosts: this host's share [env MROUTE_HOST]")(fn)


def load_or_exit(file: str, host: str | None = None) -> Topology:
    """The topology in FILE; on a topology spread over hosts, this host's share (--host, or
    MROUTE_HOST in the environment)."""
    try:
        return load(file).for_host(host or os.environ.get("MROUTE_HOST") or None)
    except TopologyError as exc:
        raise click.ClickException(str(exc))


def running_topology(file: str, host: str | None = None) -> Topology:
    """The topology in FILE, which must be running: raises client.NotRunning at once if not
    (for verbs that talk to the actors directly rather than through the supervisor)."""
    topology = load_or_exit(file, host)
    if not is_locked(topology.run_dir):
        raise client.NotRunning(f"topology {topology.name!r} is not running (run directory {topology.run_dir})")
    return topology


def control(file: str, verb: str, body: dict[str, Any], timeout: float | None = None,
            host: str | None = None) -> dict[str, Any]:
    """Ask the supervisor; by default wait as long as it may take to stop and start actors."""
    topology = load_or_exit(file, host)
    if timeout is None:
        timeout = topology.supervisor["stop_grace"] + topology.supervisor["ready_timeout"] + 5
    return client.ask(topology, verb, body, timeout=timeout)


def human_seconds(seconds: float | None) -> str:
    """A duration as the web console shows one (app.js `seconds`): "42 s", "5 min", "1.5 h",
    rounded half up as JavaScript's toFixed does; "-" for none (an actor not up)."""
    import math
    if not seconds:
        return "-"
    if seconds < 60:
        return f"{math.floor(seconds + 0.5)} s"
    if seconds < 3600:
        return f"{math.floor(seconds / 60 + 0.5)} min"
    return f"{math.floor(seconds / 360 + 0.5) / 10:.1f} h"


def print_actors(answer: dict[str, Any]) -> None:
    for actor in answer.get("actors", []):
        click.echo(f"{actor['name']:<12} {actor['state']:<9} pid {actor['pid'] or '-'}")


def prefixer(topology: Topology) -> Callable[[str, str], None]:
    """honcho-style output: every child's lines prefixed with a coloured, aligned `name.N |`."""
    names = [name for name, _ in topology.instances()]
    width = max((len(n) for n in names), default=4)
    colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}

    def echo(name: str, line: str) -> None:
        prefix = click.style(f"{name:<{width}} |", fg=colours.get(name, "white"))
        click.echo(f"{prefix} {line}")
    return echo
