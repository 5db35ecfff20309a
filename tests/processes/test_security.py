"""CURVE on tcp endpoints: only allowed keys get anything through."""

from __future__ import annotations

import json
import time

import zmq
import zmq.auth

from launch import client as control_client
from wire.catalogue import ENDPOINT_NAMES
from wire.curve import add_client, make_keys
from wire.passwords import hash_password

from launch.bench.curve import free_ports

from ..helpers import ChatClient, base_topology, wait_until


def tasks_created(running) -> int:
    return control_client.ask(running.topology, "stats")["actors"]["comm.1"]["tasks_created"]


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

    partner_keys = zmq.auth.load_certificate(partner)
    allowed = ChatClient(running.endpoints(), "partner.desk", curve=(server_public, *partner_keys))
    try:
        allowed.handshake()
        allowed.login("alice", "pw-alice", ready=False)  # nothing is routed: Comm hears nothing more
        msg_id = allowed.send("Task", {"Mrd": "chat", "ClientUniqueId": "c1"})
        assert allowed.expect("TaskState", MsgId=msg_id)["State"] == "QUEUED"
    finally:
        allowed.close()

    stranger = zmq.auth.load_certificate(tmp_path / "stranger.key_secret")
    for who, curve in (("no key", None), ("a stranger's key", (server_public, *stranger))):
        before = tasks_created(running)
        intruder = ChatClient(running.endpoints(), "intruder", curve=curve)
        try:
            for _ in range(10):
                intruder.send("GetAgentState", {"AgentId": "alice", "Mrd": "chat"})
                intruder.send("Task", {"Mrd": "chat", "ClientUniqueId": "sneaky"})
            assert not intruder.sub.poll(1500), f"a client with {who} heard something"
        finally:
            intruder.close()
        assert tasks_created(running) == before, f"a client with {who} got a Task through"


def curve_topology(name: str, keys) -> dict:
    spec = base_topology(name)
    spec["transport"] = "tcp"
    spec["endpoints"] = {name: f"tcp://127.0.0.1:{port}" for name, port in zip(ENDPOINT_NAMES, free_ports(6))}
    spec["security"] = {"curve": str(keys)}
    return spec


def knocker(ctx: zmq.Context, endpoint: str, curve: tuple[bytes, bytes, bytes] | None,
            reconnect_ms: int = 100) -> zmq.Socket:
    sock = ctx.socket(zmq.PUSH)
    sock.linger = 0
    sock.reconnect_ivl = reconnect_ms
    if curve is not None:
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = curve
    sock.connect(endpoint)
    return sock


def test_refused_handshakes_are_counted_in_stats_and_metrics_and_logged_a_line_at_a_time(start_topology, tmp_path):
    """Issue 14: a wrong key used to be refused in silence. Each kind is counted per actor
    (stats, metrics), and the log says who knocked, a line at a time however many knock."""
    import urllib.request
    keys = tmp_path / "keys"
    make_keys(keys)
    running = start_topology(curve_topology("guarded", keys))
    started = time.monotonic()
    server_public, _ = zmq.auth.load_certificate(keys / "server.key")
    general = running.endpoints()["General"]

    def refused() -> dict[str, int]:
        return control_client.ask(running.topology, "stats")["actors"]["comm.1"].get("auth", {}).get("by_reason", {})

    def refusal_lines() -> list[str]:
        log = running.topology.run_dir / "logs" / "comm.1.log"
        return [line for line in log.read_text().splitlines() if "CURVE handshake" in line]

    ctx = zmq.Context()
    try:
        # An unknown client key: the server's ERROR is final to libzmq, so each socket knocks once.
        stranger = (server_public, *zmq.curve_keypair())
        strangers = [knocker(ctx, general, stranger) for _ in range(40)]
        wait_until(lambda: refused().get("unknown_key", 0) >= 40, timeout=15,
                   what="40 unknown keys refused and counted")
        first = wait_until(refusal_lines, timeout=5, what="the refusal logged")[0]
        assert "refused 1 CURVE handshake: unknown client key from 127.0.0.1" in first, first
        # The wrong server key (libzmq retries it every 10 ms here) and no key at all are
        # refused by libzmq before ZAP: counted all the same.
        # The keyless client first, alone: libzmq mostly reports it as a mechanism mismatch
        # (no_curve), but on a loaded machine now and then as a handshake failure without
        # detail (bad_handshake, measured 2 of 5 with four busy processes): counted either way.
        no_key = knocker(ctx, general, None)
        wait_until(lambda: refused().get("no_curve", 0) + refused().get("bad_handshake", 0) >= 1, timeout=15,
                   what="the keyless client refused, counted")
        before = refused().get("bad_handshake", 0)  # (the keyless one may be among them)
        wrong_server = knocker(ctx, general, (zmq.curve_keypair()[0], *zmq.curve_keypair()), reconnect_ms=10)
        # (how many retries fit in the wait depends on the machine's load: a few prove the count)
        wait_until(lambda: refused().get("bad_handshake", 0) >= before + 5, timeout=15,
                   what="the wrong server key refused and counted")
        for sock in [*strangers, wrong_server, no_key]:
            sock.close(0)
    finally:
        ctx.destroy(0)

    stats = control_client.ask(running.topology, "stats")["actors"]["comm.1"]["auth"]
    assert stats["failures"] == sum(stats["by_reason"].values()) >= 46
    assert stats["accepted"] >= 1  # the MRE, with our actors' key, is let in
    # many refusals, few lines: the first at once, then one every 10 s at most
    assert len(refusal_lines()) <= 1 + (time.monotonic() - started) // 10 + 1

    metrics = json.loads(running.cli("status", "--json").stdout)["metrics"]

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(metrics, timeout=5) as answer:
            return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                    for line in answer.read().decode().splitlines() if line.startswith("mroute_auth")}
    def series_of(reason: str, actor: str = "comm.1", role: str = "comm") -> str:
        return f'mroute_auth_failures_total{{actor="{actor}",reason="{reason}",role="{role}"}}'

    def agreeing() -> dict[str, float] | None:
        """The metrics once they say what the stats say (stats are polled once scrapes come,
        and a refusal libzmq reports after the sockets closed may still be on its way)."""
        got = scrape()
        now = control_client.ask(running.topology, "stats")["actors"]["comm.1"]["auth"]["by_reason"]
        reasons = ("unknown_key", "no_curve", "bad_handshake")
        return got if all(got.get(series_of(r), 0) == now.get(r, 0) for r in reasons) else None
    series = wait_until(agreeing, timeout=15, what="the refusals in the metrics, as in the stats")
    assert series[series_of("unknown_key")] == 40
    assert series[series_of("no_curve")] + series[series_of("bad_handshake")] >= 6
    assert series[series_of("unknown_key", "mre.1", "mre")] == 0


