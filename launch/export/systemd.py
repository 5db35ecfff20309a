"""`mroute export systemd`: a unit per actor instance and a target that wants them all
(honcho's export, for a topology), from the same plan as Kubernetes and compose.

On one host the units read the topology file as it is (its ipc endpoints, its run
directory, its passwords: the host has them already). systemd restarts a unit that
exits with a failure (`Restart=on-failure`: `mroute actor` exits 1 then, 0 when stopped);
`KillMode=mixed` sends TERM to the runner alone, which stops its actor, and KILLs what is
left at `TimeoutStopSec`. Each instance has a health port of its own, counted up from `--health-port-base`."""

from __future__ import annotations

from pathlib import Path

from .plan import DRAIN_TIMEOUT, Plan


def files(plan: Plan, executable: str, health_port_base: int = 9100, user: str | None = None) -> dict[str, str]:
    topology = plan.topology
    file = Path(topology.path).absolute()
    units: dict[str, str] = {}
    port = health_port_base
    for workload in plan.workloads:
        for instance in workload.instances():
            unit = f"{plan.name}-{instance.replace('.', '-')}.service"
            grace = topology.supervisor["stop_grace"] + 5
            lines = ["[Unit]", f"Description=mroute {topology.name}: {instance} ({workload.role})",
                     f"PartOf={plan.name}.target", "After=network.target", "",
                     "[Service]", "Type=simple",
                     f"ExecStart={executable} actor {instance} -f {file} --health-port {port} "
                     f"--drain-timeout {DRAIN_TIMEOUT:g}",
                     f"WorkingDirectory={file.parent}", "Environment=PYTHONUNBUFFERED=1",
                     "Restart=on-failure", "RestartSec=1", "KillMode=mixed", f"TimeoutStopSec={grace:g}"]
            if user:
                lines.append(f"User={user}")
            lines += ["", "[Install]", f"WantedBy={plan.name}.target", ""]
            units[unit] = "\n".join(lines)
            port += 1
    units[f"{plan.name}.target"] = "\n".join([
        "[Unit]", f"Description=mroute topology {topology.name} ({file})", f"Wants={' '.join(units)}", "",
        "[Install]", "WantedBy=multi-user.target", ""])
    return units
