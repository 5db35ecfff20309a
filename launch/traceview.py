"""`mroute trace`'s table: a task's hops laid out for the console's width.

Every column when the table fits (the time, the time since the hop before, who took the
message, from which queue, the message, the State and Code a TaskState carried, the agent).
When it does not, no cell is cut: the State and Code join the message, which wraps between
words, and the outer edges go; at 80 columns the queue goes too (the actor and the message
say it: Comm takes a desk's messages from General and the MRE's from CommunicationServer),
and a line says so and at what width it shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

FULL_COLUMNS = ("time", "+ms", "taken by", "from queue", "message", "state", "code", "agent")


class HopTable:
    def __init__(self, task_id: str, hops: list[dict[str, Any]]):
        self.task_id, self.hops = task_id, hops

    @property
    def title(self) -> str:
        took = (self.hops[-1]["at"] - self.hops[0]["at"]) * 1000 if self.hops else 0.0
        return f"task {self.task_id}: {len(self.hops)} hops in {took:.2f} ms"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for table in (self.full(), self.narrow(queue=True)):
            if width(console, table) <= options.max_width:
                yield table
                return
        yield self.narrow(queue=False)
        needed = width(console, self.narrow(queue=True))
        yield Text(f"(the queue each message was taken from: at {needed} columns or more, or --json)", style="dim")

    def full(self) -> Table:
        table = Table(title=self.title)
        for column in FULL_COLUMNS:
            table.add_column(column, justify="right" if column == "+ms" else "left", no_wrap=True)
        for hop in self.hops:
            table.add_row(clock(hop["at"]), f"{hop['after_ms']:.3f}", hop["actor"], hop["queue"], hop["type"],
                          str(hop.get("state") or ""), str(hop.get("code") or ""), hop.get("agent") or "")
        return table

    def narrow(self, queue: bool) -> Table:
        """Inner lines only (the outer edges and padding cost 4 columns); the message, with
        the State and Code, is the one column that may take two lines."""
        table = Table(title=self.title, box=box.MINIMAL_HEAVY_HEAD, show_edge=False, pad_edge=False)
        for column in ("time", "+ms", "taken by", *(["from queue"] if queue else [])):
            table.add_column(column, justify="right" if column == "+ms" else "left", no_wrap=True)
        # as wide as its longest word: it wraps between words, never inside one
        longest = max((len(word) for hop in self.hops for word in message(hop).split()), default=7)
        table.add_column("message", min_width=longest, overflow="fold")
        table.add_column("agent", no_wrap=True)
        for hop in self.hops:
            table.add_row(clock(hop["at"]), f"{hop['after_ms']:.3f}", hop["actor"],
                          *([hop["queue"]] if queue else []), message(hop), hop.get("agent") or "")
        return table


def width(console: Console, table: Table) -> int:
    """The table's width with room to spare (a measure within the console's is capped at it)."""
    return Measurement.get(console, console.options.update_width(10_000), table).maximum


def clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]


def message(hop: dict[str, Any]) -> str:
    return " ".join(str(part) for part in (hop["type"], hop.get("state"), hop.get("code")) if part)
