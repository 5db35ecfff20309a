"""The fleet a load drives: simulated Chat Servers spawned for the run (the topology
file's Comm, MRE and GC with a chat actor of N servers x M agents, in a run directory of
its own, under a supervisor in this process), or those of a topology already running
(`--attach`), told through its supervisor."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from wire import passwords

if TYPE_CHECKING:
    from .plan import LoadPlan


class Fleet:
    chats: list[str]

    def stats(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def tell(self, body: dict[str, Any]) -> None:
        """Give every chat server the same `load` settings."""
        raise NotImplementedError

    def tell_gc(self, body: dict[str, Any]) -> dict[str, Any]:
        """Give the GC `load` settings (its callers' rates and talk, its phones' auto answer:
        actors/gc/callers.py); answers all of them. The first time, what it had is kept to be
        given back on `close`, where the fleet outlives the run."""
        raise RuntimeError("this fleet reaches no Generic Connector: voice calls need a topology's gc actor")

    def pids(self) -> dict[str, int]:
        raise NotImplementedError

    def wait(self, seconds: float) -> bool:
        """Let `seconds` pass (serving the supervisor if we host it); False when interrupted."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def fleet_topology(base_file: Path, directory: Path, servers: int, agents_per_server: int,
                   plan: LoadPlan, rate_per_server: float = 0.0) -> Path:
    """The base topology's MRDs, queues, agents and non-chat actors, with one chat actor of
    `servers` x `agents_per_server` (directory agents added when it has too few), in a run
    directory of its own so that it never meets a topology already running."""
    from ..topology import load
    raw = yaml.safe_load(base_file.read_text()) or {}
    base = load(base_file)
    have = len(base.agents)
    actors = {name: spec for name, spec in (raw.get("actors") or {}).items() if spec.get("role") != "chat"}
    chats = [spec for spec in (raw.get("actors") or {}).values() if spec.get("role") == "chat"]
    mrd = next((spec["mrd"] for spec in chats if spec.get("mrd")), "chat")
    # the base's Chat Servers' throttle (0: off) is how the fleet's treat Comm's refusals too
    throttle = {"throttle": chats[0]["throttle"]} if chats and "throttle" in chats[0] else {}
    # the scenario's hook, else the base's Chat Servers' (made absolute when the base was read)
    hook = plan.hook or next((s["hook"] for s in base.actors.values() if s["role"] == "chat" and s.get("hook")), None)
    actors["chat"] = {"role": "chat", "count": servers, "agents": agents_per_server, "rate": rate_per_server,
                      "mrd": mrd, **throttle, **{k: v for k, v in plan.settings().items() if v is not None},
                      **({"hook": hook} if hook else {})}
    agents = [passwords.hashed_entry(entry) for entry in raw.get("agents") or []]  # the file we write holds no password
    if servers * agents_per_server > have:
        agents.append({"generate": {"count": servers * agents_per_server - have, "prefix": "load",
                                    "password_hash": passwords.hash_password(LOAD_PASSWORD)}})
    spec = {**raw, "name": f"load-{os.getpid()}", "run_dir": str(directory / "run"), "agents": agents,
            "actors": actors}
    # ipc in our own run directory, on this machine: nothing shared with a running topology
    for key in ("endpoints", "transport", "port_base", "hosts"):
        spec.pop(key, None)
    for actor in actors.values():
        actor.pop("host", None)
    spec.pop("metrics", None)        # the topology's own scrape target may be serving (and a fleet serves none)
    spec.pop("security", None)
    if base.security:  # the same keys, wherever the fleet's file is written
        spec["security"] = base.security
    path = directory / "topology.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


LOAD_PASSWORD = "load-secret"  # the agents a fleet adds to the directory


def desked_by_running(topology: Any, servers: int | None = None) -> int:
    """How many of the directory's agents, from the top, a running topology's Chat Servers
    desk (--attach: `servers` rescales the actor named chat)."""
    return sum((servers if name == "chat" and servers is not None else spec.get("count", 1)) * spec.get("agents", 0)
               for name, spec in topology.actors.items() if spec.get("role") == "chat")


