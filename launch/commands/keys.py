"""`mroute keys`: CURVE keys for a topology."""

from __future__ import annotations

import click


@click.command()
@click.argument("directory", type=click.Path(file_okay=False), default="keys")
@click.option("--client", "clients", multiple=True, metavar="NAME", help="also make (and allow) a client's key pair")
def keys(directory: str, clients: tuple[str, ...]) -> None:
    """Make CURVE keys for a topology (`security: {curve: DIRECTORY}`): the server's, our
    actors', the MRE's and the allow-list; --client NAME adds a client's key pair to hand
    out: it may use the destinations NAME and NAME.* only (a simulated Chat Server actor's
    key is made when the topology starts)."""
    from pathlib import Path

    from wire.curve import OWN_KEYS, add_client, make_keys
    path = Path(directory)
    make_keys(path)
    click.echo(f"{path}: server.key_secret, actors.key_secret, mre.key_secret, allowed/ (mode 0700)")
    for name in clients:
        if name in OWN_KEYS:
            raise click.BadParameter(f"{name!r} is one of our own keys' names", param_hint="--client")
        click.echo(f"client {name}: give it {add_client(path, name)}; its public key is in {path / 'allowed'}")
