"""Issue 29: the systemd units run in a sandbox, never as root, and write only to their
StateDirectory, where the topology they read keeps its run directory (its sockets, Comm's
journal). (What systemd-analyze makes of them: tests/processes/test_export.py.)"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from launch.commands.export import export
from launch.topology import load

from ..helpers import base_topology

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "topology.yaml"
# What issue 29 asks of each unit, and the rest of the sandbox that fits an actor
SANDBOX = {"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "PrivateTmp": "yes", "PrivateDevices": "yes",
           "PrivateUsers": "yes", "ProtectSystem": "strict", "ProtectKernelTunables": "yes",
           "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
           "ProtectClock": "yes", "ProtectHostname": "yes", "ProtectProc": "invisible",
           "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "RestrictNamespaces": "yes",
           "RestrictRealtime": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "RemoveIPC": "yes",
           "SystemCallArchitectures": "native", "UMask": "0077"}


def units(tmp_path: Path, *args: str, file: Path = DEFAULT, executable: str = "/opt/mroute/bin/mroute") -> Path:
    out = tmp_path / "units"
    done = CliRunner().invoke(export, ["systemd", "-f", str(file), "-o", str(out), "--exec", executable, *args])
    assert done.exit_code == 0, done.output
    return out


def service(path: Path) -> dict[str, list[str]]:
    """The [Service] section: each key's values, in order."""
    section, values = None, {}
    for line in path.read_text().splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("user", [None, "mroute"])
def test_every_unit_is_sandboxed_and_never_root(tmp_path, user):
    out = units(tmp_path, *(["--user", user] if user else []))
    services = sorted(out.glob("*.service"))
    assert [p.name for p in services] == ["local-chat-1.service", "local-chat-2.service", "local-comm-1.service",
                                          "local-gc-1.service", "local-mre-1.service"]
    for path in services:
        unit = service(path)
        assert {key: unit.get(key, [None])[-1] for key in SANDBOX} == SANDBOX, path.name
        assert "@system-service" in unit["SystemCallFilter"], path.name
        assert unit["ProtectHome"] == ["yes"]   # nothing it reads is in a home
        if user:
            assert unit["User"] == [user] and "DynamicUser" not in unit
        elif os.getuid() == 0:   # root's export: a user of its own, shared by the topology's units
            assert unit["DynamicUser"] == ["yes"] and unit["User"] == ["mroute-local"]
        else:
            assert unit["User"] not in (["root"], ["0"]) and "DynamicUser" not in unit


def test_the_units_write_only_their_state_directory_where_the_topology_they_read_runs(tmp_path):
    out = units(tmp_path)
    unit = service(out / "local-comm-1.service")
    assert unit["StateDirectory"] == ["mroute/local"] and "ReadWritePaths" not in unit
    assert "-f %d/topology.yaml" in unit["ExecStart"][0]   # the credential systemd hands it
    assert unit["LoadCredential"] == [f"topology.yaml:{out / 'topology.yaml'}"]
    assert stat.S_IMODE((out / "topology.yaml").stat().st_mode) == 0o600   # the passwords
    copy, original = load(out / "topology.yaml"), load(DEFAULT)
    assert copy.run_dir == Path("/var/lib/mroute/local") == copy.sock_dir
    assert all(url.startswith("ipc:///var/lib/mroute/local/") for url in copy.endpoints.values())
    assert copy.agents == original.agents and copy.actors == original.actors and copy.queues == original.queues


def test_a_directory_of_agents_in_a_file_and_the_keys_are_found_from_the_copy(tmp_path):
    from wire.curve import make_keys
    make_keys(tmp_path / "keys")
    spec = base_topology("secure", chat={"count": 1, "agents": 2}, agents=4)
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(spec["agents"]))
    spec["agents"] = [{"file": "people.yaml"}]
    spec["security"] = {"curve": "keys"}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    out = units(tmp_path, "--user", "mroute", file=tmp_path / "topology.yaml")
    copy = load(out / "topology.yaml")
    assert copy.agents == load(tmp_path / "topology.yaml").agents
    assert Path(copy.security["curve"]) == tmp_path / "keys"


def test_root_and_a_dynamic_user_that_cannot_read_the_keys_are_refused(tmp_path):
    for user in ("root", "0"):
        done = CliRunner().invoke(export, ["systemd", "-f", str(DEFAULT), "-o", str(tmp_path), "--user", user])
        assert done.exit_code != 0 and "never run as root" in done.output
    if os.getuid() == 0:
        from wire.curve import make_keys
        make_keys(tmp_path / "keys")
        spec = base_topology("secure")
        spec["security"] = {"curve": "keys"}
        (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
        done = CliRunner().invoke(export, ["systemd", "-f", str(tmp_path / "topology.yaml"), "-o", str(tmp_path)])
        assert done.exit_code != 0 and "give --user" in done.output


def test_a_home_is_read_only_to_units_that_run_from_it(tmp_path):
    out = units(tmp_path, "--user", "mroute", executable="/home/ops/mroute/.venv/bin/mroute")
    assert service(out / "local-mre-1.service")["ProtectHome"] == ["read-only"]
