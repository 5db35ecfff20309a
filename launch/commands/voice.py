"""The voice side: `mroute gc` (a Generic Connector client), `call`, `preview` and
`voice-side`, the last three asked of the gc actor through the supervisor."""

from __future__ import annotations

import click

from .common import control, running_topology, topology_option


@click.command(context_settings={"ignore_unknown_options": True})
@topology_option()
@click.option("--shell", "interactive", is_flag=True,
              help="a live session: events as they arrive, history, Tab completion")
@click.option("--wait", type=float, default=1.0, show_default=True,
              help="seconds to print what comes back (in --shell: after the last command, when leaving)")
@click.argument("agent")
@click.argument("command", required=False)
@click.argument("params", nargs=-1)
def gc(file: str, interactive: bool, wait: float, agent: str, command: str | None, params: tuple[str, ...]) -> None:
    """Send one Generic Connector command as AGENT and print the events that come back.

    Example: mroute gc alice Login pw-alice 1001   (parameters separated by spaces or commas)"""
    from ..gcclient import one_command, shell
    if not interactive and command is None:
        raise click.UsageError("name a COMMAND, or use --shell")
    topology = running_topology(file)
    if not any(spec["role"] == "gc" for spec in topology.actors.values()):
        raise click.ClickException(f"topology {topology.name!r} has no gc actor (add one under actors:)")
    if interactive:
        shell(topology, agent, wait)
    else:
        one_command(topology, agent, command or "", params, wait)


@click.command()
@topology_option()
@click.argument("queue")
@click.option("--ani", default="", help="the caller's number")
def call(file: str, queue: str, ani: str) -> None:
    """Place an inbound call on a voice queue of the simulated contact centre."""
    answer = control(file, "ask", {"role": "gc", "verb": "call", "body": {"queue": queue, "ani": ani}}, timeout=5)
    click.echo(f"call {answer['dialog']} on {queue}")


@click.command("voice-side")
@topology_option()
@click.argument("status", type=click.Choice(["up", "down"]))
def voice_side(file: str, status: str) -> None:
    """Take the simulated voice side down or bring it back: the GC says OUT_OF_SERVICE / IN_SERVICE."""
    answer = control(file, "ask", {"role": "gc", "verb": "service", "body": {"up": status == "up"}}, timeout=5)
    click.echo(f"voice side {answer['status']}")


@click.command()
@topology_option()
@click.argument("agent")
@click.argument("number")
def preview(file: str, agent: str, number: str) -> None:
    """Offer an outbound preview call of NUMBER to AGENT (as the dialer would)."""
    answer = control(file, "ask", {"role": "gc", "verb": "preview", "body": {"agent": agent, "number": number}},
                     timeout=5)
    click.echo(f"preview {answer['dialog']} offered to {agent}")
