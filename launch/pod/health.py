"""The health port of `mroute actor`: what an orchestrator's probes and Prometheus read.

- `/healthz` 200 once the actor answers its pings (its start() is done: Comm's journal
  loaded) and while it does; 503 before, once it has stopped answering, or has exited:
  the startup and liveness probes.
- `/readyz` 200 once the actor said READY (its sockets are up and its state loaded: Comm's
  journal, the MRE's snapshot from Comm, a Chat Server's confirmed subscription) and while
  it answers; 503 before, while it drains, and after: the readiness probe.
- `/metrics` its own series, in Prometheus's text format (launch/metrics.py).
- `POST /drain` (the preStop hook, from this host): the actor stops taking new work and
  finishes what it has; the answer comes when it has, or at the drain timeout.
- `/stats` the actor's stats as JSON; `POST /load` a Chat Server's load settings: what
  `mroute load --attach-pods` reads and says (the supervisor's channel, over HTTP), to
  this host or with the control token.

What another site's page could make a browser send is refused (launch/httpguard.py): a
Host this port is not served as, and a change that is not a POST of JSON from no other
origin.

Each answer's body says the state in words. The HTTP server has a thread of its own and
only reads what the runner's loop replaced whole (`Health`)."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable

import orjson

from ..httpguard import Guard, Refusal, RefusalLog, is_loopback
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
READS = ("/healthz", "/readyz", "/metrics", "/stats")
CHANGES = ("/drain", "/load")   # POST with a JSON body only (launch/httpguard.py)
log = logging.getLogger("mroute.pod")


def serve(host: str, port: int, runner: "PodRunner", metrics: Callable[[], bytes], drain_timeout: float,
          token: str | None = None, names: tuple[str, ...] = ()) -> ThreadingHTTPServer:
    """Start the health server on its own thread; `port` 0 takes a free one. A request
    whose Host is not a name this port is served as (its address, or one of `names`) is
    refused, on every path. What changes the actor (/drain, /load) is taken only as a POST
    of JSON that no other site's page sent (launch/httpguard.py); /drain only from this
    host (loopback: the preStop hook, run in the container), /load and /stats (which reads
    its insides) from this host or from a client that shows `token`
    (`Authorization: Bearer ...`); probes and /metrics from anyone who reaches it."""

    class Handler(BaseHTTPRequestHandler):
        timeout = 10   # seconds a client may take to send its request

        def local(self) -> bool:
            return is_loopback(self.client_address[0])

        def refuse(self, refusal: Refusal) -> None:
            refusals.refused(f"{self.command} {self.path[:100]!r} from {self.client_address[0]}", refusal)
            self.answer(False, refusal.reason, status=refusal.status,
                        headers={"Allow": "POST"} if refusal.status == 405 else {})

        def permitted(self, path: str) -> Refusal | None:
            """Why this request is refused, or None."""
            refusal = guard.host(self.headers, self.connection.getsockname()[0])
            if refusal is None and path in CHANGES:
                refusal = guard.change(self.command, path, self.headers)
            if refusal is not None or self.local() or path not in ("/stats", "/load", "/drain"):
                return refusal
            if path == "/drain":
                return Refusal(403, "/drain is served to this host only (the preStop hook)")
            given = self.headers.get("Authorization", "")
            if token is not None and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return None
            return Refusal(403, f"{path} is served to this host, or with the control token")

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            path = self.path.split("?")[0]
            if path not in READS + CHANGES:
                self.answer(False, f"no such path {path!r}: /healthz, /readyz, /metrics, /stats; POST /drain, "
                                   "/load", status=404)
                return
            refusal = self.permitted(path)
            if refusal is not None:
                self.refuse(refusal)
            elif path == "/healthz":
                self.answer(*runner.current_health().live(time.monotonic()))
            elif path == "/readyz":
                self.answer(*runner.current_health().readiness(time.monotonic()))
            elif path == "/metrics":
                self.answer(True, metrics(), CONTENT_TYPE)
            elif path == "/stats":
                self.answer_json(runner.ask("stats"))

        def do_POST(self) -> None:  # noqa: N802
            """`/drain` (the preStop hook), and `/load`: a Chat Server's load settings (rate,
            handle, think, patience, run), as `mroute load --attach-pods` gives them; the
            answer is its settings."""
            path = self.path.split("?")[0]
            if path in READS:
                self.refuse(Refusal(405, f"{path} is read with a GET"))
                return
            if path not in CHANGES or (path == "/load" and runner.process.role != "chat"):
                self.answer(False, "POST is for /drain, and /load on a Chat Server", status=404)
                return
            refusal = self.permitted(path)
            if refusal is not None:
                self.refuse(refusal)
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
            if path == "/drain":
                self.answer(True, runner.drain(drain_timeout))
            else:
                self.answer_json(runner.ask("load", body))

        def do_PUT(self) -> None:  # noqa: N802
            self.refuse(Refusal(405, f"{self.command} is not served here: GET to read, POST /drain or /load"))

        do_DELETE = do_PATCH = do_PUT

        def answer_json(self, answer: dict[str, Any]) -> None:
            """An actor's answer, its name beside it; a refusal is 400 with the reason."""
            if "error" in answer:
                status = 400 if answer["error"].get("code") else 503
                self.answer(False, orjson.dumps(answer), "application/json", status=status)
            else:
                self.answer(True, orjson.dumps({"name": runner.name, "role": runner.process.role, "answer": answer}),
                            "application/json")

        def answer(self, ok: bool, body: str | bytes, kind: str = "text/plain; charset=utf-8",
                   status: int | None = None, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else (body + "\n").encode()
            self.send_response(status or (200 if ok else 503))
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the actor's own lines

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    guard = Guard(host, server.server_port, names)
    refusals = RefusalLog(log)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
