"""`mroute send TYPE JSON`: one message on its documented queue, and its answer."""

from __future__ import annotations

import sys

import click
import orjson

from wire.catalogue import GENERAL

from .common import running_topology, topology_option


@click.command()
@topology_option()
@click.argument("type")
@click.argument("body", default="{}")
@click.option("--queue", default=None, help="the queue to put it on (default: the one the catalogue gives)")
@click.option("--timeout", type=click.FloatRange(0.1), default=5.0, show_default=True,
              help="seconds to wait for the answer")
@click.option("--wait", type=click.FloatRange(0), default=0.0, show_default=True,
              help="after the answer, seconds to go on printing what else comes back (e.g. TaskAgentSelected)")
def send(file: str, type: str, body: str, queue: str | None, timeout: float, wait: float) -> None:
    """Put one message on its documented queue and print what comes back to the sender.

    Returns when the answer (the message carrying the request's MsgId) arrives; exits 1 when
    it is an Error or when none came within --timeout. Off General (--queue RoutingEngine or
    CommunicationServer) nothing answers the sender: it prints what comes back for --wait.

    Example: mroute send Task '{"Mrd": "chat", "ClientUniqueId": "c1"}'"""
    from ..probe import queue_of, send_and_listen
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"BODY is not JSON: {exc}", param_hint="BODY")
    if not isinstance(parsed, dict):
        raise click.BadParameter("BODY must be a JSON object", param_hint="BODY")
    queue = queue_of(type, queue)
    topology = running_topology(file)
    answer = send_and_listen(topology, type, parsed, queue, timeout, wait)
    if queue != GENERAL:
        return
    if answer is None:
        raise click.ClickException(f"no answer to {type} {parsed['MsgId']} within {timeout:g} s")
    if answer["type"] == "Error":
        click.echo(f"mroute: {type} refused: {answer['body'].get('Code')} {answer['body'].get('Reason', '')}".rstrip(),
                   err=True)
        sys.exit(1)
