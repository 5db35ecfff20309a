"""`mroute gc`: a GC client for people. One command and the events that come back, or an
interactive shell with history and completion of command names."""

from __future__ import annotations

import os
import time
from typing import Any

import click
import orjson
import zmq

from wire import codec, gc as G
from wire.catalogue import GC, GC_EVENTS

from .topology import Topology


class GcClient:
    def __init__(self, topology: Topology, agent: str):
        self.agent = agent
        self.destination = f"mroute.gc.{os.getpid()}"
        self.ctx = zmq.Context()
        self.push = topology.data_socket(self.ctx, zmq.PUSH, GC)
        self.sub = topology.data_socket(self.ctx, zmq.SUB, GC_EVENTS)
        self.sub.setsockopt(zmq.SUBSCRIBE, codec.topic(self.destination))
        self.sub.setsockopt(zmq.SUBSCRIBE, codec.topic(codec.UNROUTED_ERRORS))
        entry = next((a for a in topology.agents if a["id"] == agent), None)
        self.password = entry["password"] if entry else ""

    def close(self) -> None:
        self.push.close()
        self.sub.close()
        self.ctx.term()

    def handshake(self, timeout: float = 3.0) -> None:
        """Hello until the GC's System answer arrives on our topic: our subscription is live."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.push.send_multipart(G.frames("Hello", self.destination))
            if self.sub.poll(50):
                self.sub.recv_multipart()
                self.push.send_multipart(G.frames("Connect", self.agent, self.destination, self.password))
                return
        raise click.ClickException("the GC did not answer Hello: is a gc actor running?")

    def send(self, command: str, params: list[str]) -> None:
        self.push.send_multipart(G.frames(command, self.agent, *params))

    def events(self, wait: float) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0 and self.sub.poll(left * 1000):
            _topic, _type, body = self.sub.recv_multipart()
            out.append(orjson.loads(body))
        return out


def print_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        click.echo(orjson.dumps(event).decode())


def one_command(topology: Topology, agent: str, command: str, params: tuple[str, ...], wait: float) -> None:
    client = GcClient(topology, agent)
    try:
        client.handshake()
        client.events(0.05)  # what Connect itself produces, if anything
        client.send(command, list(params))
        print_events(client.events(wait))
    finally:
        client.close()


def shell(topology: Topology, agent: str) -> None:
    import readline
    names = sorted(spec.name for spec in G.COMMANDS.values())

    def complete(text: str, state: int) -> str | None:
        matches = [n for n in names if n.lower().startswith(text.lower())]
        return matches[state] if state < len(matches) else None
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    history = os.path.expanduser("~/.mroute_gc_history")
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    client = GcClient(topology, agent)
    try:
        client.handshake()
        click.echo(f"connected as {agent}; commands: {', '.join(names[:6])}, ... (Tab completes; Ctrl-D quits)")
        while True:
            print_events(client.events(0.05))
            try:
                line = input(f"{agent}> ").strip()
            except EOFError:
                break
            if not line:
                continue
            command, _, rest = line.partition(" ")
            client.send(command, [p.strip() for p in rest.split(",")] if rest.strip() else [])
            print_events(client.events(0.5))
    finally:
        readline.write_history_file(history)
        client.close()
