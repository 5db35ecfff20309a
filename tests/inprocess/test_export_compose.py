"""Issue 29: the compose export runs nothing as root, whoever exports it (root's export
runs as the image's user, who is given the files); each service's health port is on the
host's 127.0.0.1, at a port of its own, and its guard lets that name in; and the
healthcheck survives podman-compose 1.0.3 as it does docker compose."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from launch.commands.export import export
from launch.export.compose import READY_CHECK, service_user
from launch.httpguard import Guard

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "topology.yaml"
SERVICES = ["comm", "mre", "gc", "chat-1", "chat-2"]


def project(tmp_path: Path, *args: str) -> dict[str, Any]:
    done = CliRunner().invoke(export, ["compose", "-f", str(DEFAULT), "-o", str(tmp_path / "c"), *args])
    assert done.exit_code == 0, done.output
    return yaml.safe_load((tmp_path / "c" / "compose.yaml").read_text())


def test_the_services_never_run_as_root():
    assert service_user(0, 0) == (10001, 10001)   # the image's user
    assert service_user(1000, 1001) == (1000, 1001)


def test_exported_by_root_the_services_run_as_the_images_user_who_owns_the_files(tmp_path):
    if os.getuid() != 0:
        pytest.skip("not root: only root exports as someone else (a user's export runs as that user)")
    services = project(tmp_path)["services"]
    assert list(services) == SERVICES
    assert {s["user"] for s in services.values()} == {"10001:10001"}
    out = tmp_path / "c"
    made = [out / "compose.yaml", *(p for p in out.rglob("*"))]
    assert {(p.stat().st_uid, p.stat().st_gid) for p in made} == {(10001, 10001)}, \
        [str(p) for p in made if p.stat().st_uid != 10001]
    assert stat.S_IMODE((out / "state" / "comm").stat().st_mode) == 0o700    # Comm's journal: its alone
    assert stat.S_IMODE((out / "agents" / "desk-agents.yaml").stat().st_mode) == 0o600
    assert out.stat().st_uid == 0   # the directory given is left its owner's


def test_each_health_port_is_published_on_loopback_at_a_port_of_its_own(tmp_path):
    services = project(tmp_path, "--health-port-base", "9300")["services"]
    published = {name: s["ports"] for name, s in services.items()}
    assert published == {name: [f"127.0.0.1:{9300 + i}:8080"] for i, name in enumerate(SERVICES)}
    header = (tmp_path / "c" / "compose.yaml").read_text().split("\nname:")[0]
    for i, name in enumerate(SERVICES):   # the file says which service has which port
        assert f"{name} " in header and f"http://127.0.0.1:{9300 + i}/metrics" in header
    for i, (name, service) in enumerate(services.items()):
        command = service["command"]
        assert command[command.index("--health-host") + 1] == "0.0.0.0"   # reached through the container's address
        names = [command[j + 1] for j, arg in enumerate(command) if arg == "--health-name"]
        guard = Guard("0.0.0.0", 8080, names)
        for host in (f"127.0.0.1:{9300 + i}", f"localhost:{9300 + i}"):   # what a scrape on the host says
            assert guard.host({"Host": host}, "172.18.0.3") is None, (name, host)
        assert guard.host({"Host": "evil.example:9300"}, "172.18.0.3") is not None


def podman_compose_1_0_3(test: Any) -> str:
    """The `--healthcheck-command` podman-compose 1.0.3 passes podman for a compose
    healthcheck's `test` (podman_compose.py, container_to_args, lines 711-737)."""
    if isinstance(test, str):
        return "/bin/sh -c {}".format(shlex.quote(test))
    kind, *rest = test   # (it pops the kind off the list it was given)
    if kind == "CMD":
        return "/bin/sh -c {}".format("' '".join([shlex.quote(i) for i in rest]))
    assert kind == "CMD-SHELL" and len(rest) == 1
    return "/bin/sh -c {}".format(shlex.quote(rest[0]))


def run_by_a_shell(test: Any) -> list[str]:
    """The argv a healthcheck runs, as docker compose hands it over: a list of CMD runs as
    it is, a string or CMD-SHELL by `/bin/sh -c`."""
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    return test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]


def test_the_healthcheck_runs_under_podman_compose_and_docker_compose(tmp_path):
    wanted = ["python", "-c", READY_CHECK]
    for name, service in project(tmp_path)["services"].items():
        test = service["healthcheck"]["test"]
        # podman runs a command that is no JSON list by /bin/sh -c COMMAND: that shell reads
        # podman-compose's `/bin/sh -c ...`, whose shell reads the script
        argv = shlex.split(podman_compose_1_0_3(test))
        assert argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3, (name, argv)
        assert shlex.split(argv[2]) == wanted, name
        argv = run_by_a_shell(test)
        assert (shlex.split(argv[2]) if argv[:2] == ["/bin/sh", "-c"] else argv) == wanted, name
    # the form it replaced, and why: podman-compose runs `python -c import` and the rest as $0...
    mangled = shlex.split(shlex.split(podman_compose_1_0_3(["CMD", *wanted]))[2])
    assert mangled[:3] == ["python", "-c", "import"]
    assert not set('"$`\\') & set(READY_CHECK)   # nothing in it a shell's double quotes would read


def test_a_client_on_the_host_is_given_a_control_token_the_services_hold(tmp_path):
    """A client on the host reaches a published port from the project network's gateway,
    not from the service's host: without a token /stats and /load refused it (403), so
    `mroute load --attach-pods` could not drive a compose project."""
    services = project(tmp_path)["services"]
    token = tmp_path / "c" / "control" / "token"
    assert len(token.read_text().strip()) == 48 and stat.S_IMODE(token.stat().st_mode) == 0o600
    for name, service in services.items():
        command = service["command"]
        held = command[command.index("--control-token-file") + 1]
        assert f"./control/token:{held}:ro" in service["volumes"], name
    header = (tmp_path / "c" / "compose.yaml").read_text().split("\nname:")[0]
    assert "--control-token-file control/token" in header
    again = tmp_path / "again"
    assert CliRunner().invoke(export, ["compose", "-f", str(DEFAULT), "-o", str(again)]).exit_code == 0
    assert (again / "control" / "token").read_text() != token.read_text()   # made at each export, never a default
