"""What our small HTTP ports refuse (the health port of `mroute actor`, the metrics ports):
the requests a page of another site could make a browser on this machine send. The web
console (launch/web/server.py) guards its port the same way, on aiohttp.

- A `Host` that is not a name the port is served as: the address the client reached (so
  a port bound to 0.0.0.0 answers each of this machine's addresses), `localhost` and its
  kin when that address is loopback, the bound host, or a name the operator configured
  (`name`, or `name:port` for a port mapped elsewhere). A page whose own name was rebound
  by DNS to us carries its own name here: refused, it cannot read /stats or /metrics.
- A change (`/load`, `/drain`) that is not `POST` with `Content-Type: application/json`:
  a link, an <img> or a form can send a GET or a text/plain POST without asking, whereas
  a page that sends JSON to another origin must first ask the browser's preflight, which
  we never grant.
- A change whose `Origin` is not this port's, or that the browser says is
  `Sec-Fetch-Site: cross-site`.

A refusal is a status, and a short reason naming the header; `RefusalLog` tells them at a
bounded rate (anyone who reaches the port can send them as fast as it likes).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SAID_EVERY = 10.0   # seconds between two log lines about refused requests


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


def split_host(value: str) -> tuple[str, int | None]:
    """`name:port`, `[v6]:port`, `name` -> (name, port or None), the name lowercased and
    without brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


class Guard:
    def __init__(self, bound_host: str, port: int, names: Iterable[str] = ()):
        """`port` is the one bound (port 0 resolved); `names` those configured."""
        self.port = port
        self.bound = split_host(bound_host)[0] if bound_host not in ("", "0.0.0.0", "::") else None
        self.names = {split_host(name) for name in names}

    def served_as(self, local_address: str) -> set[tuple[str, int | None]]:
        """The (name, port) pairs a request reaching `local_address` may name in `Host`."""
        names = {split_host(local_address)[0].split("%")[0]}
        if self.bound:
            names.add(self.bound)
        if is_loopback(local_address):
            names.update(LOOPBACK_NAMES)
        ours = {(name, self.port) for name in names}
        ours |= {(name, port if port is not None else self.port) for name, port in self.names}
        if self.port == 80:   # a browser leaves the default port out
            ours |= {(name, None) for name, _ in ours}
        return ours

    def host(self, headers: Mapping[str, str], local_address: str) -> Refusal | None:
        """None if the `Host` header names this port. A request without one is let through:
        every browser sends it (an HTTP/1.0 probe may not), and only a browser can be made
        to come here by another site."""
        given = headers.get("Host")
        if given is None or split_host(given) in self.served_as(local_address):
            return None
        return Refusal(403, f"Host {given[:100]!r} is not a name this port is served as (a page of another site "
                            "whose name was rebound to this address?): use the address it is bound to or a "
                            "configured name")

    def change(self, method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
        """None if a request to change something (`path`) may go on to the token check."""
        if method != "POST":
            return Refusal(405, f"{path} changes state: POST it with a JSON body ({{}} will do), not a "
                                f"{method}, which any link of another site could send")
        fetch_site = headers.get("Sec-Fetch-Site", "").lower()
        if fetch_site == "cross-site":
            return Refusal(403, f"Sec-Fetch-Site: cross-site: {path} is not for another site's pages")
        origin = headers.get("Origin")
        if origin is not None and split_host(origin.split("://", 1)[-1]) != split_host(headers.get("Host", "")):
            return Refusal(403, f"Origin {origin[:100]!r} is not this port's: {path} is not for another site's "
                                "pages")
        kind = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return Refusal(415, f"{path} takes Content-Type: application/json, not {kind or 'none'!r}")
        return None


class RefusalLog:
    """Refused requests told at a bounded rate: the first at once, then at most one line
    every `every` seconds, with how many were refused since the line before."""

    def __init__(self, log: logging.Logger, every: float = SAID_EVERY, clock: Callable[[], float] = time.monotonic):
        self.log = log
        self.every = every
        self.clock = clock
        self.lock = threading.Lock()   # a port may answer on more than one thread
        self.last = -float("inf")
        self.unsaid = 0

    def refused(self, what: str, refusal: Refusal) -> None:
        with self.lock:
            now = self.clock()
            if now - self.last < self.every:
                self.unsaid += 1
                return
            more = f" (and {self.unsaid} more refused since the last line)" if self.unsaid else ""
            self.last, self.unsaid = now, 0
        self.log.warning("refused %s: %d %s%s", what, refusal.status, refusal.reason, more)

