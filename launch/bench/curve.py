"""`mroute bench curve`: what a storm of clients with a wrong CURVE key costs Comm and the
honest clients. Figures, never pass/fail.

A topology of the file's Comm and MRE on tcp with `security: {curve}` (fresh keys in a
directory of its own) runs under `mroute up` in a child process. An honest client with an
allowed key asks Comm `GetAgentState`, one request at a time, and times each answer: at
rest, then while another process keeps N sockets knocking with a wrong key, each again
every `period_ms`: an unknown client key (`client`: the key exchange succeeds, the ZAP
handler refuses; libzmq takes that refusal as final, so the storm replaces each socket as a
retrying client would) or the wrong server key (`server`: libzmq refuses at HELLO, before
ZAP, and the client's libzmq retries by itself). During the storm a new honest client also
times its first answer (its handshakes queue with the storm's). Comm's CPU seconds during
the storm are read from /proc per thread: the actor's loop (main), ZeroMQ's I/O thread (the
TCP and CURVE work of every handshake) and the rest (the ZAP handler's thread).

On one machine the storm's process takes cores that a real storm, from elsewhere, would
not: it runs at niceness 19 by default, so that it gets what Comm and the honest client
leave."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
import zmq
import zmq.auth

from wire.catalogue import ENDPOINT_NAMES
from wire.codec import unbatch
from wire.curve import add_client, make_keys


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each kind of thread of `pid`: main (the actor's loop), zmq (ZeroMQ's
    I/O and reaper threads, named ZMQbg/...), other (Python threads: the ZAP handler's)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"main": 0.0, "zmq": 0.0, "other": 0.0}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a thread that ended meanwhile
            continue
        kind = "main" if task.name == str(pid) else "zmq" if name.startswith("ZMQbg") else "other"
        out[kind] += (int(fields[11]) + int(fields[12])) / tick
    return out


def _storm(endpoint: str, server_public: bytes, count: int, seconds: float, period_ms: int, kind: str,
           nice: int, parent: int, started: Any, opened: Any) -> None:
    """In a process of its own: `count` sockets that present a wrong key for `seconds`.
    A socket with the wrong server key knocks again by itself every RECONNECT_IVL (libzmq
    retries a handshake that failed at HELLO); one with an unknown client key is told ERROR
    and gives up (libzmq 4.3 takes it as final), so the storm replaces it every `period_ms`,
    as a client that retries would."""
    from wire.kernel.loop import die_with_parent
    die_with_parent(parent)
    os.nice(nice)  # a storm's CPU is someone else's: here it takes what Comm and the honest client leave
    ctx = zmq.Context()
    ctx.max_sockets = 30_000  # closed sockets are reaped behind our back: more than `count` exist
    public, secret = zmq.curve_keypair()  # a key pair nobody allowed
    server = zmq.curve_keypair()[0] if kind == "server" else server_public

    def knock() -> zmq.Socket:
        sock = ctx.socket(zmq.PUSH)
        sock.linger = 0
        sock.reconnect_ivl = period_ms
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server, public, secret
        sock.connect(endpoint)
        return sock

    socks: list[zmq.Socket | None] = [knock() for _ in range(count)]
    opened.value = count
    started.set()
    end = time.monotonic() + seconds
    # each socket is replaced `period_ms` after the last time, spread evenly: a steady
    # storm, not a burst of `count` every period
    per_slice = max(1, count // 100)
    slice_s = period_ms / 1000 / (count / per_slice)
    next_at, i = time.monotonic(), 0
    while kind == "client" and time.monotonic() < end:
        next_at += slice_s
        time.sleep(max(0.0, next_at - time.monotonic()))
        for _ in range(per_slice):
            old, socks[i] = socks[i], None
            if old is not None:
                old.close(0)
            try:
                socks[i] = knock()
                opened.value += 1
            except zmq.ZMQError:  # out of sockets or descriptors until the reaper catches up
                pass
            i = (i + 1) % count
    time.sleep(max(0.0, end - time.monotonic()))
    for sock in socks:
        if sock is not None:
            sock.close(0)
    ctx.term()


class Honest:
    """A client with an allowed key: GetAgentState to General, the answer on ChatEvents."""

    def __init__(self, endpoints: dict[str, str], server_public: bytes, key_file: Path, agent: str):
        public, secret = zmq.auth.load_certificate(key_file)
        self.ctx = zmq.Context()
        self.push, self.sub = self.ctx.socket(zmq.PUSH), self.ctx.socket(zmq.SUB)
        for sock in (self.push, self.sub):
            sock.linger = 0
            sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret
        self.push.connect(endpoints["General"])
        self.sub.connect(endpoints["ChatEvents"])
        self.sub.setsockopt(zmq.SUBSCRIBE, b"bench.desk\x00")
        self.agent = agent
        self.n = 0

    def ask(self, timeout: float = 5.0) -> float | None:
        """One GetAgentState round trip in ms, or None when no answer came within `timeout`."""
        self.n += 1
        msg_id = f"bench-{self.n}"
        body = {"AgentId": self.agent, "Mrd": "chat", "MsgId": msg_id, "ReplyTo": "bench.desk"}
        sent = time.perf_counter()
        self.push.send_multipart([b"GetAgentState", orjson.dumps(body)])
        deadline = sent + timeout
        while (left := deadline - time.perf_counter()) > 0:
            if not self.sub.poll(left * 1000):
                break
            if any(orjson.loads(frames[-1]).get("MsgId") == msg_id for frames in unbatch(self.sub.recv_multipart())):
                return (time.perf_counter() - sent) * 1000
        return None

    def round_trips(self, seconds: float, pause_s: float = 0.002) -> tuple[list[float], int]:
        """Round trips for `seconds`, one at a time with a short pause between (a client that
        asks now and then, not a flood); returns them and how many went unanswered."""
        rtts, lost = [], 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            rtt = self.ask()
            if rtt is None:
                lost += 1
            else:
                rtts.append(rtt)
            time.sleep(pause_s)  # pacing the client, not waiting for a condition
        return rtts, lost

    def close(self) -> None:
        self.push.close()
        self.sub.close()
        self.ctx.term()


def joining(endpoints: dict[str, str], server_public: bytes, key_file: Path, agent: str,
            timeout: float) -> float | None:
    """How long a new honest client takes, during the storm, from connecting to its first
    answer (its handshakes wait at the same door as the storm's), or None past `timeout`."""
    started = time.perf_counter()
    newcomer = Honest(endpoints, server_public, key_file, agent)
    try:
        while time.perf_counter() - started < timeout:
            if newcomer.ask(timeout=0.05) is not None:
                return round((time.perf_counter() - started) * 1000, 1)
        return None
    finally:
        newcomer.close()


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    values = sorted(values)
    return {"p50": round(values[len(values) // 2], 2), "p99": round(values[min(len(values) - 1,
                                                                              int(len(values) * 0.99))], 2),
            "n": len(values)}


