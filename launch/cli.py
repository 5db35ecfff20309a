"""`mroute`: start, inspect and stop a topology.

The group: its options (-f FILE, --version) and the verbs, each in its own module under
launch/commands/. A verb against a topology that is not running says so at once and exits
3 (as `status` does); a supervisor that does not answer is an error (exit 1)."""

from __future__ import annotations

from typing import Any

import click

from . import client
from .commands import COMMANDS
from . import version
from .commands.common import DEFAULT_FILE, FILE_ENV

NOT_RUNNING = 3


def print_version(ctx: click.Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"mroute {version()}")
        ctx.exit()


class Mroute(click.Group):
    """Turns the two ways a running topology can fail a verb into one message each."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except client.NotRunning as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(NOT_RUNNING)
        except client.NoAnswer as exc:
            raise click.ClickException(str(exc))


@click.group(cls=Mroute)
@click.option("-f", "--file", "file", envvar=FILE_ENV, default=DEFAULT_FILE, show_default=True,
              type=click.Path(dir_okay=False), metavar="FILE",
              help=f"the topology file, for every verb (a verb's own -f wins)  [env {FILE_ENV}]")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=print_version,
              help="print mroute's version and exit")
def main(file: str) -> None:
    """Contact-centre media routing over ZeroMQ: start, watch and stop topologies."""


for command in COMMANDS:
    main.add_command(command)


if __name__ == "__main__":
    main(prog_name="mroute")
