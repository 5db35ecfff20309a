"""`mroute export systemd`: a unit per actor instance and a target that wants them all
(honcho's export, for a topology), from the same plan as Kubernetes and compose.

On one host the units run the topology as written (its ipc endpoints, its passwords: the
host has them already) with one change: its run directory is the units' StateDirectory,
/var/lib/mroute/NAME, the only place a unit may write (`ProtectSystem=strict`), shared by
the units of the topology (their sockets are there, Comm's journal too). So they read a
copy, topology.yaml beside the units (the directory inline, paths made absolute), handed to
each unit by systemd (`LoadCredential=`), which reads it as root: the copy stays readable by
its owner only, whoever the unit runs as. A desk or `mroute web` on the host reaches the
units with `-f` that copy.

The units never run as root: as `--user`, else as who exported, else (exported by root) as
a dynamic user (`DynamicUser=`), one for the topology's units so that they reach each
other's sockets. The rest of the sandbox (SANDBOX) leaves them what an actor uses: its
files, unix and IP sockets, the system calls of a service. systemd restarts a unit that
exits with a failure (`Restart=on-failure`: `mroute actor` exits 1 then, 0 when stopped);
`KillMode=mixed` sends TERM to the runner alone, which stops its actor, and KILLs what is
left at `TimeoutStopSec`. Each instance has a health port of its own, counted up from
`--health-port-base`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .plan import DRAIN_TIMEOUT, Plan, agent_entries, dump

STATE_ROOT = Path("/var/lib")
HOMES = ("/home", "/root", "/run/user")
TOPOLOGY = "topology.yaml"   # the copy the units read, beside them
SANDBOX = [
    "NoNewPrivileges=yes", "CapabilityBoundingSet=", "AmbientCapabilities=",
    "PrivateTmp=yes", "PrivateDevices=yes", "PrivateMounts=yes", "PrivateUsers=yes",
    "ProtectSystem=strict", "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes", "ProtectProc=invisible",
    # not ProcSubset=pid: Comm reads /proc/sys/kernel/random/boot_id to tell a restart from a reboot
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "RestrictNamespaces=yes", "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes", "LockPersonality=yes", "RemoveIPC=yes", "UMask=0077",
    # CPython compiles no code at run time (no JIT), nor do pyzmq, orjson or aiohttp
    "MemoryDenyWriteExecute=yes",
    "SystemCallArchitectures=native", "SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM"]


def state_dir(plan: Plan) -> Path:
    return STATE_ROOT / "mroute" / plan.name


def unit_topology(plan: Plan) -> str:
    """The topology as the units read it: the file as written, its run directory theirs,
    the directory of agents inline (a credential is one file) and the key directory's path
    absolute (relative paths would be from the credential's directory)."""
    path = Path(plan.topology.path).absolute()
    raw: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    raw["run_dir"] = str(state_dir(plan))
    raw["agents"] = agent_entries(raw.get("agents") or [], path.parent)
    if plan.topology.security.get("curve"):
        raw["security"] = {**raw["security"], "curve": str(plan.topology.security["curve"])}
    return (f"# The topology {plan.topology.name!r} as its systemd units read it: written by `mroute export systemd` "
            f"from {path}.\n# Its run directory is the units' StateDirectory. Export again after a change.\n"
            + dump(raw))


def files(plan: Plan, executable: str, directory: Path, user: str | None,
          health_port_base: int = 9100) -> dict[str, str]:
    """The units, the target and the topology they read (`directory`: where they are
    written); `user` None: a dynamic user."""
    topology = plan.topology
    state = state_dir(plan)
    read = [executable, *([str(topology.security["curve"])] if topology.security.get("curve") else [])]
    # a home directory is hidden from the units unless they read something in it
    home = "read-only" if any(Path(path).absolute().is_relative_to(h) for path in read for h in HOMES) else "yes"
    identity = [f"User={user}"] if user else ["DynamicUser=yes", f"User=mroute-{plan.name}"]
    units: dict[str, str] = {}
    port = health_port_base
    for workload in plan.workloads:
        for instance in workload.instances():
            unit = f"{plan.name}-{instance.replace('.', '-')}.service"
            grace = topology.supervisor["stop_grace"] + 5
            lines = ["[Unit]", f"Description=mroute {topology.name}: {instance} ({workload.role})",
                     f"PartOf={plan.name}.target", "After=network.target", "",
                     "[Service]", "Type=simple",
                     f"ExecStart={executable} actor {instance} -f %d/{TOPOLOGY} --health-port {port} "
                     f"--drain-timeout {DRAIN_TIMEOUT:g}",
                     f"LoadCredential={TOPOLOGY}:{directory.absolute() / TOPOLOGY}",
                     "Environment=PYTHONUNBUFFERED=1",
                     "Restart=on-failure", "RestartSec=1", "KillMode=mixed", f"TimeoutStopSec={grace:g}",
                     *identity, f"StateDirectory={state.relative_to(STATE_ROOT)}", "StateDirectoryMode=0700",
                     f"WorkingDirectory={state}", f"ProtectHome={home}", *SANDBOX,
                     "", "[Install]", f"WantedBy={plan.name}.target", ""]
            units[unit] = "\n".join(lines)
            port += 1
    units[f"{plan.name}.target"] = "\n".join([
        "[Unit]", f"Description=mroute topology {topology.name} ({topology.path})", f"Wants={' '.join(units)}", "",
        "[Install]", "WantedBy=multi-user.target", ""])
    return {**units, TOPOLOGY: unit_topology(plan)}
