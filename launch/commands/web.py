"""`mroute web`: the web console of a running topology (launch/web/)."""

from __future__ import annotations

import os
import signal

import click

from wire.kernel.loop import die_with_parent

from .common import running_topology, topology_option


@click.command("web")
@topology_option()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0 takes a free one")
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to serve on")
@click.option("--no-auth", is_flag=True, help="serve without the token (anyone who reaches the port may act)")
def web_command(file: str, port: int, host: str, no_auth: bool) -> None:
    """Serve the web console of the running topology: its actors, routing, a load, and a
    desk and a customer page that route a real chat through Comm and the MRE. Prints the
    URL to open (with the token that guards every page and action, unless --no-auth)."""
    import asyncio
    import secrets

    from aiohttp import web

    from ..web.server import Console
    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        raise click.UsageError("--no-auth serves 127.0.0.1 only: anyone who reaches the port could drive the topology")
    topology = running_topology(file)
    if os.getppid() > 1:   # started by a shell or a test: we stop with it
        die_with_parent(os.getppid(), signal.SIGTERM)
    token = None if no_auth else secrets.token_urlsafe(24)
    console = Console(topology, token)

    async def serve() -> None:
        runner = web.AppRunner(console.app(), handle_signals=False, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror}")
        bound = runner.addresses[0][1]
        if host not in ("0.0.0.0", "::", ""):   # the names it is served as: no other site's, rebound by DNS
            console.hosts = {f"{name}:{bound}" for name in (host, "127.0.0.1", "localhost", "[::1]")}
        console.cookie = f"mroute_token_{bound}"   # two consoles on one host keep their own
        query = f"?token={token}" if token else ""
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        click.echo(f"mroute web: {topology.name} at http://{shown}:{bound}/{query}", err=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
        await runner.cleanup()
    asyncio.run(serve())
