"""CURVE on the data sockets: who may speak to a topology.

`mroute keys DIR` makes a key directory: `server.key`/`server.key_secret` (every socket
that binds a documented queue or stream is a CURVE server with it), `actors.key`/
`actors.key_secret` (what our own actors and the CLI connect with) and `allowed/`, the
public keys of the clients let in (ours included). `mroute keys DIR --client NAME` adds a
client: `clients/NAME.key_secret` to hand to it, its public key into `allowed/`. A client
with no key, or a key not in `allowed/`, gets nothing through: the handshake fails and
ZeroMQ drops what it sends. The topology names the directory: `security: {curve: DIR}`.

A key is also who its holder is (protocol.md 1.2): the ZAP handler of a bound socket gives
each connection the name of its key (the file's name in `allowed/`), and the actor holds
what the connection sends to that name. `actors` is our own actors' and the operator's
(Comm, the GC, the CLI); `mre` is the MRE's, the only one Comm takes decisions from; a
client key `NAME` may use the destinations `NAME` and `NAME.*` only. A simulated Chat
Server connects with the client key of its actor (`clients/chat.key_secret` for the actor
`chat`, its instances being the destinations chat.1, chat.2, ...), never with `actors`.
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
        return self.load(self.directory / f"{name}.key_secret")

    def load(self, path: Path) -> tuple[bytes, bytes]:
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: make the keys with `mroute keys {self.directory}`"
                                    + (" (a Chat Server actor's key is made when its topology starts)"
                                       if path.parent.name == "clients" else ""))
        public, secret = zmq.auth.load_certificate(path)
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
            public, secret = self.load(client)
        else:
            public, secret = self.keypair(client)
        sock.curve_publickey, sock.curve_secretkey = public, secret

    def allowed_keys(self) -> dict[bytes, str]:
        """The raw 32-byte public keys in `allowed/` (what a ZAP request carries, so that
        letting a client in is one lookup), each to the name of its holder."""
        return allowed_names(self.allowed)

    def client_key(self, name: str) -> Path:
        return self.directory / "clients" / f"{name}.key_secret"


def from_security(security: dict[str, Any] | None) -> Curve | None:
    if not security or not security.get("curve"):
        return None
    return Curve(Path(security["curve"]))


ACTORS, MRE = "actors", "mre"   # the names of our own actors' keys (module docstring)
OWN_KEYS = ("server", ACTORS, MRE)


def allowed_names(allowed: Path) -> dict[bytes, str]:
    """Raw public key -> its name, for each `NAME.key` in an allow-list directory."""
    from zmq.utils import z85
    names = {}
    for path in sorted(allowed.glob("*.key")):
        public, _ = zmq.auth.load_certificate(path)
        names[z85.decode(public)] = path.name[:-len(".key")]
    return names


def make_keys(directory: Path) -> None:
    """The server's, our actors' and the MRE's key pairs, and the allow-list with our
    actors and the MRE in it (what is there already is kept)."""
    if not directory.exists():
        directory.mkdir(parents=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)
    (directory / "allowed").mkdir(exist_ok=True)
    for name in OWN_KEYS:
        if not (directory / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(str(directory), name)
    for name in (ACTORS, MRE):
        if not (directory / "allowed" / f"{name}.key").exists():
            shutil.copy(directory / f"{name}.key", directory / "allowed" / f"{name}.key")


def ensure_clients(directory: Path, names: list[str]) -> list[str]:
    """A client key for each of `names` that has none yet (the simulated Chat Servers'
    actors): returns the names it made keys for."""
    made = []
    for name in names:
        if not (directory / "clients" / f"{name}.key_secret").exists():
            add_client(directory, name)
            made.append(name)
    return made


def add_client(directory: Path, name: str) -> Path:
    """A key pair for a client, its public key allowed; returns its secret key file. The
    names of our own keys are not a client's: such a client would be us."""
    if name in OWN_KEYS:
        raise ValueError(f"{name!r} is the name of one of our own keys: choose another for a client")
    clients = directory / "clients"
    clients.mkdir(exist_ok=True)
    zmq.auth.create_certificates(str(clients), name)
    shutil.copy(clients / f"{name}.key", directory / "allowed" / f"{name}.key")
    return clients / f"{name}.key_secret"
