"""`mroute web`: the web console of a running topology (launch/web/)."""

from __future__ import annotations

import os
import signal

import click

from actors.loop import die_with_parent

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
    topology = running_topology(file)
    if os.getppid() > 1:   # started by a shell or a test: we stop with it
        die_with_parent(os.getppid(), signal.SIGTERM)
    token = None if no_auth else secrets.token_urlsafe(24)
    console = Console(topology, token)

    async def serve() -> None:
        runner = web.AppRunner(console.app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror}")
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        query = f"?token={token}" if token else ""
        click.echo(f"mroute web: {topology.name} at http://{host}:{bound}/{query}", err=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await stop.wait()
        await runner.cleanup()
    asyncio.run(serve())
