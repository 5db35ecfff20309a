"""The health port of `mroute actor`: what an orchestrator's probes and Prometheus read.

- `/healthz` 200 once the actor answers its pings (its start() is done: Comm's journal
  loaded) and while it does; 503 before, once it has stopped answering, or has exited:
  the startup and liveness probes.
- `/readyz` 200 once the actor said READY (its sockets are up and its state loaded: Comm's
  journal, the MRE's snapshot from Comm, a Chat Server's confirmed subscription) and while
  it answers; 503 before, while it drains, and after: the readiness probe.
- `/metrics` its own series, in Prometheus's text format (launch/metrics.py).
- `/drain` (the preStop hook): the actor stops taking new work and finishes what it has;
  the answer comes when it has, or at the drain timeout.
- `/stats` the actor's stats as JSON; `POST /load` a Chat Server's load settings: what
  `mroute load --attach-pods` reads and says (the supervisor's channel, over HTTP), to
  this host or with the control token.

Each answer's body says the state in words. The HTTP server has a thread of its own and
only reads what the runner's loop replaced whole (`Health`)."""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable

import orjson

from ..metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from .runner import PodRunner



@dataclass(frozen=True)
class Health:
    state: str = "STARTING"        # the supervisor's names: STARTING, RUNNING, DEGRADED, ...
    reason: str = ""
    alive: bool = True             # not known to be hung or gone
    answered: bool = False         # it has answered since it started: its start() is done
    ready: bool = False
    draining: bool = False
    stale_after: float = 5.0       # seconds without a word from the runner's loop: the runner is hung
    at: float = field(default_factory=time.monotonic)   # when the runner's loop wrote this

    def live(self, now: float) -> tuple[bool, str]:
        if now - self.at > self.stale_after:
            return False, f"the runner has not looked at the actor for {now - self.at:.0f} s"
        if not self.answered and self.alive:   # what the startup probe waits for
            return False, f"starting: no answer yet ({self.describe()})"
        return self.alive, self.describe()

    def readiness(self, now: float) -> tuple[bool, str]:
        alive, why = self.live(now)
        if not alive:
            return False, why
        if self.draining:
            return False, f"draining ({self.describe()})"
        return self.ready, self.describe() if self.ready else f"not READY yet ({self.describe()})"

    def describe(self) -> str:
        return f"{self.state}: {self.reason}" if self.reason else self.state


MAX_BODY = 65536   # bytes of a POST body: load settings are a few dozen


def serve(host: str, port: int, runner: "PodRunner", metrics: Callable[[], bytes], drain_timeout: float,
          token: str | None = None) -> ThreadingHTTPServer:
    """Start the health server on its own thread; `port` 0 takes a free one. What changes
    the actor or reads its insides (/drain, /stats, POST /load) is served to this host
    (loopback: the preStop hook) and, for /stats and /load, to a client that shows
    `token` (`Authorization: Bearer ...`); probes and /metrics to anyone who reaches it."""

    class Handler(BaseHTTPRequestHandler):
        timeout = 10   # seconds a client may take to send its request

        def local(self) -> bool:
            address = ipaddress.ip_address(self.client_address[0])
            return address.is_loopback or getattr(address, "ipv4_mapped", None) is not None and \
                address.ipv4_mapped.is_loopback

        def allowed(self) -> bool:
            if self.local():
                return True
            given = self.headers.get("Authorization", "")
            if token is not None and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return True
            self.answer(False, "this path is served to this host, or with the control token", status=403)
            return False

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?")[0]
            if path == "/drain" and not self.local():
                self.answer(False, "/drain is served to this host only (the preStop hook)", status=403)
                return
            if path == "/stats" and not self.allowed():
                return
            if path == "/healthz":
                self.answer(*runner.current_health().live(time.monotonic()))
            elif path == "/readyz":
                self.answer(*runner.current_health().readiness(time.monotonic()))
            elif path == "/metrics":
                self.answer(True, metrics(), CONTENT_TYPE)
            elif path == "/drain":
                self.answer(True, runner.drain(drain_timeout))
            elif path == "/stats":
                self.answer_json(runner.ask("stats"))
            else:
                self.answer(False, f"no such path {path!r}: /healthz, /readyz, /metrics, /drain, /stats; "
                                   "POST /load", status=404)

        def do_POST(self) -> None:  # noqa: N802
            """`/load`: a Chat Server's load settings (rate, handle, think, patience, run), as
            `mroute load --attach-pods` gives them; the answer is its settings."""
            if self.path.split("?")[0] != "/load" or runner.process.role != "chat":
                self.answer(False, "POST is only for /load, on a Chat Server", status=404)
                return
            if not self.allowed():
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 <= length <= MAX_BODY:
                    raise ValueError(f"Content-Length must be 0 to {MAX_BODY}, not {length}")
                body = orjson.loads(self.rfile.read(length))
                if not isinstance(body, dict):
                    raise ValueError("must be a JSON object")
            except (ValueError, orjson.JSONDecodeError) as exc:
                self.answer_json({"error": {"reason": f"the body: {exc}", "code": "BAD_MESSAGE"}})
                return
            self.answer_json(runner.ask("load", body))

        def answer_json(self, answer: dict[str, Any]) -> None:
            """An actor's answer, its name beside it; a refusal is 400 with the reason."""
            if "error" in answer:
                status = 400 if answer["error"].get("code") else 503
                self.answer(False, orjson.dumps(answer), "application/json", status=status)
            else:
                self.answer(True, orjson.dumps({"name": runner.name, "role": runner.process.role, "answer": answer}),
                            "application/json")

        def answer(self, ok: bool, body: str | bytes, kind: str = "text/plain; charset=utf-8",
                   status: int | None = None) -> None:
            data = body if isinstance(body, bytes) else (body + "\n").encode()
            self.send_response(status or (200 if ok else 503))
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the actor's own lines

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
