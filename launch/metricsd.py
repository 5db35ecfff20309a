"""The supervisor's scrape target, a process of its own (`python -m launch.metricsd`), so
that a scrape is answered while the supervisor is stopped or busy (issue 24: SIGSTOPped
for 20 s, the actors routed on and a scrape hung).

The supervisor binds the port (launch/metrics.py: a port in use stops `up`) and hands the
listening socket to this process, which dies with it (the parent-death signal). It asks the
supervisor, on its control socket as the CLI does, for the actors' states (`status`) and
then each running actor's stats (one `ask` each: a hung actor delays only its own). A scrape
reads the answers when they are at most FRESH_S old; older, it starts a round of questions
and waits for it at most SCRAPE_WAIT_S (counted from the round's start: while the supervisor
stalls, every later scrape is answered at once), then shows what it has, with each
actor's `mroute_stats_age_seconds` saying how old. An actor that did not answer keeps its
last answer: counters never go back.

The port is served on aiohttp (launch/httpport.py), on this process's main thread; the
answers are asked by a thread of its own (the ZeroMQ socket's owner), and a scrape waits
for them on a thread of a bounded pool.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson
import zmq

from wire import control

if TYPE_CHECKING:
    from aiohttp import web

    from .httpguard import Guard
    from .metrics import TopologyCollector

FRESH_S = 1.0          # a scrape shows answers at most this old ...
SCRAPE_WAIT_S = 1.0    # ... or waits at most this long for a round of questions
ASK_AGAIN_S = 30.0     # a round the supervisor has not finished in this long is given up
SERVING = ("RUNNING", "DEGRADED")   # the actors the supervisor asks for stats
SCRAPE_THREADS = 16    # scrapes waiting at once for the supervisor's answers; more wait their turn

log = logging.getLogger("mroute.metrics")
View = tuple[list[dict[str, Any]], dict[str, Any], dict[str, float]]


@dataclass
class Round:
    """One round of questions: `status`, then each running actor's stats."""
    number: int
    began: float = field(default_factory=time.monotonic)
    waiting: set[str] = field(default_factory=set)   # request ids not answered yet


class Source:
    """The supervisor's answers. A thread of ours owns the socket (ZeroMQ sockets are not
    shared between threads); scrapes, on the HTTP server's threads, wake it and wait."""

    def __init__(self, endpoint: str):
        self.cond = threading.Condition()
        self.actors: list[dict[str, Any]] = []
        self.status_at = -math.inf                         # when the actors' states were asked
        self.stats: dict[str, tuple[dict[str, Any], float]] = {}   # name -> (stats, when asked)
        self.round: Round | None = None
        self.rounds_done = 0
        self.wanted = False
        self.numbers = itertools.count(1)
        self.asked: dict[str, tuple[Round, str]] = {}      # request id -> (its round, the actor or "")
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        threading.Thread(target=self.run, name="asker", daemon=True).start()

    # the scrapes' side ----------------------------------------------------------------------
    def view(self, wait: float = SCRAPE_WAIT_S) -> View:
        """The actors' states, their stats and each one's age in seconds (inf: no stats yet),
        asked again first when older than FRESH_S, waiting for that at most `wait` seconds
        from the start of the round."""
        with self.cond:
            if self.age(time.monotonic()) > FRESH_S:
                seen = self.rounds_done
                if self.round is None or time.monotonic() - self.round.began > ASK_AGAIN_S:
                    self.wanted = True
                    self._wake_w.send(b"w")
                    deadline = time.monotonic() + wait
                else:   # a round is under way: a stalled supervisor is not waited for twice
                    deadline = self.round.began + wait
                while self.rounds_done == seen and (left := deadline - time.monotonic()) > 0:
                    self.cond.wait(left)
            return self.snapshot(time.monotonic())

    def first(self) -> None:
        """Wait for the first complete round: the first scrape has every actor's stats."""
        with self.cond:
            while not self.rounds_done:
                if self.round is None or time.monotonic() - self.round.began > ASK_AGAIN_S:
                    self.wanted = True
                    self._wake_w.send(b"w")
                self.cond.wait(5.0)

    def age(self, now: float) -> float:
        oldest = min([self.status_at, *(self.stats.get(a["name"], ({}, -math.inf))[1] for a in self.actors
                                         if a["state"] in SERVING)])
        return now - oldest

    def snapshot(self, now: float) -> View:
        actors = list(self.actors)
        stats = {a["name"]: self.stats[a["name"]][0] for a in actors if a["name"] in self.stats}
        ages = {a["name"]: now - min(self.status_at, self.stats[a["name"]][1]) if a["name"] in self.stats
                else math.inf for a in actors}
        return actors, stats, ages

    # the asking thread's side ----------------------------------------------------------------
    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while True:
            ready = dict(poller.poll())
            if self._wake_r.fileno() in ready:
                try:
                    self._wake_r.recv(4096)
                except BlockingIOError:
                    pass
            with self.cond:
                if self.sock in ready:
                    self.take_answers()
                if self.wanted:
                    self.wanted = False
                    self.begin_round()

    def begin_round(self) -> None:
        self.round = Round(next(self.numbers))
        self.send(self.round, "", "status", {})

    def send(self, round_: Round, actor: str, verb: str, body: dict[str, Any]) -> None:
        request_id = f"{round_.number}:{actor}"
        self.asked[request_id] = (round_, actor)
        round_.waiting.add(request_id)
        self.sock.send_multipart(control.frames(request_id, verb, body))

    def take_answers(self) -> None:
        while True:
            try:
                raw = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                request_id, verb, body = control.parse(raw)
            except ValueError:
                continue
            asked = self.asked.pop(request_id, None)
            if asked is not None:
                self.heard(*asked, verb == control.OK, body)

    def heard(self, round_: Round, actor: str, ok: bool, body: dict[str, Any]) -> None:
        if not actor:   # the actors' states: now ask each running one for its stats
            if ok and round_.began >= self.status_at:
                self.actors, self.status_at = list(body.get("actors", [])), round_.began
                for a in self.actors:
                    if a["state"] in SERVING:
                        self.send(round_, a["name"], "ask", {"name": a["name"], "verb": "stats", "body": {}})
        else:
            stats = body.get("actors", {}).get(actor)   # an `ask` answers by instance, also when refused
            if isinstance(stats, dict) and "error" not in stats and round_.began >= self.stats.get(
                    actor, ({}, -math.inf))[1]:
                self.stats[actor] = (stats, round_.began)
        round_.waiting.discard(f"{round_.number}:{actor}")
        if round_ is self.round and not round_.waiting:
            self.round = None
            self.rounds_done += 1
            self.cond.notify_all()


