"""The ZAP handler of a CURVE actor (actors/zap.py) over real sockets in one process: what
it refuses is counted and told in a line per `log_every`, each line with the count since
the one before; and it fails closed."""

from __future__ import annotations

import logging
import re
import time

import pytest
import zmq
from zmq.utils import z85

from actors.zap import Door

from ..helpers import wait_until


@pytest.fixture
def served():
    """A CURVE PULL behind a door that lets in `allowed`; closed after the test."""
    made = []

    def serve(log_every: float = 10.0):
        ctx = zmq.Context()
        server_public, server_secret = zmq.curve_keypair()
        allowed = zmq.curve_keypair()
        door = Door(ctx, "t.1", {z85.decode(allowed[0]): "allowed"}, log_every=log_every)
        door.start()
        pull = ctx.socket(zmq.PULL)
        pull.linger = 0
        pull.curve_server, pull.curve_publickey, pull.curve_secretkey = True, server_public, server_secret
        door.watch(pull)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        made.append((ctx, door, pull))
        return door, pull, f"tcp://127.0.0.1:{port}", server_public, allowed
    yield serve
    for ctx, door, pull in made:
        pull.close(0)
        door.stop()
        ctx.destroy(0)


def client(ctx: zmq.Context, endpoint: str, server: bytes, keys: tuple[bytes, bytes]) -> zmq.Socket:
    sock = ctx.socket(zmq.PUSH)
    sock.linger = 0
    sock.curve_serverkey, (sock.curve_publickey, sock.curve_secretkey) = server, keys
    sock.connect(endpoint)
    return sock


def test_every_refusal_is_in_one_line_and_lines_come_one_per_interval(served, caplog):
    caplog.set_level(logging.WARNING, logger="mroute")
    door, pull, endpoint, server, allowed = served(log_every=0.5)
    ctx = zmq.Context()
    try:
        knocking = [client(ctx, endpoint, server, zmq.curve_keypair()) for _ in range(30)]
        wait_until(lambda: door.failures == 30, timeout=10, what="30 unknown keys refused")
        friend = client(ctx, endpoint, server, allowed)
        friend.send(b"hello")
        assert pull.poll(5000) and pull.recv() == b"hello"  # an allowed key still gets in
        wait_until(lambda: sum(told(line) for line in refusals(caplog)) == 30, timeout=5,
                   what="the refusals since the first line told in the next")
        for sock in [*knocking, friend]:
            sock.close(0)
    finally:
        ctx.destroy(0)
    lines = refusals(caplog)
    assert 2 <= len(lines) < 30  # the first at once, the rest summed up
    assert lines[-1].startswith("t.1: refused ") and "unknown client key from 127.0.0.1" in lines[-1]
    assert door.stats() == {"failures": 30, "accepted": 1,
                            "by_reason": {"unknown_key": 30, "no_curve": 0, "bad_handshake": 0}}


def refusals(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "CURVE handshake" in record.getMessage()]


def told(message: str) -> int:
    found = re.match(r"t\.1: refused ([\d,]+) CURVE handshake", message)
    return int(found.group(1).replace(",", "")) if found else 0


def test_a_watched_socket_lets_nobody_in_once_its_door_is_gone(served):
    """Measured on libzmq 4.3.5: a CURVE server with no ZAP handler lets any key in, unless
    it has a ZAP domain and ZAP_ENFORCE_DOMAIN, as `watch` gives it."""
    door, pull, endpoint, server, allowed = served()
    door.stop()
    ctx = zmq.Context()
    try:
        friend = client(ctx, endpoint, server, allowed)
        stranger = client(ctx, endpoint, server, zmq.curve_keypair())
        friend.send(b"from a friend")
        stranger.send(b"from a stranger")
        deadline = time.monotonic() + 1.0  # how long we give a message that should not come
        while (left := deadline - time.monotonic()) > 0:
            assert not pull.poll(left * 1000), f"{pull.recv()!r} got in with no door"
    finally:
        ctx.destroy(0)
