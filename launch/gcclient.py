"""`mroute gc`: a Generic Connector client for people. One command and the events that come
back, or a live shell: events are printed as they arrive (the prompt redrawn under them),
the link is kept alive with `Beat`, and a GC that went quiet or restarted gets `Hello` and
`Connect` again (zeromq-rules 11).

Parameters are separated by spaces, commas or both, in the shell and in the one-shot form
(`Login pw 1001`, `Login pw,1001`); quote a value that holds a space."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from typing import Any, Callable, Iterable

import click
import orjson
import zmq

from wire import codec, gc as G
from wire.catalogue import GC, GC_EVENTS

from .topology import Topology

HELLO_EVERY = 0.2      # seconds between Hellos until the GC answers
BEATS_PER_TIMEOUT = 3  # beats within the GC's clientTimeout (its System event says it)
MISSES = 3             # beats unanswered in a row: the GC is quiet, say Hello again
LOCAL_WORDS = {"help": "list the GC's commands and their parameters", "clear": "clear the screen",
               "quit": "leave (also exit, Ctrl-D)"}


def split_params(words: Iterable[str]) -> list[str]:
    """`pw 1001`, `pw,1001` and `pw, 1001` are the same two parameters."""
    return [part.strip() for word in words for part in word.split(",") if part.strip()]


class GcLink:
    """One client of the GC: its two sockets, its destination, and what the GC last said of
    itself. Used by one thread only (its sockets are not shared)."""

    def __init__(self, topology: Topology, agent: str, ctx: zmq.Context):
        self.agent = agent
        self.destination = f"mroute.gc.{os.getpid()}.{threading.get_ident() % 10_000}"
        self.push = topology.data_socket(ctx, zmq.PUSH, GC)
        self.sub = topology.data_socket(ctx, zmq.SUB, GC_EVENTS)
        for sock in (self.push, self.sub):
            sock.linger = 0
        self.sub.setsockopt(zmq.SUBSCRIBE, codec.topic(self.destination))
        self.sub.setsockopt(zmq.SUBSCRIBE, codec.topic(codec.UNROUTED_ERRORS))
        entry = next((a for a in topology.agents if a["id"] == agent), None)
        self.password = entry["password"] if entry else ""
        self.system: dict[str, Any] | None = None   # the GC's last System answer

    def close(self) -> None:
        self.push.close()
        self.sub.close()

    def say(self, word: str) -> None:
        """Hello or Beat: both ask the GC for a System answer on our topic."""
        self.push.send_multipart(G.frames(word, self.destination))

    def connect(self) -> None:
        self.push.send_multipart(G.frames("Connect", self.agent, self.destination, self.password))

    def send(self, command: str, params: list[str]) -> None:
        self.push.send_multipart(G.frames(command, self.agent, *params))

    def receive(self, wait: float) -> list[dict[str, Any]]:
        """What is waiting, or else the first events to arrive within `wait` seconds."""
        out: list[dict[str, Any]] = []
        if self.sub.poll(max(0.0, wait) * 1000):
            while self.sub.poll(0):
                _topic, _type, body = self.sub.recv_multipart()
                out.append(orjson.loads(body))
        return out

    def handshake(self, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Hello until the GC answers on our topic (our subscription is live), then Connect.
        Returns what arrived besides the System answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.say("Hello")
            events = self.receive(HELLO_EVERY)
            system = next((e for e in events if e.get("type") == "System"), None)
            if system is not None:
                self.system = system
                self.connect()
                return [e for e in events if e is not system]
        raise click.ClickException("the GC did not answer Hello within 3 s: is the gc actor running?")


def line_of(event: dict[str, Any]) -> str:
    return orjson.dumps(event).decode()


def one_command(topology: Topology, agent: str, command: str, params: Iterable[str], wait: float) -> None:
    ctx = zmq.Context()
    link = GcLink(topology, agent, ctx)
    try:
        link.handshake()
        link.receive(0.05)  # what Connect itself produces, if anything
        link.send(command, split_params(params))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            for event in link.receive(left):
                click.echo(line_of(event))
    finally:
        link.close()
        ctx.term()


class LiveLink(threading.Thread):
    """The shell's link to the GC, on its own thread: prints events as they arrive, beats,
    and says Hello (then Connect) again when the GC went quiet or restarted. The prompt's
    thread hands it commands over an inproc pipe."""

    PIPE = "inproc://gc-shell"

    def __init__(self, topology: Topology, agent: str, ctx: zmq.Context, show: Callable[[str], None]):
        super().__init__(name="gc-link", daemon=True)
        self.topology, self.agent, self.ctx, self.show = topology, agent, ctx, show
        self.commands = ctx.socket(zmq.PAIR)   # the prompt's end
        self.commands.linger = 0
        self.commands.bind(self.PIPE)
        self.ready = threading.Event()
        self.failure: str | None = None

    # the prompt's side ------------------------------------------------------------------
    def send(self, command: str, params: list[str]) -> None:
        self.commands.send_multipart([command.encode(), orjson.dumps(params)])

    def stop(self, drain: float) -> None:
        """Leave once `drain` seconds have passed with nothing sent (answers still arrive)."""
        try:
            self.commands.send_multipart([b"", orjson.dumps(drain)], zmq.NOBLOCK)
        except zmq.Again:   # the link already ended
            pass
        self.join(drain + 2)
        self.commands.close()

    # the link's side ----------------------------------------------------------------------
    def run(self) -> None:
        pipe = self.ctx.socket(zmq.PAIR)
        pipe.linger = 0
        pipe.connect(self.PIPE)
        link = GcLink(self.topology, self.agent, self.ctx)
        try:
            try:
                for event in link.handshake():
                    self.show(line_of(event))
            except click.ClickException as exc:
                self.failure = exc.message
                return
            finally:
                self.ready.set()
            self.serve(link, pipe)
        finally:
            link.close()
            pipe.close()

    def serve(self, link: GcLink, pipe: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(link.sub, zmq.POLLIN)
        poller.register(pipe, zmq.POLLIN)
        beat_every = self.beat_interval(link)
        next_beat = time.monotonic() + beat_every
        unanswered, leave_at = 0, None
        while leave_at is None or time.monotonic() < leave_at:
            now = time.monotonic()
            if now >= next_beat:
                if unanswered == MISSES:
                    self.show(f"-- the GC has not answered {MISSES} beats: saying Hello again")
                link.say("Beat" if unanswered < MISSES else "Hello")
                unanswered += 1
                next_beat = now + (beat_every if unanswered <= MISSES else HELLO_EVERY * 5)
            until = min(next_beat, leave_at or next_beat)
            ready = dict(poller.poll(max(0.0, until - time.monotonic()) * 1000))
            if pipe in ready:
                command, body = pipe.recv_multipart()
                if command:
                    link.send(command.decode(), orjson.loads(body))
                else:
                    leave_at = time.monotonic() + orjson.loads(body)
            if link.sub in ready:
                for event in link.receive(0):
                    if event.get("type") == "System":
                        quiet = unanswered > MISSES
                        unanswered = 0
                        self.on_system(link, event, quiet)
                        beat_every = self.beat_interval(link)
                    else:
                        self.show(line_of(event))

    @staticmethod
    def beat_interval(link: GcLink) -> float:
        timeout = float((link.system or {}).get("clientTimeout") or 10.0)
        return timeout / BEATS_PER_TIMEOUT

    def on_system(self, link: GcLink, event: dict[str, Any], quiet: bool) -> None:
        """A Beat's answer: print only what is news (a restart, a status change, a return)."""
        before, link.system = link.system or {}, event
        if event.get("epoch") != before.get("epoch"):
            link.connect()
            self.show(f"-- the GC restarted (epoch {event.get('epoch')}): connected again; "
                      f"{self.agent} must log in again")
        elif quiet:
            link.connect()   # it may have forgotten us while it was silent
            self.show("-- the GC answers again: connected again")
        if event.get("status") != before.get("status"):
            self.show(line_of(event))


