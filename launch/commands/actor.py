"""`mroute actor NAME`: one actor instance in the foreground, for an orchestrator
(launch/pod/). NAME is an instance (`comm.1`, `chat.3`), an actor of one instance
(`mre`), or a StatefulSet pod's name (`local-chat-2`, or `chat-2`, is chat.3), so that a
pod's manifest can say `$(POD_NAME)`."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from pathlib import Path

import click

from wire.kernel.loop import die_with_parent
from wire.desking import desk_range
from wire.jsonlog import JsonLines

from ..export.plan import object_name
from ..pod.runner import PodRunner
from ..topology import SINGLETONS, Topology
from .common import load_or_exit, topology_option

POD_NAME = re.compile(r"^(?P<actor>.+)-(?P<ordinal>\d+)$")


def instance_of(topology: Topology, name: str) -> tuple[str, str, int]:
    """(actor, role, index) that NAME stands for; a UsageError says why it stands for none."""
    actor, _, number = name.rpartition(".")
    pod = POD_NAME.match(name)
    by_object = {object_name(topology.name, a): a for a in topology.actors}
    if actor and number.isdigit():
        index = int(number)
    elif pod and (pod["actor"] in topology.actors or pod["actor"] in by_object):
        actor, index = by_object.get(pod["actor"], pod["actor"]), int(pod["ordinal"]) + 1
    else:
        actor, index = name, 1
    spec = topology.actors.get(actor)
    if spec is None or index < 1:
        raise click.UsageError(f"{name!r} is no actor instance of topology {topology.name!r} "
                               f"(actors: {', '.join(topology.actors)}; e.g. {next(iter(topology.actors))}.1)")
    if spec["role"] in SINGLETONS and index != 1:
        raise click.UsageError(f"{actor} binds the documented queues: it runs one instance, {actor}.1")
    return actor, spec["role"], index


def refusal(topology: Topology, actor: str, index: int) -> str:
    """Why a Chat Server instance cannot start here ("" if it can): the orchestrator may
    run more replicas than the topology's count (`kubectl scale`), but not past the
    directory, and only of the last chat actor (an earlier one's would desk a later one's
    agents)."""
    spec = topology.actors[actor]
    if spec["role"] != "chat":
        return ""
    chats = [name for name, s in topology.actors.items() if s["role"] == "chat"]
    if index > spec["count"] and actor != chats[-1]:
        return (f"{actor}.{index}: {actor} has {spec['count']} instances in the topology, and only the last chat "
                f"actor ({chats[-1]}) may run more: {actor}.{index} would desk {chats[chats.index(actor) + 1]}'s agents")
    span = desk_range(topology.actors, actor, index)
    if span.stop > len(topology.agents):
        fits = max(0, (len(topology.agents) - desk_range(topology.actors, actor, 1).start) // max(1, len(span)))
        return (f"{actor}.{index} would desk {max(0, len(topology.agents) - span.start)} of its {len(span)} agents: "
                f"the directory has {len(topology.agents)}; run at most {fits} instances of {actor}")
    return ""


@click.command("actor")
@click.argument("name")
@topology_option()
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="where its state lives (Comm's journal)  [default: the topology's run_dir]")
@click.option("--health-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="serve /healthz, /readyz, /metrics and /drain on this port (0: a free one)")
@click.option("--health-host", default="127.0.0.1", show_default=True,
              help="the address the health port binds (0.0.0.0 in a pod, for the kubelet's probes)")
@click.option("--health-name", "health_names", multiple=True, metavar="NAME",
              help="a name the health port is reached by besides its address (NAME, or NAME:PORT for a port "
                   "mapped elsewhere); a request by any other Host is refused (repeatable)")
@click.option("--control-token-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="a file holding the token that lets other hosts read /stats and POST /load")
@click.option("--bind-any", is_flag=True,
              help="bind tcp endpoints on every interface (their host names a Service, not this machine)")
@click.option("--drain-timeout", type=click.FloatRange(0), default=20.0, show_default=True,
              help="seconds /drain waits for a Chat Server's chats under way to end")
@click.option("--log-json", is_flag=True, help="log lines as JSON objects (the actor's and the runner's)")
def actor(name: str, file: str, run_dir: str | None, health_port: int | None, health_host: str,
          health_names: tuple[str, ...], control_token_file: str | None, bind_any: bool, drain_timeout: float,
          log_json: bool) -> None:
    """Run one actor instance in the foreground, without a supervisor, for an orchestrator
    (Kubernetes, compose, systemd): it restarts the process, this one ends with it.

    Exits 0 when stopped by TERM or INT, 1 when the actor fails to start (the reason is
    logged), stops answering, or exits by itself with a failure."""
    topology = load_or_exit(file)
    actor_name, role, index = instance_of(topology, name)
    setup_logging(f"{actor_name}.{index}", log_json)
    if os.getppid() > 1:  # started by a shell or a test, not as a container's first process:
        die_with_parent(os.getppid(), signal.SIGTERM)   # we stop with it, and so does the actor
    why = refusal(topology, actor_name, index)
    if why:
        logging.getLogger("mroute.pod").error("not starting: %s", why)
        sys.exit(1)
    runner = PodRunner(topology, f"{actor_name}.{index}", role, Path(run_dir) if run_dir else topology.run_dir,
                       log_json=log_json, bind_any=bind_any)
    token = Path(control_token_file).read_text().strip() if control_token_file else None
    server = None
    if health_port is not None:
        from ..pod import healthport   # aiohttp: imported by who serves the port, not by every mroute verb
        try:
            server = healthport.serve(health_host, health_port, runner, drain_timeout, token, health_names)
        except OSError as exc:
            logging.getLogger("mroute.pod").error("not starting: cannot serve health on %s:%d: %s", health_host,
                                                  health_port, exc.strerror)
            sys.exit(1)
        logging.getLogger("mroute.pod").info("%s.%d: health on http://%s:%d/ (/healthz /readyz /metrics, POST /drain)",
                                             actor_name, index, health_host, server.server_port)
    try:
        code = runner.run()
    finally:
        if server is not None:
            server.close()
    sys.exit(code)


def setup_logging(name: str, log_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_json:
        handler.setFormatter(JsonLines(name))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
