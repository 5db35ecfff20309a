"""What a new user meets first (issue 25, point 8): what `make run` installs, a standalone
load's metrics, who holds the lock a second `up` is refused by, and `port_base` (the
README's examples and uptime: tests/inprocess/test_first_contact.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..helpers import MROUTE, base_topology, pid_alive, wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_installs_what_running_needs_and_make_test_the_test_extras(tmp_path):
    """Dry runs (make -n) against a virtualenv that does not exist: every step is listed."""
    def steps(target: str) -> str:
        done = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout
    run, test = steps("run"), steps("test")
    assert "pip install -q -e ." in run and "[test]" not in run, run
    assert "mroute up --fresh --yes --for 15" in run
    assert "pip install -q -e '.[test]'" in test and "pytest -n auto" in test, test
    assert "make test" in (REPO / ".ci" / "run").read_text()   # CI runs the README's test command


def test_a_standalone_load_serves_no_metrics_port(tmp_path):
    """Its fleet's supervisor binds no port (one no scraper knows) and starts no metrics
    process: the run's figures are in its report."""
    from launch.load.fleet import SpawnedFleet
    from launch.load.plan import LoadPlan
    from wire.dist import parse
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(base_topology("fleetbase")))
    plan = LoadPlan(rate=1, duration=1, handle=parse("fixed:1"), think=parse("fixed:0"), patience=None)
    fleet = SpawnedFleet(tmp_path / "topology.yaml", 1, 2, plan)
    pids = []
    try:
        pids = list(fleet.pids().values())
        assert fleet.supervisor.status()["metrics"] is None
        assert [pid for pid in children_of(os.getpid()) if b"launch.metricsd" in cmdline(pid)] == []
        assert set(fleet.stats()) == {"comm.1", "mre.1", "chat.1"}   # the fleet itself runs
    finally:
        fleet.close()
    wait_until(lambda: not any(pid_alive(p) for p in pids if p != os.getpid()), timeout=10,
               what="the fleet's processes to end")


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_second_up_names_the_process_that_holds_the_lock(start_topology, tmp_path):
    """A running supervisor, also when state.json does not name it (issue 25 saw "supervisor
    pid None": a supervisor still starting has written no state yet), and a process that is
    no supervisor at all."""
    running = start_topology(base_topology("held"))
    supervisor = running.status()["supervisor"]["pid"]
    state = running.topology.run_dir / "state.json"
    state.rename(state.with_name("state.json.aside"))   # as before the first write_state
    try:
        for args in (["up", "--for", "1"], ["up", "--detach"], ["up", "--fresh", "--yes", "--for", "1"]):
            refused = running.cli(*args)
            assert refused.returncode != 0, refused.stdout
            assert f"supervisor pid {supervisor}:" in refused.stderr and "None" not in refused.stderr, refused.stderr
            assert "mroute down" in refused.stderr
    finally:
        state.with_name("state.json.aside").rename(state)

    directory = tmp_path / "other"
    directory.mkdir()
    (directory / "topology.yaml").write_text(yaml.safe_dump(base_topology("other")))
    run_dir = directory / ".mroute" / "other"
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | "
                               "os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "sys.stdin.read()", str(run_dir / "lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = subprocess.run([*MROUTE, "up", "--for", "1"], cwd=directory, capture_output=True, text=True,
                                 timeout=30)
        assert refused.returncode != 0
        assert f"held by pid {holder.pid}" in refused.stderr and "not an mroute supervisor" in refused.stderr, \
            refused.stderr
        assert f"kill {holder.pid}" in refused.stderr and "None" not in refused.stderr
    finally:
        holder.kill()
        holder.wait(5)


def test_port_base_is_honoured_on_tcp_and_refused_with_its_key_on_ipc(tmp_path):
    from launch.topology import TopologyError, load
    from wire.catalogue import ENDPOINT_NAMES
    spec = base_topology("ported")
    spec.update(transport="tcp", port_base=7100)   # no hosts: everything on 127.0.0.1
    (tmp_path / "tcp.yaml").write_text(yaml.safe_dump(spec))
    endpoints = load(tmp_path / "tcp.yaml").endpoints
    assert [endpoints[name] for name in ENDPOINT_NAMES] == [f"tcp://127.0.0.1:{7100 + i}" for i in range(6)]
    spec["port_base"] = 65531   # its last endpoint would be past 65535
    (tmp_path / "high.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(TopologyError, match="port_base"):
        load(tmp_path / "high.yaml")
    spec.update(transport="ipc", port_base=7100)
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    checked = subprocess.run([*MROUTE, "check", "topology.yaml"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode != 0
    assert "port_base" in checked.stderr and "transport is ipc" in checked.stderr, checked.stderr
