"""What the Prometheus scrapes read (launch/metrics.py): the actors' status and their
latest stats, built on the arbiter's loop and replaced whole, so that the HTTP server's
thread only ever reads it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .arbiter import Arbiter

METRICS_IDLE_S = 60.0     # stats are polled for metrics while a scrape came this recently


class MetricsView:
    def __init__(self, arbiter: "Arbiter"):
        self.arbiter = arbiter
        self.view: tuple[list[dict[str, Any]], dict[str, Any]] = ([], {})
        self.last_scrape = 0.0

    def scraped(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """On the HTTP thread: the latest view, and a note that somebody is scraping."""
        self.last_scrape = time.monotonic()
        return self.view

    def refresh(self) -> None:
        """Ask the actors for stats only while someone scrapes (Comm's stats walk its
        agents and tasks: tens of ms at 100,000 agents)."""
        if time.monotonic() - self.last_scrape < METRICS_IDLE_S:
            self.arbiter.request_stats(self.keep)

    def keep(self, results: dict[str, Any]) -> None:
        """An actor that did not answer keeps its last answer: counters never go back."""
        stats = dict(self.view[1])
        stats.update({name: data for name, data in results.items() if "error" not in data})
        children = list(self.arbiter.children.values())
        self.view = ([c.describe() for c in children], {c.name: stats[c.name] for c in children if c.name in stats})
