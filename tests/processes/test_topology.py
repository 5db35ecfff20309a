"""A topology's settings as the actors it starts take them (the rest of topology loading:
tests/inprocess/test_topology.py)."""

from __future__ import annotations

from pathlib import Path

from ..helpers import base_topology


def io_threads(pid: int) -> int:
    """ZeroMQ names its I/O threads ZMQbg/IO/<n>."""
    return sum((task / "comm").read_text().startswith("ZMQbg/IO") for task in Path(f"/proc/{pid}/task").iterdir())


def test_each_actor_gets_the_io_threads_its_topology_gives(start_topology):
    spec = base_topology("threads")
    spec["actors"]["mre"]["io_threads"] = 3
    running = start_topology(spec)
    pids = {a["name"]: a["pid"] for a in running.status()["actors"]}
    assert {name: io_threads(pid) for name, pid in pids.items()} == {"comm.1": 1, "mre.1": 3}
