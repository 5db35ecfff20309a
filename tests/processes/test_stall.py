"""Issue 24, "Tools that ride out a stall": with the supervisor SIGSTOPped for 20 s the
actors kept routing, but `mroute load --attach` gave up after 5 s and once left chat.1 with
the load's settings, and `mroute stats` said "did not answer 'status'". Now `load --attach`
waits (up to 30 s, saying so), always gives the Chat Servers their settings back, also when
interrupted, and `stats` names itself. The supervisor is stopped a little longer than the
old 5 s limit here (the tool's own words say how long it has waited), and always continued."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from typing import Any, Iterator

import pytest

from launch import client as control_client

from ..helpers import MROUTE, at_a_terminal, base_topology, read_until, wait_until

pytestmark = pytest.mark.timeout(120)
WAITED = re.compile(r"has not answered for (\d+) s")
OLD_LIMIT_S = 5


def waited(line: str) -> int:
    """How long the load says it has waited for the supervisor (0: it does not say)."""
    found = WAITED.search(line)
    return int(found[1]) if found else 0


def settings(running: Any) -> dict[str, Any]:
    return control_client.ask(running.topology, "ask", {"name": "chat.1", "verb": "load", "body": {}})["actors"][
        "chat.1"]


def attached_load(running: Any) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`mroute load --attach` on the topology, once its run has begun; and chat.1's settings
    from before it."""
    before = settings(running)
    load = subprocess.Popen([*MROUTE, "load", "--attach", "--quiet", "--rate", "10", "--duration", "3", "--handle",
                             "fixed:0.2", "--think", "fixed:0", "--drain", "10"], cwd=running.directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=at_a_terminal)
    try:
        wait_until(lambda: settings(running).get("run") != before.get("run"), timeout=30, what="the load's run")
    except BaseException:
        load.kill()
        load.wait()
        raise
    return load, before


def unchanged(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: (v, after.get(k)) for k, v in before.items() if k != "run" and after.get(k) != v}


@pytest.fixture
def topology(start_topology: Any) -> Any:
    return start_topology(base_topology("stalled", chat={"count": 1, "agents": 3, "rate": 2.0, "handle": 0.3,
                                                         "think": [0, 0]}))


@contextlib.contextmanager
def supervisor_stopped(running: Any) -> Iterator[int]:
    """The topology's supervisor SIGSTOPped for the block, and always continued."""
    supervisor = running.status()["supervisor"]["pid"]
    os.kill(supervisor, signal.SIGSTOP)
    try:
        yield supervisor
    finally:
        os.kill(supervisor, signal.SIGCONT)


def said_to_the_end(load: subprocess.Popen[bytes], lines: list[str]) -> str:
    """What the load said, once it has ended (it is killed if it does not)."""
    try:
        load.wait(timeout=90)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    assert load.stderr is not None
    return "".join(lines) + load.stderr.read().decode()


def test_load_attach_waits_through_a_stalled_supervisor_and_gives_the_settings_back(topology):
    load, before = attached_load(topology)
    lines: list[str] = []
    try:
        with supervisor_stopped(topology):
            lines = read_until(load, lambda line: waited(line) > OLD_LIMIT_S, timeout=40)
            assert any(waited(line) > OLD_LIMIT_S for line in lines), "".join(lines)
            assert "stopped" in lines[-1], lines[-1]   # it says what it knows of the supervisor
    finally:
        said = said_to_the_end(load, lines)
    assert load.returncode == 0, said
    assert "the supervisor answered after" in said
    assert not unchanged(before, settings(topology))   # chat.1 has its own settings back


def test_an_interrupted_load_gives_the_settings_back_once_the_supervisor_answers(topology):
    load, before = attached_load(topology)
    lines: list[str] = []
    try:
        with supervisor_stopped(topology):
            lines = read_until(load, lambda line: waited(line) > 0, timeout=30)
            assert any(waited(line) for line in lines), "".join(lines)
            load.send_signal(signal.SIGINT)   # Ctrl-C while the supervisor does not answer
            lines += read_until(load, lambda line: waited(line) > OLD_LIMIT_S, timeout=40)
            assert waited(lines[-1]) > OLD_LIMIT_S, "".join(lines)   # still there, waiting to stop the load
    finally:
        said = said_to_the_end(load, lines)
    assert load.returncode == 1, said   # interrupted: not a run to trust
    assert "could not give" not in said, said
    assert not unchanged(before, settings(topology))


def test_stats_names_itself_when_the_supervisor_does_not_answer(topology):
    with supervisor_stopped(topology) as supervisor:
        done = topology.cli("stats", timeout=30)
    assert done.returncode == 1
    assert "mroute stats: the supervisor of 'stalled'" in done.stderr, done.stderr
    assert "'status'" not in done.stderr and f"kill -CONT {supervisor}" in done.stderr, done.stderr
    assert topology.cli("stats").returncode == 0   # and answered again once it is back
