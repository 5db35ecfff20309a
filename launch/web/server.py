"""`mroute web`: the web console's HTTP side (aiohttp): pages, a JSON API, Server-Sent
Events, and a token that guards all of them (as Jupyter's: printed at start, kept in a
cookie once a page was opened with it).

It joins a running topology as the CLI does: the supervisor's control channel (status,
stats, restart, stop, start, scale, trace, explain), its lifecycle events, and the
documented queues, where it is a Chat Server of its own (desk.py)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
import zmq
import zmq.asyncio
from aiohttp import web

from .. import client
from ..top import frame, look
from ..topology import Topology
from .desk import WebDesk
from .directory import console_agents, console_queues, free_agents
from .hub import CLOSING, Hub
from wire.client import Refused
from .loadrun import LoadRun, check as check_scenario
from .phone import Phone
from .team import Team

log = logging.getLogger("mroute.web")
STATIC = Path(__file__).parent / "static"
PAGES = {"/": "overview.html", "/routing": "routing.html", "/load": "load.html", "/desk": "desk.html",
         "/customer": "customer.html", "/voice": "voice.html"}
LOOK_EVERY = 1.0   # seconds between looks at the topology (status and every actor's stats)
EVENTS_KEPT = 100
# what a page may load: itself only (no inline script, no frames of it elsewhere)
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                    "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    def __init__(self, topology: Topology, token: str | None, hosts: set[str] | None = None):
        """`hosts`: the Host headers a request may carry (the names this console is served
        as); another is a page of some other site, rebound by DNS to ours."""
        self.topology = topology
        self.token = token
        self.hosts = hosts
        self.cookie = "mroute_token"
        self.hub = Hub()
        self.ctx = zmq.asyncio.Context()
        self.desk = WebDesk(topology, self.ctx, self.hub.publish)
        self.team = Team(topology, self.desk, self.hub, self.ask)
        self.phone = Phone(topology, self.ctx, self.desk.destination, self.hub.publish, self.desk.logged_in)
        # what the pages are told of the directory (read once: with a large one it is not free)
        self.directory = {"console_queues": console_queues(topology), "free_agents": free_agents(topology)[:1000],
                          "console_agents": console_agents(topology)[:20],
                          "voice_agents": [a["id"] for a in topology.agents if a.get("extension")][:20]}
        self.view: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.load = LoadRun(topology, lambda event: self.from_thread("load", event))
        self.background: list[asyncio.Task[Any]] = []

    # the topology ----------------------------------------------------------------------------
    async def ask(self, verb: str, body: dict[str, Any] | None = None, timeout: float = 20.0) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, client.ask, self.topology, verb, body, timeout)

    def from_thread(self, channel: str, event: dict[str, Any]) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.hub.publish, channel, event)

    async def watch(self) -> None:
        """Look at the topology every second; the overview and routing pages get each frame.
        A topology that stops is said, and looked at again until it is back."""
        executor = asyncio.get_running_loop().run_in_executor
        before = None
        while True:
            try:
                now = await executor(None, look, self.topology)
                if before is not None:
                    self.view = {**frame(before, now, self.topology), "at": time.time()}
                    self.hub.publish("overview", self.view)
                before = now
            except (client.NotRunning, client.NoAnswer) as exc:
                self.view, before = {"down": str(exc)}, None
                self.hub.publish("overview", self.view)
            except Exception:   # a look that goes wrong must not end the watching
                log.exception("web: looking at the topology")
            await asyncio.sleep(LOOK_EVERY)

    async def lifecycle(self) -> None:
        sock = self.ctx.socket(zmq.SUB)
        sock.linger = 0
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.topology.control_endpoint("events"))
        try:
            while True:
                try:
                    _topic, raw = await sock.recv_multipart()
                    event = orjson.loads(raw)
                except (ValueError, orjson.JSONDecodeError):
                    continue
                self.events = [*self.events[-(EVENTS_KEPT - 1):], event]
                self.hub.publish("events", event)
        finally:
            sock.close()

    async def on_startup(self, app: web.Application) -> None:
        self.loop = asyncio.get_running_loop()
        self.desk.start()   # in the background: the pages serve while it waits for Comm
        self.phone.start()
        self.background = [asyncio.create_task(self.watch()), asyncio.create_task(self.lifecycle()),
                           asyncio.create_task(self.team.run())]

    async def on_shutdown(self, _app: web.Application) -> None:
        """Before the server waits for its requests: every event stream ends now, a load
        stops and gives the Chat Servers their settings back."""
        self.hub.close()
        self.load.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.load.join, 30.0)

    async def on_cleanup(self, _app: web.Application) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.phone.close()
        await self.desk.close()
        self.ctx.term()

    # guarding ---------------------------------------------------------------------------------
    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await self.checked(request, handler)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.hosts is not None and request.host not in self.hosts:
            return web.Response(status=403, text=f"mroute web is not served as {request.host!r}")
        if request.method == "POST":
            if request.content_type != "application/json":   # a form another site may post is refused
                return web.json_response({"error": "POST takes application/json"}, status=415)
            origin = request.headers.get("Origin")
            if origin is not None and origin.split("://", 1)[-1] != request.host:
                return web.json_response({"error": f"a request from {origin} is refused"}, status=403)
        if self.token is None or request.path.startswith("/static/") or request.path == "/favicon.ico":
            return await handler(request)
        given = request.query.get("token")
        if given is not None and same(given, self.token):   # the URL printed at start
            response = web.HTTPFound(request.path)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict")
            return response
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if same(request.cookies.get(self.cookie, ""), self.token) or same(bearer, self.token):
            return await handler(request)
        if request.path.startswith("/api/"):
            return web.json_response({"error": "open the console with the URL mroute web printed"}, status=401)
        return web.Response(status=401, content_type="text/html",
                            text="<p>mroute web: open the console with the URL it printed at start "
                                 "(it carries the token).</p>")

    # pages and the stream ------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / PAGES[request.path])

    async def icon(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml"})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        channels = set(request.query.getall("ch", []))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue = self.hub.listen(channels)
        try:
            await response.write(b": listening\n\n")
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), 15.0)
                except asyncio.TimeoutError:
                    data = b": beat\n\n"   # a proxy keeps a quiet stream open
                if data == CLOSING:   # the console stops: the page reconnects to whatever comes next
                    break
                await response.write(data)
        except ConnectionResetError:
            pass
        finally:
            self.hub.leave(queue)
        return response

    # the API ------------------------------------------------------------------------------------
    async def state(self, _request: web.Request) -> web.Response:
        topology = self.topology
        return web.json_response({
            "name": topology.name, "view": self.view, "events": self.events, "desk": self.desk.destination,
            "desk_mrd": self.desk.default_mrd(), **self.directory,
            "queues": {name: q["mrd"] for name, q in topology.queues.items()}, "mrds": list(topology.mrds),
            "actors": {name: spec["role"] for name, spec in topology.actors.items()},
            "voice_queues": sorted(next((s.get("queues", {}) for s in topology.actors.values() if s["role"] == "gc"),
                                        {})),
            "load": {"running": self.load.running, "form": self.load.form, "error": self.load.error,
                     "reports": sorted(self.load.reports)}}, dumps=lambda v: orjson.dumps(v).decode())

    async def control(self, request: web.Request) -> web.Response:
        """restart, stop, start (name) and scale (name, count), as the CLI asks them."""
        verb = request.match_info["verb"]
        body = await json_body(request)
        if verb not in ("restart", "stop", "start", "scale"):
            raise web.HTTPNotFound()
        ask = {"name": body.get("name")}
        if verb == "scale":
            ask.update(count=body.get("count"), force=bool(body.get("force")))
        return await self.answer(self.ask(verb, ask, timeout=30.0))

    async def task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task"]

        async def both() -> dict[str, Any]:
            traced = await self.ask("ask", {"name": "all", "verb": "trace", "body": {"task": task_id}}, timeout=5)
            hops = sorted(({**hop, "actor": name} for name, a in traced["actors"].items()
                           for hop in a.get("events", [])), key=lambda hop: hop["at"])
            explained = await self.ask("ask", {"role": "mre", "verb": "explain", "body": {"task": task_id}},
                                       timeout=5)
            return {"task": task_id, "hops": hops, "explain": explained}
        return await self.answer(both())

    async def desk_call(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        action, desk = request.match_info["action"], self.desk
        customers = desk.customers
        calls: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "login": lambda: self.login(str(body.get("agent", "")), str(body.get("password", ""))),
            "state": lambda: desk.set_state(str(body.get("agent", "")), str(body.get("state", "")),
                                            str(body.get("mrd", ""))),
            "task": lambda: desk.task_action(str(body.get("agent", "")), str(body.get("task", "")),
                                             str(body.get("action", "")), str(body.get("recipient", ""))),
            "start": lambda: customers.start(str(body.get("customer", "")), str(body.get("queue", ""))),
            "leave": lambda: customers.leave(str(body.get("chat", "")))}
        now: dict[str, Callable[[], dict[str, Any]]] = {   # what the desk knows already
            "agent": lambda: desk.agent_view(str(body.get("agent", "")), check=True),
            "chat": lambda: customers.chat(str(body.get("chat", ""))).view(),
            "say": lambda: customers.say(str(body.get("chat", "")), str(body.get("sender", "")),
                                         str(body.get("text", "")))}
        try:
            if action in calls:
                return web.json_response(await calls[action]())
            if action in now:
                return web.json_response(now[action]())
        except Refused as err:
            return web.json_response({"error": err.reason, "code": err.code},
                                     status=503 if err.code in ("UNAVAILABLE", "NO_ANSWER") else 400)
        raise web.HTTPNotFound()

    async def login(self, agent_id: str, password: str) -> dict[str, Any]:
        view = await self.desk.login(agent_id, password)
        self.phone.connect(agent_id, password)   # (an agent with an extension: its calls on the Voice page)
        return view

    async def load_call(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        try:
            if action == "start":
                self.load.start(await json_body(request))
            elif action == "check":   # the page's scenario, read before a run: its fields, or what is wrong
                return web.json_response(check_scenario(await json_body(request), self.load.topology))
            elif action == "stop":
                self.load.stop()
            else:
                raise web.HTTPNotFound()
        except (ValueError, RuntimeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"running": self.load.running})

    async def load_report(self, request: web.Request) -> web.Response:
        found = self.load.reports.get(request.match_info["file"])
        if found is None:
            raise web.HTTPNotFound(text="no such report: a load must have ended first")
        kind, text = found
        return web.Response(text=text, content_type=kind,
                            headers={"Content-Disposition": f'attachment; filename="{request.match_info["file"]}"'})

    async def voice_call(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        return await self.answer(self.ask("ask", {"role": "gc", "verb": "call",
                                                  "body": {"queue": str(body.get("queue", "")), "ani": ""}}, timeout=5))

    async def team_view(self, _request: web.Request) -> web.Response:
        return web.json_response(self.team.now())

    async def voice_view(self, _request: web.Request) -> web.Response:
        return web.json_response(self.phone.view())

    async def voice_action(self, request: web.Request) -> web.Response:
        """answer or hang up (`action`) a call (`dialog`) of an agent logged in here."""
        body = await json_body(request)
        try:
            return web.json_response(self.phone.call_action(str(body.get("agent", "")), str(body.get("dialog", "")),
                                                            str(body.get("action", ""))))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def answer(self, asked: Awaitable[dict[str, Any]]) -> web.Response:
        try:
            return web.json_response(await asked)
        except client.Refused as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except (client.NotRunning, client.NoAnswer) as exc:
            return web.json_response({"error": str(exc)}, status=503)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=64 * 1024)
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        app.on_cleanup.append(self.on_cleanup)
        for path in PAGES:
            app.router.add_get(path, self.page)
        app.router.add_get("/favicon.ico", self.icon)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/team", self.team_view)
        app.router.add_get("/api/voice", self.voice_view)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_post("/api/actors/{verb}", self.control)
        app.router.add_get("/api/task/{task}", self.task)
        app.router.add_post("/api/desk/{action}", self.desk_call)
        app.router.add_post("/api/load/{action}", self.load_call)
        app.router.add_get("/api/load/{file}", self.load_report)
        app.router.add_post("/api/voice/call", self.voice_call)
        app.router.add_post("/api/voice/action", self.voice_action)
        app.router.add_static("/static/", STATIC)
        return app


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=orjson.loads)
    except (ValueError, orjson.JSONDecodeError):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


def same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(errors="replace"), token.encode())