class Screen:
    """Prints from the link's thread without trampling what is being typed: clears the
    prompt's line, prints, and redraws the prompt with the typed text."""

    def __init__(self, prompt: str, tty: bool):
        self.prompt, self.tty = prompt, tty
        self.lock = threading.Lock()
        self.typing = False

    def show(self, text: str) -> None:
        with self.lock:
            if self.tty and self.typing:
                import readline
                sys.stdout.write(f"\r\x1b[K{text}\n{self.prompt}{readline.get_line_buffer()}")
            else:
                sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def read(self) -> str:
        with self.lock:
            self.typing = True
        try:
            return input(self.prompt)
        finally:
            with self.lock:
                self.typing = False


def help_text() -> str:
    lines = ["local words: " + "; ".join(f"{w}: {what}" for w, what in LOCAL_WORDS.items()), "GC commands:"]
    for spec in sorted(G.COMMANDS.values(), key=lambda s: s.name.lower()):
        if spec.category != "system":
            wanted = [f"<{p}>" for p in spec.params] + [f"[<{p}>]" for p in spec.optional]
            lines.append(f"  {spec.name} {' '.join(wanted)}".rstrip())
    return "\n".join(lines)


def set_up_readline(names: list[str]) -> str | None:
    """Tab completion of command names and a history file; None when there is no terminal."""
    if not sys.stdin.isatty():
        return None
    import readline

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
    return history


def shell(topology: Topology, agent: str, drain: float) -> None:
    names = sorted([spec.name for spec in G.COMMANDS.values() if spec.category != "system"] + list(LOCAL_WORDS))
    history = set_up_readline(names)
    screen = Screen(f"{agent}> ", tty=history is not None)
    ctx = zmq.Context()
    live = LiveLink(topology, agent, ctx, screen.show)
    live.start()
    try:
        live.ready.wait(5)
        if live.failure:
            raise click.ClickException(live.failure)
        screen.show(f"connected as {agent}: events print as they arrive; `help` lists commands, Tab completes")
        last_sent = 0.0
        while True:
            try:
                line = screen.read().strip()
            except EOFError:
                break
            try:
                words = shlex.split(line)
            except ValueError as exc:   # an unbalanced quote
                screen.show(f"-- {exc}: nothing sent")
                continue
            if not words:
                continue
            elif words[0].lower() in ("quit", "exit"):
                break
            elif words[0].lower() == "help":
                screen.show(help_text())
            elif words[0].lower() == "clear":
                click.clear()
            else:
                live.send(words[0], split_params(words[1:]))
                last_sent = time.monotonic()
        # answers to the last commands are still on their way (a script piped into the shell)
        live.stop(max(0.0, last_sent + drain - time.monotonic()))
    finally:
        if history:
            import readline
            readline.write_history_file(history)
        ctx.destroy(linger=0)
