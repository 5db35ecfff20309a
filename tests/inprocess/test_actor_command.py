"""Issue 16: `mroute actor NAME`, one actor in the foreground for an orchestrator: which
instance a name stands for, from the topology alone. Its health port and exit status, with
the actor running: tests/processes/test_actor_command.py."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml

from launch.commands.actor import instance_of, refusal
from launch.topology import load

from ..cluster import free_port
from ..helpers import base_topology


def tcp_topology(tmp_path: Path, **supervisor: float) -> Path:
    spec = base_topology(name="solo", chat={"count": 1, "agents": 3, "rate": 20.0, "handle": "uniform:0.5,1"}, agents=2)
    spec["transport"] = "tcp"
    spec["endpoints"] = {name: f"tcp://127.0.0.1:{free_port()}" for name in
                         ("General", "RoutingEngine", "CommunicationServer", "ChatEvents", "GC", "GCEvents")}
    spec["supervisor"] = supervisor
    file = tmp_path / "topology.yaml"
    file.write_text(yaml.safe_dump(spec))
    return file


def test_names_stand_for_instances(tmp_path):
    topology = load(tcp_topology(tmp_path))
    assert instance_of(topology, "comm") == ("comm", "comm", 1)
    assert instance_of(topology, "chat.1") == ("chat", "chat", 1)
    assert instance_of(topology, "solo-chat-1") == ("chat", "chat", 2)   # a StatefulSet pod's name
    assert instance_of(topology, "chat-0") == ("chat", "chat", 1)
    for bad, why in (("comm.2", "one instance"), ("nobody", "no actor instance"), ("chat.0", "no actor instance")):
        with pytest.raises(click.UsageError, match=why):
            instance_of(topology, bad)
    assert refusal(topology, "chat", 1) == ""
    assert "would desk 1 of its 3 agents" in refusal(topology, "chat", 2)   # 4 agents in the directory
