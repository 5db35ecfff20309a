"""Our small HTTP ports, on the web console's HTTP stack (aiohttp): the health port of
`mroute actor` (pod/healthport.py) and the supervisor's metrics port (metricsd.py). What they
refuse is launch/httpguard.py's.

Each port is one handler for every request (aiohttp's low-level server: no routing of its
own, so each port says, in its order, what it answers to what), on a listening socket bound
by whoever asked for the port, so that a port in use is refused at once, with its reason,
and port 0 is known before anything is served. A port is served either on a thread of its
own with its own asyncio loop (`serve_in_thread`: beside a process's own loop, which it
never waits on) or on the main thread of a process of its own (`serve_forever`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

TEXT = "text/plain; charset=utf-8"
IDLE_S = 10.0      # seconds a connection may stay without a request: no client holds one for long
CLOSE_WAIT_S = 1.0   # seconds the requests under way get when a port closes; then they are cut off
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def listen(host: str, port: int) -> socket.socket:
    """The port, bound and listening (OSError if it is taken); 0 takes a free one."""
    return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                backlog=64)


def answer(status: int, body: str | bytes, kind: str = TEXT, headers: dict[str, str] | None = None) -> web.Response:
    """A whole answer; a text one ends with a newline."""
    data = body if isinstance(body, bytes) else (body + "\n").encode()
    return web.Response(body=data, status=status, headers={"Content-Type": kind, **(headers or {})})


def local_address(request: web.BaseRequest) -> str:
    """The address the client reached (a port bound to 0.0.0.0 has one per interface)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return str(sockname[0]) if sockname else ""


def unsupported(request: web.BaseRequest) -> web.Response:
    return answer(501, f"Unsupported method ({request.method!r})")


async def start(handler: Handler, sock: socket.socket) -> web.ServerRunner:
    runner = web.ServerRunner(web.Server(handler, access_log=None, keepalive_timeout=IDLE_S),
                              shutdown_timeout=CLOSE_WAIT_S)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


@dataclass
class ServedPort:
    """A port served on a thread of its own (a daemon: it never holds up the process's end)."""
    server_port: int
    loop: asyncio.AbstractEventLoop
    runner: web.ServerRunner
    thread: threading.Thread

    def close(self) -> None:
        """Stop serving: the requests under way get CLOSE_WAIT_S, then the loop ends."""
        if not self.thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(CLOSE_WAIT_S + 1.0)
        except Exception:  # noqa: BLE001 - closing: what is left goes with the thread
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(CLOSE_WAIT_S + 1.0)


def serve_in_thread(handler: Handler, sock: socket.socket, name: str) -> ServedPort:
    """Serve `sock` with `handler` on a new thread and its own asyncio loop, from now on."""
    loop = asyncio.new_event_loop()
    started: list[web.ServerRunner | BaseException] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.append(loop.run_until_complete(start(handler, sock)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            started.append(exc)
        ready.set()
        if isinstance(started[0], web.ServerRunner):
            loop.run_forever()
        for task in asyncio.all_tasks(loop):   # what was under way when it closed
            task.cancel()
        loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait()
    if isinstance(started[0], BaseException):
        raise started[0]
    return ServedPort(sock.getsockname()[1], loop, started[0], thread)


def serve_forever(handler: Handler, sock: socket.socket) -> None:
    """Serve `sock` with `handler` on this thread until the process ends."""
    async def main() -> None:
        await start(handler, sock)
        await asyncio.Event().wait()
    asyncio.run(main())
