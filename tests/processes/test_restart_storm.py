"""A topology started again on its journal (issue 25, 2). Found on main: `mroute up --fresh
--yes --for 8`, then `mroute up --detach`: 1,688-1,947 offers refused within 5 s, not a
line in the logs, and the previous run's tasks, whose customers were gone with their Chat
Servers, served by the simulated agents. Wanted: a few refusals a task at most, each
logged with its reason, and the tasks a Chat Server started afresh no longer knows closed
as a customer's cancel."""

from __future__ import annotations

import subprocess

import yaml

from launch import client as control_client

from ..helpers import MROUTE, base_topology, wait_until


def test_a_topology_started_again_on_its_journal_cancels_the_lost_customers_and_refuses_little(
        tmp_path, start_topology):
    spec = base_topology("again", agents=20, chat={"count": 2, "agents": 10, "rate": 10.0, "handle": "uniform:2,6"})
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    first = subprocess.run([*MROUTE, "up", "--fresh", "--yes", "--for", "4", "--quiet"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    running = start_topology(spec, tmp_path)    # the same run directory: its journal
    comm = lambda: control_client.ask(running.topology, "stats")["actors"]["comm.1"]  # noqa: E731
    wait_until(lambda: comm().get("tasks_left_by_desks", 0) > 0, timeout=20,
               what="the earlier run's tasks, whose customers are gone, cancelled")
    chats = lambda: [s for n, s in control_client.ask(running.topology, "stats")["actors"].items()  # noqa: E731
                     if n.startswith("chat.")]
    wait_until(lambda: sum(s["closed"] for s in chats()) >= 20, timeout=30, what="20 chats of this run closed")
    stats = comm()
    assert stats["offers_refused_because"].get("offer_pending", 0) == 0, stats["offers_refused_because"]
    assert stats["offers_refused"] <= 3 * stats["tasks_routed"], stats["offers_refused"]
    log = (running.topology.run_dir / "logs" / "comm.1.log").read_text()
    refusals = [line for line in log.splitlines() if "refused:" in line and "offer of" in line]
    assert len(refusals) >= min(stats["offers_refused"], 20)   # a line each, up to the log budget
    assert all(" is " in line or " has " in line or " holds " in line for line in refusals)   # with its reason
    assert "started afresh without" in log
