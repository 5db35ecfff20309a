"""`mroute chaos`: kill random actors under load; every task accounted for."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from launch.chaos import StreamTally

from .helpers import MROUTE, base_topology, tagged_processes


def test_chaos_kills_actors_under_load_and_loses_nothing(tmp_path):
    spec = base_topology("chaos", agents=10)
    spec["actors"]["gc"] = {"role": "gc"}
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    result = subprocess.run([*MROUTE, "chaos", "--duration", "8", "--rate", "15", "--json", "--fail-on", "lost==0",
                             "--fail-on", "double_assigned == 0", "--fail-on", "kills>=3"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=110,
                            env={**os.environ, "MROUTE_TEST_TAG": str(tmp_path)})
    assert result.returncode == 0, result.stderr + result.stdout
    account = json.loads(result.stdout.strip().splitlines()[-1])
    assert account["kills"] >= 3 and len({k["actor"] for k in account["killed"]}) >= 2
    assert account["created"] > 20
    assert account["lost"] == 0 and account["double_assigned"] == 0 and account["over_capacity"] == 0
    assert account["closed"] + account["unfinished"] == account["created"]
    assert account["verdict"]["passed"] and [t["threshold"] for t in account["verdict"]["thresholds"]] == [
        "lost == 0", "double_assigned == 0", "kills >= 3"]
    # what the Chat Servers saw of Comm's numbered streams is shown (gaps are resynchronised, no failure)
    assert all(isinstance(account[k], int) and account[k] >= 0 for k in ("gaps", "missed", "resyncs", "streams"))
    if any(kill["actor"].startswith("comm.") for kill in account["killed"]):
        assert account["streams"] >= 1 and account["resyncs"] >= 1  # a new Comm is a new stream: resync
    assert tagged_processes(str(tmp_path)) == []  # every process it started, killed ones included, is gone


def stats(gaps, missed, received, resyncs=0, streams=0):
    return {"gaps": gaps, "missed": missed, "resyncs": resyncs, "streams": streams,
            "counters": {"received": received}}


def test_the_stream_tally_counts_across_restarted_chat_servers():
    tally = StreamTally(["chat.1", "chat.2"])
    tally.note({"chat.1": stats(1, 4, 100), "chat.2": stats(0, 0, 50)})
    tally.note({"chat.1": stats(2, 5, 200, streams=1), "chat.2": {"error": {"reason": "did not answer"}}})
    # chat.2 was killed and counts again from zero; chat.1 goes on
    tally.note({"chat.1": stats(2, 5, 300, streams=1), "chat.2": stats(1, 3, 10)})
    assert tally.totals() == {"gaps": 3, "missed": 8, "resyncs": 0, "streams": 1}
    # a restart seen only in the messages received (its figures already back where they were)
    tally.note({"chat.1": stats(2, 5, 5, streams=1), "chat.2": stats(1, 3, 20)})
    assert tally.totals() == {"gaps": 5, "missed": 13, "resyncs": 0, "streams": 2}
