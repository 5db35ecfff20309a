"""`mroute top` and `mroute trace` as a person reads them piped (`| cat`): within 80
columns, no cell cut, every column there; more shown when the terminal is wider (issue 25,
point 7). rich takes the width from a terminal on stdin, stdout or stderr, else COLUMNS,
else 80: the commands here have none of the three terminals."""

from __future__ import annotations

import json
import os
import re
import subprocess

from launch import client as control_client

from ..helpers import MROUTE, base_topology, wait_until
from ..inprocess.test_terminal_width import CLOCK, widest


def piped(running, *args: str, columns: int | None) -> str:
    """What the command prints into a pipe, with no terminal anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    done = subprocess.run([*MROUTE, *args], cwd=running.directory, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def routing(start_topology, name: str):
    running = start_topology(base_topology(name, chat={"count": 2, "agents": 3, "rate": 10, "handle": 0.2,
                                                       "think": [0, 0.05]}))
    wait_until(lambda: control_client.ask(running.topology, "stats")["actors"]["comm.1"]["agents_logged_in"] == 6,
               timeout=15, what="the agents to log in")
    return running


def test_top_fits_80_columns_whole_and_uses_more_when_there_are_more(start_topology):
    running = routing(start_topology, "narrowtop")
    for columns in (80, None):   # None: nothing says a width, rich's 80
        top = piped(running, "top", "--once", "--interval", "0.3", columns=columns)
        assert widest(top) <= 80, top
        assert "…" not in top, top
        header = next(line for line in top.splitlines() if "process" in line)
        for column in ("state", "pid", "restarts", "CPU %", "RSS MB", "in/s", "out/s"):   # out/s was cut
            assert column in header, top
        assert all(name in top for name in ("comm.1", "mre.1", "chat.1", "chat.2")), top
        assert "service level" in top and "q quit" in top
    wide = piped(running, "top", "--once", "--interval", "0.3", columns=120)
    assert 80 < widest(wide) <= 120, wide
    # the agents and the queues side by side: one line holds a state's row and a queue's
    assert any("LOGIN" in line and "chat-default" in line for line in wide.splitlines()), wide


def test_trace_fits_80_columns_whole_and_uses_more_when_there_are_more(start_topology):
    running = routing(start_topology, "narrowtrace")
    tapped = running.cli("tap", "ChatEvents", "--type", "TaskAgentSelected", "--count", "1", timeout=30)
    line = tapped.stdout.strip().splitlines()[-1]
    task = json.loads(line[line.index("{"):])["TaskId"]

    def closed() -> bool:
        hops = json.loads(running.cli("trace", task, "--json").stdout or "{}").get("hops", [])
        return any(h["type"] == "TaskState" and h["state"] == "CLOSED" for h in hops)
    wait_until(closed, timeout=20, what="the task's close (handle 0.2 s) in its trace")
    for columns in (80, None):
        text = piped(running, "trace", task, columns=columns)
        assert widest(text) <= 80, text
        assert "…" not in text, text
        rows = [line for line in text.splitlines() if CLOCK.search(line)]
        hops = int(re.search(r": (\d+) hops in ", text).group(1))   # as many as the title says
        assert len(rows) == hops, text            # a row per hop, each with its whole time
        assert any("TaskAgentSelected" in row for row in rows), text
        assert any("TaskState CLOSED DONE" in row for row in rows), text
        assert "the queue each message was taken from" in text and "--json" in text   # what was left out, said
    wide = piped(running, "trace", task, columns=120)
    assert any("from queue" in line and "message" in line for line in wide.splitlines()), wide   # its own column
    assert "CommunicationServer" in wide and "--json" not in wide, wide
    assert widest(wide) <= 120 and "…" not in wide
