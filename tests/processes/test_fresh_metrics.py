"""Issue 25 item 1 ("Stale metrics") and issue 24's scrape during a stall: the first scrape
of a new topology showed every counter at 0 while `stats` said 71 tasks created, a scrape
after a quiet minute was a minute old, `mroute_actor_degraded` disagreed with `status`, the
same on `mroute actor`'s /metrics; and with the supervisor SIGSTOPped a scrape hung.

Every scrape is now current to within a second (it asks the actors when the last answers
are older), and one that cannot be (a stalled supervisor, a hung actor) answers at once
with what it has, `mroute_stats_age_seconds` saying how old it is."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ..cluster import free_port
from ..helpers import base_topology, wait_until
from .test_actor_command import run, tcp_topology  # noqa: F401 (run: the fixture that stops what it started)
from .test_metrics import scrape

pytestmark = pytest.mark.timeout(120)


Samples = list[tuple[str, dict[str, str], float]]


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found or 'not in the scrape'}"
    return found[0]


def asked_after(url: str, actor: str, reading_done: float) -> Samples | None:
    """A scrape, if what it shows of `actor` was asked of it after `reading_done` (what
    `mroute_stats_age_seconds` says, measured on the same monotonic clock), else None."""
    began = time.monotonic()
    _text, samples = scrape(url)
    age = value(samples, "mroute_stats_age_seconds", actor=actor)
    return samples if began - age - 0.001 >= reading_done else None


def test_every_scrape_is_current_and_one_during_a_stall_says_how_old(start_topology):
    port = free_port()
    spec = base_topology("fresh", chat={"count": 1, "agents": 3, "rate": 20, "handle": 0.3})
    spec["metrics"] = {"port": port, "host": "127.0.0.1"}
    running = start_topology(spec)
    url = f"http://127.0.0.1:{port}/metrics"

    def stats() -> dict[str, dict]:
        return json.loads(running.cli("stats", "--json").stdout)["actors"]
    told = wait_until(lambda: (s := stats())["comm.1"]["stats"]["tasks_created"] >= 10 and s, timeout=30,
                      what="tasks created since the start")
    reading_done = time.monotonic()
    # the first scrapes (none came before them): as new as that reading within a second
    samples = wait_until(lambda: asked_after(url, "comm.1", reading_done), timeout=10,
                         what="a scrape of figures asked after the reading")
    assert value(samples, "mroute_tasks_total", event="created") >= told["comm.1"]["stats"]["tasks_created"]
    assert value(samples, "mroute_chat_tasks_total", actor="chat.1", outcome="created") >= \
        told["chat.1"]["stats"]["created"]
    assert value(samples, "mroute_stats_age_seconds", actor="comm.1") < float("inf")
    # the actors' states as `status` has them now, not as at the last look
    assert running.cli("stop", "mre").returncode == 0
    stopped = time.monotonic()   # comm.1's age covers the states too: they are asked first
    samples = wait_until(lambda: asked_after(url, "comm.1", stopped), timeout=10, what="a scrape asked after the stop")
    assert value(samples, "mroute_actor_up", actor="mre.1") == 0.0
    assert value(samples, "mroute_actor_up", actor="comm.1") == 1.0
    created = value(samples, "mroute_tasks_total", event="created")
    supervisor = running.status()["supervisor"]["pid"]
    os.kill(supervisor, signal.SIGSTOP)
    try:   # stopped: every scrape is answered anyway, with what was last heard, its age growing
        _text, stale = wait_until(lambda: (got := scrape(url)) and value(
            got[1], "mroute_stats_age_seconds", actor="comm.1") >= 2.0 and got, timeout=30,
            what="a scrape saying its figures are 2 s old")
        assert value(stale, "mroute_tasks_total", event="created") >= created   # counters never go back
        assert value(stale, "mroute_stats_age_seconds", actor="chat.1") >= 2.0
    finally:
        os.kill(supervisor, signal.SIGCONT)
    wait_until(lambda: value(scrape(url)[1], "mroute_stats_age_seconds", actor="comm.1") < 2.0, timeout=30,
               what="current figures again once the supervisor answers")


def test_mroute_actors_metrics_are_current_and_a_hung_actors_say_how_old(tmp_path, run):  # noqa: F811
    file = tcp_topology(tmp_path)   # a Chat Server offering 20 chats/s
    pods = [run(file, "comm"), run(file, "mre"), run(file, "chat-0")]
    for pod in pods:
        wait_until(lambda p=pod: p.get("/readyz")[0] == 200, timeout=30, what="ready")
    chat = pods[2]

    def created() -> int:
        status, body = chat.get("/stats")
        assert status == 200, body
        return json.loads(body)["answer"]["created"]
    told = wait_until(lambda: (n := created()) >= 10 and n, timeout=30, what="chats created")
    reading_done = time.monotonic()
    samples = wait_until(lambda: asked_after(f"http://127.0.0.1:{chat.port}/metrics", "chat.1", reading_done),
                         timeout=10, what="a scrape of figures asked after the reading")
    assert value(samples, "mroute_chat_tasks_total", actor="chat.1", outcome="created") >= told
    actor = int(Path(f"/proc/{chat.proc.pid}/task/{chat.proc.pid}/children").read_text().split()[0])
    os.kill(actor, signal.SIGSTOP)
    try:   # a hung actor: its last answer, its age saying how old
        _text, stale = wait_until(lambda: (got := scrape(f"http://127.0.0.1:{chat.port}/metrics")) and value(
            got[1], "mroute_stats_age_seconds", actor="chat.1") >= 2.0 and got, timeout=30,
            what="a scrape saying the chat server's figures are 2 s old")
        assert value(stale, "mroute_chat_tasks_total", actor="chat.1", outcome="created") >= told
    finally:
        os.kill(actor, signal.SIGCONT)
