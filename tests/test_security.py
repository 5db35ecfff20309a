"""CURVE on tcp endpoints: only allowed keys get anything through."""

from __future__ import annotations

import socket

import zmq
import zmq.auth

from launch import client as control_client
from wire.catalogue import ENDPOINT_NAMES
from wire.curve import add_client, make_keys

from .helpers import ChatClient, base_topology


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def received_by_comm(running) -> int:
    return control_client.ask(running.topology, "stats")["actors"]["comm.1"]["counters"]["received"]


def test_only_clients_with_an_allowed_key_get_through(start_topology, tmp_path):
    keys = tmp_path / "keys"
    make_keys(keys)
    partner = add_client(keys, "partner")
    zmq.auth.create_certificates(str(tmp_path), "stranger")  # a key pair nobody allowed
    assert oct((keys).stat().st_mode & 0o777) == "0o700"
    spec = base_topology("secure")
    spec["transport"] = "tcp"
    spec["endpoints"] = {name: f"tcp://127.0.0.1:{port}" for name, port in zip(ENDPOINT_NAMES, free_ports(6))}
    spec["security"] = {"curve": str(keys)}
    running = start_topology(spec)
    server_public, _ = zmq.auth.load_certificate(keys / "server.key")

    allowed = ChatClient(running.endpoints(), "partner-desk", curve=(server_public, *zmq.auth.load_certificate(partner)))
    try:
        allowed.handshake()
        allowed.login("alice", "pw-alice", ready=False)  # nothing is routed: Comm hears nothing more
        msg_id = allowed.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
        assert allowed.expect("TaskState", MsgId=msg_id)["State"] == "QUEUED"
    finally:
        allowed.close()

    for who, curve in (("no key", None),
                       ("a stranger's key", (server_public, *zmq.auth.load_certificate(tmp_path / "stranger.key_secret")))):
        before = received_by_comm(running)
        intruder = ChatClient(running.endpoints(), "intruder", curve=curve)
        try:
            for _ in range(10):
                intruder.send("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})
                intruder.send("Task", {"Mrd": "chat", "ClientUniqueId": "sneaky"})
            assert not intruder.sub.poll(1500), f"a client with {who} heard something"
        finally:
            intruder.close()
        assert received_by_comm(running) == before, f"a client with {who} got a message through"
