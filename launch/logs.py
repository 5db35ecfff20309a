"""`mroute logs`: the actors' log files, prefixed like `up` prints them. The supervisor
rotates them (`<instance>.log` -> `.log.1` -> ...): the last lines may start in `.log.1`, and
a file followed through its rotation is read to its end there first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import click

from wire.kernel.rundir import LOGS

from .topology import Topology


def log_files(topology: Topology, name: str | None) -> dict[str, Path]:
    files = {p.stem: p for p in sorted((topology.run_dir / LOGS).glob("*.log"))}
    if name is None:
        return files
    chosen = {n: p for n, p in files.items() if n == name or n.rpartition(".")[0] == name}
    if not chosen:
        raise click.ClickException(f"no log for {name!r} in {topology.run_dir / LOGS} "
                                   f"(have: {', '.join(files) or 'none'})")
    return chosen


def show_logs(topology: Topology, name: str | None, lines: int, follow: bool,
              echo: Callable[[str, str], None]) -> None:
    files = log_files(topology, name)
    offsets = {}
    for instance, path in files.items():
        data = path.read_bytes()
        shown = data.splitlines()[-lines:] if lines > 0 else []
        if lines > 0 and len(shown) < lines and rotated(path).exists():
            shown = rotated(path).read_bytes().splitlines()[len(shown) - lines:] + shown
        for line in shown:
            echo(instance, line.decode(errors="replace"))
        offsets[instance] = len(data)
    while follow:
        time.sleep(0.2)  # following a file: there is no event to wait on but its growth
        for instance, path in log_files(topology, name).items():
            size = path.stat().st_size
            start = offsets.get(instance, 0)
            if size < start:  # rotated (what followed our offset is in .log.1), truncated or replaced
                if rotated(path).exists() and rotated(path).stat().st_size >= start:
                    with rotated(path).open("rb") as handle:
                        handle.seek(start)
                        for line in handle.read().splitlines():
                            echo(instance, line.decode(errors="replace"))
                start = 0
            if size > start:
                with path.open("rb") as handle:
                    handle.seek(start)
                    chunk = handle.read(size - start)
                complete, _, _rest = chunk.rpartition(b"\n")
                for line in complete.splitlines():
                    echo(instance, line.decode(errors="replace"))
                offsets[instance] = start + len(complete) + (1 if complete else 0)


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")
