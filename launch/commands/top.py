"""`mroute top`: a live view of a running topology; `q` quits."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from typing import Iterator

import click
import orjson

from .common import host_option, load_or_exit, topology_option

QUIT_KEYS = (b"q", b"Q")


@contextlib.contextmanager
def keys() -> Iterator[int | None]:
    """The terminal's keys one at a time, unechoed (cbreak), restored on the way out; None
    when stdin is no terminal (then only Ctrl-C quits)."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def quit_pressed(fd: int | None, wait: float) -> bool:
    """Wait up to `wait` seconds for a key; whether it was one that quits."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if fd is None:
            time.sleep(left)
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready and os.read(fd, 16)[:1] in QUIT_KEYS:
            return True
    return False


@click.command()
@topology_option()
@host_option
@click.option("--once", is_flag=True, help="print one frame and exit (for scripts)")
@click.option("--json", "as_json", is_flag=True, help="with --once: the frame as one JSON object")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="seconds between frames (rates are measured over it)")
def top(file: str, host: str | None, once: bool, as_json: bool, interval: float) -> None:
    """A live view of a running topology: processes (state, CPU, memory, messages/s in and
    out), agents by state per MRD, every queue, tasks routed/s and routing latency. q quits."""
    from rich.console import Console
    from rich.live import Live

    from ..top import frame, look, render
    topology = load_or_exit(file, host)
    try:
        before = look(topology)
        if once:
            time.sleep(interval)  # the rates are measured over this interval
            view = frame(before, look(topology), topology)
            if as_json:
                click.echo(orjson.dumps(view).decode())
            else:
                Console().print(render(view))
            return
        with keys() as fd, Live(console=Console(), refresh_per_second=4, screen=True) as live:
            live.update(render(frame(before, before, topology), interval))  # states now, rates next
            while not quit_pressed(fd, interval):
                after = look(topology)
                live.update(render(frame(before, after, topology), interval))
                before = after
    except KeyboardInterrupt:
        pass