def scrapes(collector: "TopologyCollector", guard: "Guard") -> Callable[["web.BaseRequest"], Awaitable["web.Response"]]:
    """The port's handler: a GET of /metrics (or /) by a name the port is served as. A
    scrape waits for the supervisor's answers (Source.view: at most SCRAPE_WAIT_S) on a
    thread of SCRAPE_THREADS, never on the loop that serves the others."""
    from .httpguard import RefusalLog
    from .httpport import answer, local_address, unsupported
    from .metrics import CONTENT_TYPE, exposition
    refusals = RefusalLog(log)
    threads = ThreadPoolExecutor(SCRAPE_THREADS, thread_name_prefix="scrape")

    async def scrape(request: "web.BaseRequest") -> "web.Response":
        if request.method != "GET":
            return unsupported(request)
        refusal = guard.host(request.headers, local_address(request))
        if refusal is not None:
            refusals.refused(f"GET {request.raw_path[:100]!r} from {request.remote}", refusal)
            return answer(refusal.status, refusal.reason)
        if request.raw_path.split("?")[0] not in ("/metrics", "/"):
            return answer(404, "mroute serves /metrics")
        return answer(200, await asyncio.get_running_loop().run_in_executor(threads, exposition, collector),
                      CONTENT_TYPE)
    return scrape


def serve(config: dict[str, Any]) -> None:
    from wire.kernel.loop import die_with_parent

    from .httpguard import Guard
    from .httpport import serve_forever
    from .metrics import Known, TopologyCollector
    die_with_parent(config["parent"], signal.SIGTERM)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s mroute metrics: %(message)s", datefmt="%H:%M:%S")
    source = Source(config["control"])
    source.first()   # until then a scrape waits in the listening socket's queue
    known = Known(tuple(config["queues"]), tuple(config["mrds"]))
    sock = socket.socket(fileno=config["fd"])
    guard = Guard(config["host"], sock.getsockname()[1], tuple(config["names"]))
    serve_forever(scrapes(TopologyCollector(source.view, known), guard), sock)


if __name__ == "__main__":
    serve(orjson.loads(sys.argv[1]))
