"""`mroute chaos`: kill random actors under load; every task accounted for."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from .helpers import MROUTE, base_topology, tagged_processes


def test_chaos_kills_actors_under_load_and_loses_nothing(tmp_path):
    spec = base_topology("chaos", agents=10)
    spec["actors"]["gc"] = {"role": "gc"}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    result = subprocess.run([*MROUTE, "chaos", "--duration", "8", "--rate", "15", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=110,
                            env={**os.environ, "MROUTE_TEST_TAG": str(tmp_path)})
    account = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, result.stderr + result.stdout
    assert account["kills"] >= 3 and len({k["actor"] for k in account["killed"]}) >= 2
    assert account["created"] > 20
    assert account["lost"] == 0 and account["double_assigned"] == 0 and account["over_capacity"] == 0
    assert account["closed"] + account["unfinished"] == account["created"]
    assert tagged_processes(str(tmp_path)) == []  # every process it started, killed ones included, is gone
