"""Liveness of Chat Servers (desks): the only owner of which desks are watched and which
have gone silent.

A desk that has sent one `Heartbeat` is watched: after SESSION_TIMEOUT without any message
from it its agents are UNKNOWN; back within the grace period they are as they were; past it
they are logged out and their tasks go back to their queues (AGENT_LOGOUT).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from wire import states as S
from wire.catalogue import HEARTBEAT_INTERVAL, SESSION_TIMEOUT
from wire.codec import WireError

from .agents import Agents
from .identity import own_destination

log = logging.getLogger("mroute.comm")

MAX_WATCHED = 10_000  # desks watched at once: each is a journaled name and a timer's worth of work


class Desks:
    def __init__(self, agents: Agents, log_out_desk: Callable[[str], None], *, clock: Callable[[], float],
                 logout_grace: float):
        self.agents = agents
        self.log_out_desk = log_out_desk    # logs out every agent of a desk, their tasks back to the queues
        self.clock = clock
        self.logout_grace = logout_grace
        self.load(set())

    def load(self, watched: set[str]) -> None:
        """What the journal holds (at the start, and again after a write was undone): the
        desks watched, each given a fresh timeout."""
        self.watched = watched
        now = self.clock()
        self.heard: dict[str, float] = dict.fromkeys(self.watched, now)
        self.lost: dict[str, float] = {}        # silent desk -> since when
        self.last_check = now
        self.dirty = False                      # `watched` changed since the journal last wrote

    def heartbeat(self, body: dict[str, Any]) -> None:
        """A desk's Heartbeat (its first makes it watched)."""
        self.heard_from(own_destination(body))

    def is_lost(self, destination: str) -> bool:
        return destination in self.lost if self.lost else False

    def heard_from(self, destination: str) -> None:
        if destination not in self.watched:
            if len(self.watched) >= MAX_WATCHED:
                raise WireError(S.OVERLOADED, f"Comm watches {MAX_WATCHED} Chat Servers already", field="Destination")
            self.watched.add(destination)
            self.dirty = True
        self.heard[destination] = self.clock()
        if destination in self.lost:  # back within the grace period: its agents are as they were
            log.info("%s is back: its agents are no longer UNKNOWN", destination)
            del self.lost[destination]
            self.agents.refresh_desk(destination)

    def closed(self, destination: str) -> None:
        """A desk gone for good (its supervisor scaled it away): its agents are logged out now,
        not after the grace period, and it is no longer watched."""
        self.heard.pop(destination, None)
        self.lost.pop(destination, None)
        if destination in self.watched:
            self.watched.discard(destination)
            self.dirty = True
        log.info("%s closed: logging its agents out", destination)
        self.log_out_desk(destination)

    def message_from(self, destination: object) -> None:
        """Any message from a watched desk says it is alive."""
        if self.heard and destination in self.heard:
            self.heard_from(destination)  # type: ignore[arg-type]

    def check(self) -> None:
        """Called every HEARTBEAT_INTERVAL: silent desks' agents go UNKNOWN, then out."""
        now = self.clock()
        if now - self.last_check > 2 * HEARTBEAT_INTERVAL:
            # We were the ones not listening (stalled, or just restarted): judge nobody on it.
            self.last_check = now
            self.heard = dict.fromkeys(self.heard, now)
            return
        self.last_check = now
        for destination, heard in list(self.heard.items()):
            since = self.lost.get(destination)
            if since is None and now - heard > SESSION_TIMEOUT:
                log.warning("%s silent for %.1f s: its agents are UNKNOWN", destination, now - heard)
                self.lost[destination] = now
                self.agents.refresh_desk(destination)
            elif since is not None and now - since >= self.logout_grace:
                log.warning("%s silent past the grace period: logging its agents out", destination)
                del self.lost[destination], self.heard[destination]
                self.watched.discard(destination)
                self.dirty = True
                self.log_out_desk(destination)
