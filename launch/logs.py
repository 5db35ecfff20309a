"""`mroute logs`: the actors' log files, prefixed like `up` prints them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import click

from .topology import Topology


def log_files(topology: Topology, name: str | None) -> dict[str, Path]:
    files = {p.stem: p for p in sorted((topology.run_dir / "logs").glob("*.log"))}
    if name is None:
        return files
    chosen = {n: p for n, p in files.items() if n == name or n.rpartition(".")[0] == name}
    if not chosen:
        raise click.ClickException(f"no log for {name!r} in {topology.run_dir / 'logs'} "
                                   f"(have: {', '.join(files) or 'none'})")
    return chosen


def show_logs(topology: Topology, name: str | None, lines: int, follow: bool,
              echo: Callable[[str, str], None]) -> None:
    files = log_files(topology, name)
    offsets = {}
    for instance, path in files.items():
        data = path.read_bytes()
        for line in data.splitlines()[-lines:] if lines > 0 else []:
            echo(instance, line.decode(errors="replace"))
        offsets[instance] = len(data)
    while follow:
        time.sleep(0.2)  # following a file: there is no event to wait on but its growth
        for instance, path in log_files(topology, name).items():
            size = path.stat().st_size
            start = offsets.get(instance, 0)
            if size < start:  # truncated or replaced
                start = 0
            if size > start:
                with path.open("rb") as handle:
                    handle.seek(start)
                    chunk = handle.read(size - start)
                complete, _, _rest = chunk.rpartition(b"\n")
                for line in complete.splitlines():
                    echo(instance, line.decode(errors="replace"))
                offsets[instance] = start + len(complete) + (1 if complete else 0)
