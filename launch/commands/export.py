"""`mroute export kubernetes|compose|systemd`: what an orchestrator needs to run the
topology, written from the topology file (launch/export/)."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import Callable

import click

from ..export import compose as compose_export, kubernetes as kube_export, systemd as systemd_export
from ..export.plan import Plan, Workload, dump, make_plan
from ..topology import TopologyError
from .. import version
from .common import topology_option


def plan_or_exit(file: str, host_of: Callable[[Workload], str] | None = None) -> Plan:
    try:
        return make_plan(file, host_of)
    except TopologyError as exc:
        raise click.ClickException(str(exc))


def write_files(directory: str, files: dict[str, str], private: frozenset[str] = frozenset(),
                owner: tuple[int, int] | None = None) -> None:
    """Each file under `directory`; the private ones (passwords, keys) readable by us only,
    or by `owner` (uid, gid), given them with the directories made for them."""
    root = Path(directory)
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if path in private or path.startswith(("agents/", "curve/")) else 0o644
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)   # never readable by others, not even briefly
        os.fchmod(fd, mode)   # a file there before keeps its mode otherwise
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        click.echo(f"wrote {target}", err=True)
    if owner is not None:
        give_directories(root, [Path(path).parent for path in files], owner)


def give_directories(root: Path, paths: list[Path], owner: tuple[int, int]) -> None:
    """chown the directories under `root` that lead to `paths` (relative), not `root`: it
    may be anyone's (/srv), and its mode lets the owner in."""
    for path in paths:
        for part in [path, *path.parents][:-1]:
            os.chown(root / part, *owner)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:   # a uid with no name (a container's): systemd takes the number
        return str(uid)


@click.group("export")
def export() -> None:
    """Write the topology out for an orchestrator: Kubernetes, docker compose or systemd."""


@export.command("kubernetes")
@topology_option()
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), default=None,
              help="write one file per object, and a kustomization.yaml, into this directory  "
                   "[default: one stream on stdout]")
@click.option("--image", default=None, help="the image the pods run  [default: mroute:VERSION, as the README builds it]")
@click.option("--namespace", default="mroute", show_default=True,
              help="the namespace of every object (its manifest is among them)")
def kubernetes(file: str, output: str | None, image: str | None, namespace: str) -> None:
    """Manifests: the namespace, Comm as a StatefulSet with a journal volume, the MRE and
    the GC as Deployments, each chat actor as a StatefulSet of `count` replicas, Services, a
    ConfigMap with the topology, Secrets with the directory and the keys, NetworkPolicies
    and PodDisruptionBudgets."""
    plan = plan_or_exit(file)
    objects = kube_export.manifests(plan, image or f"mroute:{version()}", namespace)
    if output is None:
        sys.stdout.write("".join(f"---\n{dump(obj, flow=False)}" for obj in objects))
        return
    manifests = {f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml": obj
                 for i, obj in enumerate(objects, 1)}
    write_files(output, {**{name: dump(obj, flow=False) for name, obj in manifests.items()},
                         "kustomization.yaml": dump(kube_export.kustomization(list(manifests)), flow=False)},
                private=frozenset(name for name, obj in manifests.items() if obj["kind"] == "Secret"))


@export.command("compose")
@topology_option()
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), default="mroute-compose",
              show_default=True, help="the project's directory")
@click.option("--image", default=None, help="the image the services run  [default: mroute:VERSION]")
@click.option("--health-port-base", type=click.IntRange(1, 65000), default=9100, show_default=True,
              help="the host port (on 127.0.0.1) of the first service's health port; the others count up from it")
def compose(file: str, output: str, image: str | None, health_port_base: int) -> None:
    """A docker compose project: a service per actor instance, run as you (exported by
    root: as the image's user, 10001, given the files), the topology and directory mounted
    read-only, each service's state (Comm's journal) in state/NAME, its health port
    published on 127.0.0.1."""
    plan = plan_or_exit(file, host_of=lambda workload: workload.actor)
    user = compose_export.service_user(os.getuid(), os.getgid())
    owner = user if user != (os.getuid(), os.getgid()) else None
    write_files(output, compose_export.files(plan, image or f"mroute:{version()}", user, health_port_base),
                private=frozenset({compose_export.TOKEN}), owner=owner)
    states = [Path("state") / name for _workload, _instance, name in compose_export.services(plan)]
    for state in states:   # owned by the user the services run as
        (Path(output) / state).mkdir(parents=True, exist_ok=True, mode=0o700)
    if owner is not None:
        give_directories(Path(output), states, owner)


@export.command("systemd")
@topology_option()
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), default="mroute-systemd",
              show_default=True, help="where to write the units (then copy them to /etc/systemd/system) and the "
                                      "topology they read (it stays here)")
@click.option("--exec", "executable", default=None,
              help="the mroute the units run  [default: this one, by its absolute path]")
@click.option("--health-port-base", type=click.IntRange(1, 65000), default=9100, show_default=True,
              help="the first instance's health port; the others count up from it")
@click.option("--user", default=None,
              help="the user the units run as, never root  [default: you; exported by root: a dynamic user]")
def systemd(file: str, output: str, executable: str | None, health_port_base: int, user: str | None) -> None:
    """A unit per actor instance and a target that starts them all, on this host, each in
    a sandbox (`systemd-analyze security` rates each 1.1)."""
    plan = plan_or_exit(file)
    if plan.topology.hosts:
        raise click.ClickException("this topology places actors on hosts: export systemd units from each host's "
                                   "share, or give the units a topology without hosts")
    if user in ("root", "0"):
        raise click.BadParameter("the units never run as root", param_hint="--user")
    user = user or (None if os.getuid() == 0 else user_name(os.getuid()))
    if user is None and plan.topology.security.get("curve"):
        raise click.ClickException("a dynamic user cannot read the CURVE keys (their owner's only): give --user, "
                                   "the keys' owner")
    mroute = executable or shutil.which("mroute") or str(Path(sys.executable).with_name("mroute"))
    write_files(output, systemd_export.files(plan, str(Path(mroute).absolute()), Path(output), user, health_port_base),
                private=frozenset({systemd_export.TOPOLOGY}))