def bench_topology(base_file: Path, directory: Path, keys: Path) -> dict[str, Any]:
    """The file's MRDs, queues and agents (hashed) with its Comm and MRE only, on tcp."""
    from wire.passwords import hashed_entry as hashed
    raw = yaml.safe_load(base_file.read_text()) or {}
    actors = {name: spec for name, spec in (raw.get("actors") or {}).items() if spec.get("role") in ("comm", "mre")}
    ports = free_ports(len(ENDPOINT_NAMES))
    return {**{k: v for k, v in raw.items() if k in ("mrds", "queues", "supervisor")},
            "name": f"curvebench-{os.getpid()}", "run_dir": str(directory / "run"), "transport": "tcp",
            "endpoints": {name: f"tcp://127.0.0.1:{port}" for name, port in zip(ENDPOINT_NAMES, ports)},
            "agents": [hashed(entry) for entry in raw.get("agents") or []],
            "actors": actors or {"comm": {"role": "comm"}, "mre": {"role": "mre"}},
            "security": {"curve": str(keys)}}


def curve_storm(base_file: Path, sockets: int = 1500, seconds: float = 3.0, period_ms: int = 100, kind: str = "client", nice: int = 19) -> dict[str, Any]:
    """Honest GetAgentState round trips at rest and under a wrong-key storm (see above)."""
    import multiprocessing

    from .. import client
    from ..topology import load
    directory = Path(tempfile.mkdtemp(prefix="mroute-curve-"))
    keys = directory / "keys"
    make_keys(keys)
    honest_key = add_client(keys, "bench")
    spec = bench_topology(base_file, directory, keys)
    path = directory / "topology.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    topology = load(path)
    agent = topology.agents[0]["id"]
    up = subprocess.Popen([sys.executable, "-m", "launch.cli", "up", "-f", str(path), "--quiet"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    honest = storm = None
    try:
        assert up.stderr is not None
        line = up.stderr.readline().decode()
        if " is up " not in line:
            raise RuntimeError(f"the bench topology did not start: {line}{up.stderr.read().decode()[-2000:]}")
        comm_name, comm_pid = next((a["name"], a["pid"]) for a in client.ask(topology, "status")["actors"]
                                   if a["role"] == "comm")
        server_public = zmq.auth.load_certificate(keys / "server.key")[0]
        honest = Honest(topology.endpoints, server_public, honest_key, agent)
        if not any(honest.ask(timeout=0.1) is not None for _ in range(100)):  # until the SUB is live
            raise RuntimeError("the honest client got no answer: its subscription never went live")
        honest.round_trips(0.5)  # warm up: connections, caches
        rest, rest_lost = honest.round_trips(seconds)

        spawn = multiprocessing.get_context("spawn")
        started, opened = spawn.Event(), spawn.Value("q", 0)
        storm = spawn.Process(target=_storm, daemon=True,
                              args=(topology.endpoints["General"], server_public, sockets, seconds + 6.0,
                                    period_ms, kind, nice, os.getpid(), started, opened))
        storm.start()
        if not started.wait(60):
            raise RuntimeError("the storm's sockets were not made within 60 s")
        join_ms = joining(topology.endpoints, server_public, honest_key, agent, timeout=5.0)
        failures_before = auth_failures(client.ask(topology, "stats")["actors"].get(comm_name, {}))
        cpu_before, wall, opened_before = thread_cpu(comm_pid), time.perf_counter(), opened.value
        storm_cpu = sum(thread_cpu(storm.pid).values())
        stormy, storm_lost = honest.round_trips(seconds)
        cpu_after, wall, opened_during = thread_cpu(comm_pid), time.perf_counter() - wall, opened.value - opened_before
        storm_cpu = sum(thread_cpu(storm.pid).values()) - storm_cpu
        failures = auth_failures(client.ask(topology, "stats", timeout=10)["actors"].get(comm_name, {}))
        cpu = {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_before}
        return {"sockets": sockets, "storm_s": round(wall, 2), "kind": kind, "period_ms": period_ms, "storm_nice": nice,
                "sockets_opened": opened_during,
                "join_ms": join_ms, "rest_ms": percentiles(rest), "rest_unanswered": rest_lost,
                "storm_ms": percentiles(stormy), "storm_unanswered": storm_lost,
                "comm_cpu_s": round(sum(cpu.values()), 2), "comm_cpu_by_thread_s": cpu,
                "storm_cpu_s": round(storm_cpu, 2),
                "auth_failures": None if failures is None or failures_before is None else failures - failures_before}
    finally:
        if storm is not None and storm.pid is not None:
            storm.terminate()
            storm.join(5)
        if honest is not None:
            honest.close()
        up.send_signal(2)  # SIGINT: the supervisor stops its actors
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        if topology.sock_dir != topology.run_dir:
            shutil.rmtree(topology.sock_dir, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)


def auth_failures(stats: dict[str, Any]) -> int | None:
    """The actor's count of refused handshakes (None where it does not count them)."""
    value = stats.get("auth", {}).get("failures")
    return int(value) if value is not None else None