def test_passwords_are_never_written_down_nor_logged(start_topology, chat_client):
    spec = base_topology("sealed", chat={"count": 1, "agents": 3, "rate": 5, "handle": 0.2, "think": [0, 0.05]})
    spec["agents"].append({"id": "carol", "password_hash": hash_password("pw-carol")})  # a file may hold only hashes
    running = start_topology(spec)
    desk = chat_client(running.endpoints(), "carol-desk")
    desk.handshake()
    desk.login("carol", "pw-carol")  # checked against the hash
    desk.send("Connect", {"AgentId": "alice", "Password": "wrong-guess", "Destination": "carol-desk", "MsgId": "bad"})
    assert desk.expect("Error", MsgId="bad")["Code"] == "AUTHORIZATION_FAILURE"
    wait_until(lambda: control_client.ask(running.topology, "stats")["actors"]["chat.1"]["closed"] > 0,
               timeout=15, what="the simulated Chat Server's agents to log in and close a task")
    run_dir = running.topology.run_dir
    assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
    written = [p for p in run_dir.rglob("*") if p.is_file() and not p.name.endswith(".ipc")]
    assert any(p.name == "topology.json" for p in written) and any(p.name.startswith("comm.sqlite") for p in written)
    for path in written:
        data = path.read_bytes()
        for secret in (b"pw-alice", b"pw-bob", b"secret", b"pw-carol", b"wrong-guess"):
            assert secret not in data, f"{secret!r} is in {path}"
    assert b"pbkdf2_sha256$" in (run_dir / "topology.json").read_bytes()


def test_a_topology_spread_over_two_hosts_routes_across_them(start_topology, tmp_path):
    """Two supervisors, one per host, each starting its share (`up --host`); the hosts are
    two loopback addresses of this machine."""
    spec = base_topology("spread", chat={"count": 2, "agents": 3, "rate": 10, "handle": 0.2, "think": [0, 0.05]})
    spec["transport"] = "tcp"
    spec["hosts"] = {"front": "127.0.0.1", "back": "127.0.0.2"}
    for name, host in (("comm", "back"), ("mre", "back"), ("chat", "front")):
        spec["actors"][name]["host"] = host
    # endpoints not given are on the binding actor's host; ports chosen free for this test
    ports = dict(zip(ENDPOINT_NAMES, free_ports(6)))
    spec["endpoints"] = {"GC": f"tcp://127.0.0.1:{ports['GC']}", "GCEvents": f"tcp://127.0.0.1:{ports['GCEvents']}"}
    spec["port_base"] = 1  # unused below: every endpoint with a binder is given
    spec["endpoints"].update({name: f"tcp://127.0.0.2:{ports[name]}"
                              for name in ("General", "CommunicationServer", "ChatEvents", "RoutingEngine")})
    directory = tmp_path / "spread"
    directory.mkdir()
    back = start_topology(spec, directory, host="back")
    front = start_topology(spec, directory, host="front")
    assert {a["name"] for a in back.status()["actors"]} == {"comm.1", "mre.1"}
    assert {a["name"] for a in front.status()["actors"]} == {"chat.1", "chat.2"}
    assert back.topology.run_dir != front.topology.run_dir
    assert back.topology.endpoints["General"].startswith("tcp://127.0.0.2:")
    wait_until(lambda: sum(s.get("closed", 0) for s in control_client.ask(front.topology, "stats")["actors"].values())
               >= 5, timeout=20, what="tasks from the front host routed and closed by the back host")
    status = front.cli("status", "--host", "front", "--json")
    assert status.returncode == 0 and len(json.loads(status.stdout)["actors"]) == 2