class SpawnedFleet(Fleet):
    """Our own supervisor, in this process: its actors die with us (parent-death signal)."""

    def __init__(self, base_file: Path, servers: int, agents_per_server: int, plan: LoadPlan,
                 rate_per_server: float = 0.0):
        """`rate_per_server` is what a server starts with, also when it is restarted."""
        from ..supervisor import Supervisor
        from ..topology import load
        self.directory = Path(tempfile.mkdtemp(prefix="mroute-load-"))
        try:
            self.topology = load(fleet_topology(base_file, self.directory, servers, agents_per_server, plan,
                                                rate_per_server))
            # the passwords, in memory only: the supervisor hands them to the Chat Servers
            plain = {a["id"]: a["password"] for a in load(base_file).agents if "password" in a}
            for agent in self.topology.agents:
                agent.setdefault("password", plain.get(agent["id"], LOAD_PASSWORD))
            # no metrics port: it would be a free one no scraper knows, and a process of its
            # own beside the fleet being measured; the run's figures are in its report
            self.supervisor = Supervisor(self.topology, fresh=True, serve_metrics=False)
            self.supervisor.claim()
            self.supervisor.start()
            self.chats = [name for name, role in self.topology.instances() if role == "chat"]
            self.wait_for_agents(agents_per_server)
        except BaseException:
            self.close()
            raise

    def wait_for_agents(self, agents_per_server: int, timeout: float = 30.0) -> None:
        """Agents log in and go READY before the clock starts (bounded: report what came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if all(stats.get(c, {}).get("agents_ready", 0) >= stats.get(c, {}).get("agents", agents_per_server)
                   for c in self.chats):
                return
            if not self.wait(0.1):
                return

    def stats(self) -> dict[str, dict[str, Any]]:
        return self.supervisor.stats_now()

    def tell(self, body: dict[str, Any]) -> None:
        results = self.supervisor.ask_now(set(self.chats), "load", body)
        refused = {name: r["error"] for name, r in results.items() if "error" in r}
        if refused:
            raise RuntimeError(f"chat servers refused {body}: {refused}")

    def tell_gc(self, body: dict[str, Any]) -> dict[str, Any]:
        """(The GC dies with the fleet: nothing to give back.)"""
        names = {name for name, role in self.topology.instances() if role == "gc"}
        if not names:
            raise RuntimeError("the fleet runs no gc actor: voice calls need one")
        results = self.supervisor.ask_now(names, "load", body)
        answer = results.get(next(iter(names)), {"error": "no answer"})
        if "error" in answer:
            raise RuntimeError(f"the GC refused {body}: {answer['error']}")
        return answer

    def pids(self) -> dict[str, int]:
        pids = {c.name: c.pid for c in self.supervisor.children.values() if c.pid is not None}
        return {**pids, "supervisor+driver": os.getpid()}

    def wait(self, seconds: float) -> bool:
        self.supervisor.loop.run(timeout=seconds)
        return not self.supervisor.loop.stop_reason

    def close(self, keep: bool = False) -> None:
        """Stop the fleet and remove its directory, unless `keep` (its logs explain a failure)."""
        supervisor = getattr(self, "supervisor", None)
        if supervisor is not None:
            supervisor.stop()
            supervisor.close()
        topology = getattr(self, "topology", None)
        if topology is not None and topology.sock_dir != topology.run_dir:  # the short socket directory
            shutil.rmtree(topology.sock_dir, ignore_errors=True)
        if not keep:
            shutil.rmtree(self.directory, ignore_errors=True)


class RemoteFleet(Fleet):
    """Chat servers that run elsewhere: the driver only paces itself between its looks."""

    def wait(self, seconds: float) -> bool:
        try:
            time.sleep(seconds)  # pacing the driver; nothing to wait for
        except KeyboardInterrupt:
            return False
        return True


STALL_WAIT_S = 30.0   # seconds --attach waits for a supervisor that has stopped answering


class AttachedFleet(RemoteFleet):
    """The chat servers of a topology someone else started (`mroute up`). Each request to
    its supervisor waits up to STALL_WAIT_S, saying so while it waits: the actors go on
    routing while their supervisor stalls (issue 24: SIGSTOPped for 20 s), so the run does
    too, and the servers always get their settings back (`close`)."""

    def __init__(self, topology: Any, servers: int | None, say: Callable[[str], None] | None = None):
        from .. import client
        self.topology, self.client = topology, client
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.settings: dict[str, dict[str, Any]] = {}
        if servers is not None:
            self.ask("scale", {"name": "chat", "count": servers}, timeout=60, what="scaling the Chat Servers")
        actors = self.ask("status", {}, what="the actors' states")["actors"]
        self.chats = [a["name"] for a in actors if a["role"] == "chat" and a["state"] == "RUNNING"]
        if not self.chats:
            raise RuntimeError(f"topology {topology.name!r} runs no chat server to drive")
        self.status_pids = {a["name"]: a["pid"] for a in actors if a.get("pid")}
        # What each server was doing, to give it back when we are done.
        for name in self.chats:
            self.settings[name] = self.ask("ask", {"name": name, "verb": "load", "body": {}},
                                           what=f"{name}'s settings")["actors"][name]
        self.gc_settings: dict[str, Any] | None = None   # the GC's, once a voice run changes them

    def tell_gc(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.gc_settings is None:
            self.gc_settings = self.ask("ask", {"role": "gc", "verb": "load", "body": {}}, what="the GC's settings")
        return self.ask("ask", {"role": "gc", "verb": "load", "body": body}, what="telling the GC the calls' rate")

    def ask(self, verb: str, body: dict[str, Any], timeout: float = STALL_WAIT_S, what: str = "") -> dict[str, Any]:
        began, said = time.monotonic(), []

        def waiting(seconds: float) -> None:
            said.append(seconds)
            self.say(f"the supervisor of {self.topology.name!r}{self.client.condition(self.topology)} has not "
                     f"answered for {seconds:.0f} s ({what or verb}); waiting up to {timeout:.0f} s: the actors "
                     "go on meanwhile")
        answer = self.client.ask(self.topology, verb, body, timeout=timeout, command="load", waiting=waiting)
        if said:
            self.say(f"the supervisor answered after {time.monotonic() - began:.0f} s: going on")
        return answer

    def stats(self) -> dict[str, dict[str, Any]]:
        return self.ask("stats", {}, what="the actors' stats")["actors"]

    def tell(self, body: dict[str, Any]) -> None:
        self.ask("ask", {"name": "chat", "verb": "load", "body": body}, what="telling the Chat Servers the rate")

    def pids(self) -> dict[str, int]:
        return {**self.status_pids, "driver": os.getpid()}

    def close(self) -> None:
        """Give every server the settings it had, however the run ended. Each waits through a
        stalled supervisor; a Ctrl-C meanwhile is said and the giving back goes on; a second
        one leaves the servers not yet done as they are, naming them."""
        left, interrupted = dict(self.settings), False
        if self.gc_settings is not None:
            left["gc"] = self.gc_settings
        while left:
            name, settings = next(iter(left.items()))
            restore = {k: v for k, v in settings.items() if k != "run"}
            asked = {"role": "gc"} if name == "gc" else {"name": name}   # (an instance's name is NAME.N)
            try:
                self.ask("ask", {**asked, "verb": "load", "body": restore}, what=f"giving {name} its settings "
                         "back")
            except KeyboardInterrupt:
                if interrupted:
                    theirs = {n: {k: v for k, v in s.items() if k != "run"} for n, s in left.items()}
                    self.say(f"left {', '.join(left)} with the load's settings (theirs were {theirs})")
                    raise
                interrupted = True
                self.say("giving the Chat Servers (and the GC) their settings back first: Ctrl-C again to leave "
                         "them as they are")
                continue   # asked again: the same settings twice change nothing
            except self.client.NotRunning as exc:
                self.say(f"could not give {', '.join(left)} their settings back: {exc}")
                return
            except self.client.NoAnswer as exc:
                self.say(f"could not give {name} its settings back ({restore}): {exc}")
            del left[name]


# Reading the fleet ---------------------------------------------------------------------------------


class PodsFleet(RemoteFleet):
    """Actors run by an orchestrator (`mroute actor`), reached on their health ports: each
    address is `host:port`, and a name that resolves to several addresses (a headless
    Service: `local-chat:8080`) stands for every pod behind it. Chat Servers are driven;
    a Comm among them gives the queue's figures."""

    def __init__(self, addresses: list[str], token: str | None = None, timeout: float = 5.0):
        from concurrent.futures import ThreadPoolExecutor
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        urls = sorted({url for address in addresses for url in pod_urls(address)})
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(32, len(urls))))
        self.urls: dict[str, str] = {}   # instance name -> its health port's URL
        self.roles: dict[str, str] = {}
        for url, answer in zip(urls, self.pool.map(lambda u: self.call(u, "/stats"), urls)):
            if "error" in answer:
                raise RuntimeError(f"{url}: {answer['error'].get('reason')}")
            self.urls[answer["name"]] = url
            self.roles[answer["name"]] = answer["role"]
        self.chats = sorted(name for name, role in self.roles.items() if role == "chat")
        if not self.chats:
            raise RuntimeError(f"no Chat Server among the pods at {', '.join(addresses)}")
        # What each server was doing, to give it back when we are done.
        self.settings: dict[str, dict[str, Any]] = {}
        for name, answer in self.each("/load", {}, self.chats).items():
            if "error" in answer:
                raise RuntimeError(f"{name} ({self.urls[name]}): {answer['error'].get('reason')}")
            self.settings[name] = answer["answer"]

    def call(self, url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        import orjson
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET",
                                         headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return orjson.loads(answer.read())
        except urllib.error.HTTPError as err:
            try:
                return orjson.loads(err.read())
            except orjson.JSONDecodeError:
                return {"error": {"reason": f"HTTP {err.code}"}}
        except OSError as exc:
            return {"error": {"reason": str(exc)}}

    def each(self, path: str, body: dict[str, Any] | None = None, names: list[str] | None = None) -> dict[str, Any]:
        names = list(self.urls) if names is None else names
        return dict(zip(names, self.pool.map(lambda n: self.call(self.urls[n], path, body), names)))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: answer.get("answer", answer) for name, answer in self.each("/stats").items()}

    def tell(self, body: dict[str, Any]) -> None:
        refused = {name: a["error"] for name, a in self.each("/load", body, self.chats).items() if "error" in a}
        if refused:
            raise RuntimeError(f"chat servers refused {body}: {refused}")

    def pids(self) -> dict[str, int]:
        return {"driver": os.getpid()}   # the pods' processes are on other machines

    def close(self) -> None:
        for name, settings in self.settings.items():
            restore = {k: v for k, v in settings.items() if k != "run"}
            answer = self.call(self.urls[name], "/load", restore)
            if "error" in answer:
                print(f"could not give {name} its settings back: {answer['error']}", file=sys.stderr)
        self.pool.shutdown()


def pod_urls(address: str) -> list[str]:
    """`host:port` -> the URL of every address the host resolves to."""
    import socket
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RuntimeError(f"{address!r} is not host:port")
    try:
        found = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RuntimeError(f"{host}: {exc.strerror}")
    return [f"http://[{ip}]:{port}" if ":" in ip else f"http://{ip}:{port}"
            for ip in dict.fromkeys(info[4][0] for info in found)]
