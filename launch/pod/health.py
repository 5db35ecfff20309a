"""The health port of `mroute actor`: what an orchestrator's probes and Prometheus read.

- `/healthz` 200 while the actor answers its pings (or is still starting), 503 once it
  has stopped answering or has exited: the liveness and startup probes.
- `/readyz` 200 once the actor said READY (its sockets are up and its state loaded: Comm's
  journal, the MRE's snapshot from Comm, a Chat Server's confirmed subscription) and while
  it answers; 503 before, while it drains, and after: the readiness probe.
- `/metrics` its own series, in Prometheus's text format (launch/metrics.py).
- `/drain` (the preStop hook): the actor stops taking new work and finishes what it has;
  the answer comes when it has, or at the drain timeout.
- `/stats` the actor's stats as JSON; `POST /load` a Chat Server's load settings: what
  `mroute load --attach-pods` reads and says (the supervisor's channel, over HTTP).

Each answer's body says the state in words. The HTTP server has a thread of its own and
only reads what the runner's loop replaced whole (`Health`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable

import orjson

if TYPE_CHECKING:
    from .runner import PodRunner

STALE_AFTER = 5.0   # seconds without a word from the runner's loop: the runner itself is hung


@dataclass(frozen=True)
class Health:
    state: str = "STARTING"        # the supervisor's names: STARTING, RUNNING, DEGRADED, ...
    reason: str = ""
    alive: bool = True             # answering (or still within its start)
    ready: bool = False
    draining: bool = False
    at: float = field(default_factory=time.monotonic)   # when the runner's loop wrote this

    def live(self, now: float) -> tuple[bool, str]:
        if now - self.at > STALE_AFTER:
            return False, f"the runner has not looked at the actor for {now - self.at:.0f} s"
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


def serve(host: str, port: int, runner: "PodRunner", metrics: Callable[[], bytes],
          drain_timeout: float) -> ThreadingHTTPServer:
    """Start the health server on its own thread; `port` 0 takes a free one."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?")[0]
            if path == "/healthz":
                self.answer(*runner.current_health().live(time.monotonic()))
            elif path == "/readyz":
                self.answer(*runner.current_health().readiness(time.monotonic()))
            elif path == "/metrics":
                self.answer(True, metrics(), "text/plain; version=0.0.4; charset=utf-8")
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
            try:
                body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
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
