"""The health port of `mroute actor`: what an orchestrator's probes and Prometheus read.

- `/healthz` 200 while the actor is live, 503 otherwise (health.py): the startup and
  liveness probes.
- `/readyz` 200 while it is ready, 503 before, while it drains, and after: the readiness
  probe.
- `/metrics` its own series, in Prometheus's text format (launch/metrics.py), its stats
  asked again first when older than FRESH_S.
- `POST /drain` (the preStop hook, from this host): the actor stops taking new work and
  finishes what it has; the answer comes when it has, or at the drain timeout.
- `/stats` the actor's stats as JSON; `POST /load` a Chat Server's load settings: what
  `mroute load --attach-pods` reads and says (the supervisor's channel, over HTTP), to
  this host or with the control token.

What another site's page could make a browser send is refused (launch/httpguard.py): a
Host this port is not served as, and a change that is not a POST of JSON from no other
origin. Each answer's body says the state in words.

It is served on aiohttp (launch/httpport.py), on a thread of its own with its own asyncio
loop beside the runner's (a zmq poller, on the main thread): neither ever waits on the
other. What it asks of the actor goes to the runner's loop (`PodRunner.submit`) and the
answer comes back to this loop, so a request waiting for the actor (a drain: up to its
timeout; a scrape of a hung actor: SCRAPE_WAIT_S) holds no thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any, Callable

import orjson
from aiohttp import web

from ..httpguard import Guard, Refusal, RefusalLog, is_loopback
from ..httpport import ServedPort, answer, listen, local_address, serve_in_thread, unsupported
from ..metrics import CONTENT_TYPE, Known, TopologyCollector, exposition
from ..process.channel import STATS_TIMEOUT
from .runner import Answer, PodRunner

MAX_BODY = 65536   # bytes of a POST body: load settings are a few dozen
READS = ("/healthz", "/readyz", "/metrics", "/stats")
CHANGES = ("/drain", "/load")   # POST with a JSON body only (launch/httpguard.py)
FRESH_S = 1.0           # a scrape shows stats at most this old: older, it asks the actor again ...
SCRAPE_WAIT_S = 1.0     # ... waiting at most this long for the answer (else the last, its age said)
DRAIN_POLL = 0.5        # seconds between looks at a draining Chat Server's open chats
ASK_WAIT_S = STATS_TIMEOUT + 1   # the channel answers for a silent actor after STATS_TIMEOUT
log = logging.getLogger("mroute.pod")


def serve(host: str, port: int, runner: PodRunner, drain_timeout: float, token: str | None = None,
          names: tuple[str, ...] = ()) -> ServedPort:
    """Serve the health port from now on, on its own thread; `port` 0 takes a free one (an
    OSError if it is taken). A request whose Host is not a name this port is served as (its
    address, or one of `names`) is refused, on every path. What changes the actor (/drain,
    /load) is taken only as a POST of JSON that no other site's page sent
    (launch/httpguard.py); /drain only from this host (loopback: the preStop hook, run in
    the container), /load and /stats (which reads its insides) from this host or from a
    client that shows `token` (`Authorization: Bearer ...`); probes and /metrics from anyone
    who reaches it."""
    sock = listen(host, port)
    health = HealthPort(runner, drain_timeout, token, Guard(host, sock.getsockname()[1], names))
    return serve_in_thread(health.handle, sock, "health")


class HealthPort:
    def __init__(self, runner: PodRunner, drain_timeout: float, token: str | None, guard: Guard):
        self.runner = runner
        self.drain_timeout = drain_timeout
        self.token = token
        self.guard = guard
        self.refusals = RefusalLog(log)
        self.known = Known.of(runner.topology) if runner.process.role == "comm" else Known()
        self.stats_asked: asyncio.Future[Answer] | None = None   # a scrape's question, while it is asked
        self.stats_asked_at = 0.0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET":
            return await self.read(request)
        if request.method == "POST":
            return await self.change(request)
        if request.method in ("PUT", "DELETE", "PATCH"):
            return self.refuse(request, Refusal(405, f"{request.method} is not served here: GET to read, POST /drain "
                                                     "or /load"))
        return unsupported(request)

    # what it answers ---------------------------------------------------------------------
    async def read(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.raw_path.split("?")[0]
        if path not in READS + CHANGES:
            return said(False, f"no such path {path!r}: /healthz, /readyz, /metrics, /stats; POST /drain, /load",
                        status=404)
        refusal = self.permitted(request, path)
        if refusal is not None:
            return self.refuse(request, refusal)
        if path == "/healthz":
            return said(*self.runner.current_health().live(time.monotonic()))
        if path == "/readyz":
            return said(*self.runner.current_health().readiness(time.monotonic()))
        if path == "/metrics":
            await self.fresh_stats()
            return said(True, exposition(TopologyCollector(self.runner.metrics_view, self.known)), CONTENT_TYPE)
        return self.answer_json(await self.ask("stats"))   # /stats (a GET of a change was refused above)

    async def change(self, request: web.BaseRequest) -> web.StreamResponse:
        """`/drain` (the preStop hook), and `/load`: a Chat Server's load settings (rate,
        handle, think, patience, run), as `mroute load --attach-pods` gives them; the
        answer is its settings."""
        path = request.raw_path.split("?")[0]
        if path in READS:
            return self.refuse(request, Refusal(405, f"{path} is read with a GET"))
        if path not in CHANGES or (path == "/load" and self.runner.process.role != "chat"):
            return said(False, "POST is for /drain, and /load on a Chat Server", status=404)
        refusal = self.permitted(request, path)
        if refusal is not None:
            return self.refuse(request, refusal)
        try:
            length = int(request.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY:
                raise ValueError(f"Content-Length must be 0 to {MAX_BODY}, not {length}")
            body = orjson.loads(await request.read() if length else b"")
            if not isinstance(body, dict):
                raise ValueError("must be a JSON object")
        except (ValueError, orjson.JSONDecodeError) as exc:
            return self.answer_json({"error": {"reason": f"the body: {exc}", "code": "BAD_MESSAGE"}})
        if path == "/drain":
            return said(True, await self.drain())
        return self.answer_json(await self.ask("load", body))

    def permitted(self, request: web.BaseRequest, path: str) -> Refusal | None:
        """Why this request is refused, or None."""
        refusal = self.guard.host(request.headers, local_address(request))
        if refusal is None and path in CHANGES:
            refusal = self.guard.change(request.method, path, request.headers)
        if refusal is not None or is_loopback(request.remote or "") or path not in ("/stats", "/load", "/drain"):
            return refusal
        if path == "/drain":
            return Refusal(403, "/drain is served to this host only (the preStop hook)")
        given = request.headers.get("Authorization", "")
        if self.token is not None and hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return None
        return Refusal(403, f"{path} is served to this host, or with the control token")

    def refuse(self, request: web.BaseRequest, refusal: Refusal) -> web.Response:
        self.refusals.refused(f"{request.method} {request.raw_path[:100]!r} from {request.remote}", refusal)
        return said(False, refusal.reason, status=refusal.status,
                    headers={"Allow": "POST"} if refusal.status == 405 else {})

    def answer_json(self, reply: Answer) -> web.Response:
        """An actor's answer, its name beside it; a refusal is 400 with the reason."""
        if "error" in reply:
            status = 400 if reply["error"].get("code") else 503
            return said(False, orjson.dumps(reply), "application/json", status=status)
        return said(True, orjson.dumps({"name": self.runner.name, "role": self.runner.process.role,
                                        "answer": reply}), "application/json")

    # what it asks the actor ---------------------------------------------------------------
    async def ask(self, verb: str, body: dict[str, Any] | None = None,
                  then: Callable[[Answer], None] | None = None) -> Answer:
        """A control verb to the actor, through the runner's loop (which owns the control
        socket): its answer, or {"error": {"reason": ...}}. `then(answer)` runs on that loop."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Answer] = loop.create_future()

        def answered(result: Answer) -> None:   # on the runner's loop
            if then is not None:
                then(result)
            try:
                loop.call_soon_threadsafe(settle, reply, result)
            except RuntimeError:   # this port has closed: nobody waits
                pass
        self.runner.submit(verb, body, answered)
        try:
            return await asyncio.wait_for(reply, ASK_WAIT_S)
        except asyncio.TimeoutError:
            return {"error": {"reason": f"{self.runner.name} did not answer {verb} within {ASK_WAIT_S:g} s"}}

    async def fresh_stats(self) -> None:
        """Stats older than FRESH_S are asked again, waited for at most SCRAPE_WAIT_S from the
        question: a hung actor's last answer is shown at once, its age saying how old. One
        question at a time: scrapes during a hang pile up nothing."""
        runner = self.runner
        if time.monotonic() - runner.stats[1] <= FRESH_S or runner.process.proc is None:
            return
        if self.stats_asked is None or self.stats_asked.done():
            self.stats_asked_at = time.monotonic()
            self.stats_asked = asyncio.ensure_future(
                self.ask("stats", then=runner.keep_stats_asked_at(self.stats_asked_at)))
        try:
            await asyncio.wait_for(asyncio.shield(self.stats_asked),
                                   max(0.0, self.stats_asked_at + SCRAPE_WAIT_S - time.monotonic()))
        except asyncio.TimeoutError:
            pass

    async def drain(self) -> str:
        """Not ready from now on; a Chat Server takes no new customers and the chats under way
        go on to their end (bounded by the drain timeout)."""
        runner = self.runner
        runner.draining = True
        if runner.process.role != "chat":   # Comm, the MRE, the GC: nothing of theirs to finish first
            return f"{runner.name} drained"
        deadline = time.monotonic() + self.drain_timeout
        await self.ask("load", {"rate": 0})
        while time.monotonic() < deadline:
            stats = await self.ask("stats")
            if "error" not in stats and not stats.get("open", 0) and not stats.get("waiting", 0):
                return f"{runner.name} drained"
            if runner.process.proc is None:
                return f"{runner.name} exited while draining"
            await asyncio.sleep(DRAIN_POLL)
        return f"{runner.name} still busy after {self.drain_timeout:g} s: stopping it anyway"


def said(ok: bool, body: str | bytes, kind: str = "text/plain; charset=utf-8", status: int | None = None,
         headers: dict[str, str] | None = None) -> web.Response:
    """200 or 503 by `ok`, unless a status is given."""
    return answer(status or (200 if ok else 503), body, kind, headers)


def settle(reply: asyncio.Future[Answer], result: Answer) -> None:
    if not reply.done():   # not timed out meanwhile
        reply.set_result(result)
