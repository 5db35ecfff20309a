"""`mroute top`: a live view of a running topology."""

from __future__ import annotations

import time

import click
import orjson

from .common import host_option, load_or_exit, topology_option


@click.command()
@topology_option()
@host_option
@click.option("--once", is_flag=True, help="print one frame and exit (for scripts)")
@click.option("--json", "as_json", is_flag=True, help="with --once: the frame as one JSON object")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="seconds between frames (rates are measured over it)")
def top(file: str, host: str | None, once: bool, as_json: bool, interval: float) -> None:
    """A live view of a running topology: processes (state, CPU, memory, messages/s in and
    out), agents by state per MRD, waiting queues, tasks routed/s and routing latency."""
    from rich.console import Console
    from rich.live import Live

    from ..top import frame, look, render
    topology = load_or_exit(file, host)
    try:
        before = look(topology)
        if once:
            time.sleep(interval)  # the rates are measured over this interval
            view = frame(before, look(topology))
            if as_json:
                click.echo(orjson.dumps(view).decode())
            else:
                Console().print(render(view))
            return
        with Live(console=Console(), refresh_per_second=4, screen=True) as live:
            while True:
                time.sleep(interval)
                after = look(topology)
                live.update(render(frame(before, after)))
                before = after
    except KeyboardInterrupt:
        pass
