"""`mroute down`: stop the topology (idempotent; also ends survivors named in the state file)."""

from __future__ import annotations

import os
import time

import click

from .. import client
from ..supervisor import is_locked, kill_survivors, read_state
from .common import host_option, load_or_exit, topology_option


@click.command()
@topology_option()
@click.option("--timeout", type=float, default=15.0, show_default=True, help="seconds to wait for the stop")
@host_option
def down(file: str, timeout: float, host: str | None) -> None:
    """Stop the topology. Idempotent; also ends survivors named in the state file."""
    topology = load_or_exit(file, host)
    run_dir = topology.run_dir
    try:
        pid = client.ask(topology, "down")["pid"]
    except client.NotRunning:
        pid = None
    except client.NoAnswer:  # hung: take it down by force
        pid = read_state(run_dir).get("supervisor", {}).get("pid")
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while is_locked(run_dir) and time.monotonic() < deadline:
        time.sleep(0.02)  # the lock is released by the supervisor's exit: nothing to wait on but polling
    killed = kill_survivors(run_dir)
    if is_locked(run_dir):
        raise click.ClickException(f"the supervisor of {topology.name!r} did not stop within {timeout:.0f} s")
    click.echo(f"mroute: {topology.name} is down" + (f" (killed survivors {killed})" if killed else "")
               + ("" if pid else " (was not running)"))
