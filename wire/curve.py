"""CURVE on the data sockets: who may speak to a topology.

`mroute keys DIR` makes a key directory: `server.key`/`server.key_secret` (every socket
that binds a documented queue or stream is a CURVE server with it), `actors.key`/
`actors.key_secret` (what our own actors and the CLI connect with) and `allowed/`, the
public keys of the clients let in (ours included). `mroute keys DIR --client NAME` adds a
client: `clients/NAME.key_secret` to hand to it, its public key into `allowed/`. A client
with no key, or a key not in `allowed/`, gets nothing through: the handshake fails and
ZeroMQ drops what it sends. The topology names the directory: `security: {curve: DIR}`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth


@dataclass(frozen=True)
class Curve:
    directory: Path

    @property
    def allowed(self) -> Path:
        return self.directory / "allowed"

    def keypair(self, name: str) -> tuple[bytes, bytes]:
        public, secret = zmq.auth.load_certificate(self.directory / f"{name}.key_secret")
        assert secret is not None
        return public, secret

    def serve(self, sock: zmq.Socket) -> None:
        """Make `sock` (before it binds) a CURVE server."""
        if not (self.directory / "server.key_secret").exists():
            raise FileNotFoundError(f"{self.directory} has no server.key_secret: an actor that binds a documented "
                                    "queue needs the server's secret key")
        public, secret = self.keypair("server")
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_server = True

    def connect_as(self, sock: zmq.Socket, client: str | Path = "actors") -> None:
        """Make `sock` (before it connects) a CURVE client, with our actors' key or a
        client's secret key file."""
        # the server's public key only: a client never needs (nor gets, from an export) its secret
        sock.curve_serverkey = zmq.auth.load_certificate(self.directory / "server.key")[0]
        if isinstance(client, Path):
            public, secret = zmq.auth.load_certificate(client)
        else:
            public, secret = self.keypair(client)
        sock.curve_publickey, sock.curve_secretkey = public, secret

    def allowed_keys(self) -> frozenset[bytes]:
        """The raw 32-byte public keys in `allowed/`: what a ZAP request carries, so that
        letting a client in is one set lookup."""
        from zmq.utils import z85
        return frozenset(z85.decode(key) for key in zmq.auth.load_certificates(self.allowed))


def from_security(security: dict[str, Any] | None) -> Curve | None:
    if not security or not security.get("curve"):
        return None
    return Curve(Path(security["curve"]))


def make_keys(directory: Path) -> None:
    """The server's and our actors' key pairs, and the allow-list with our actors in it."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    (directory / "allowed").mkdir(exist_ok=True)
    for name in ("server", "actors"):
        if not (directory / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(str(directory), name)
    shutil.copy(directory / "actors.key", directory / "allowed" / "actors.key")


def add_client(directory: Path, name: str) -> Path:
    """A key pair for a client, its public key allowed; returns its secret key file."""
    clients = directory / "clients"
    clients.mkdir(exist_ok=True)
    zmq.auth.create_certificates(str(clients), name)
    shutil.copy(clients / f"{name}.key", directory / "allowed" / f"{name}.key")
    return clients / f"{name}.key_secret"
