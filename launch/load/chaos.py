"""`mroute chaos`: a load while a random actor is killed (SIGKILL) every 1-2 s, then an
account of every task.

The account does not trust any process that was killed. Comm journals, so its epoch (the
task id prefix) survives its restarts and its tasks are numbered without gaps: the tasks
that exist are exactly numbers 1 ... N of the epoch. After the load and a drain, Comm is
asked (over the control channel, by number: ids have an unguessable part) for each, as
GetTaskState would answer from its journal, closed tasks included: it is closed, still
live (unfinished), or unknown to Comm: lost. While the load runs, the
driver reads what every Chat Server's agents hold or are offered and checks across
servers that no task is with two agents at once (`double_assigned`) and no agent holds
more than its MRD allows (`over_capacity`). It also adds up what the Chat Servers saw of
Comm's numbered streams (`gaps`, `missed` messages, `resyncs`, new `streams`): a gap is
recovered by a Resync, so it fails nothing, but the account shows it.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from wire.dist import parse

from ..process.states import SERVING
from .fleet import SpawnedFleet
from .plan import LoadPlan

KILLABLE_AFTER = 1.5        # seconds up before an actor may be killed (a quicker death counts as a failed start)


def held_check(stats: dict[str, dict[str, Any]], chats: list[str], max_tasks: int) -> tuple[set[str], set[str]]:
    """Tasks with two agents at once, and agents over their limit, in one look at every
    server; each finding as a string that says what was seen."""
    owners: dict[str, set[str]] = {}
    per_agent: dict[str, list[str]] = {}
    for name in chats:
        for task_id, agent_id in (stats.get(name, {}).get("held") or {}).items():
            owners.setdefault(task_id, set()).add(agent_id)
            per_agent.setdefault(agent_id, []).append(task_id)
    return ({f"{t} with {sorted(agents)}" for t, agents in owners.items() if len(agents) > 1},
            {f"{a} holds {sorted(tasks)}" for a, tasks in per_agent.items() if len(tasks) > max_tasks})


STREAM_FIGURES = ("gaps", "missed", "resyncs", "streams")


class StreamTally:
    """The fleet's stream figures over the whole run. A Chat Server killed and restarted
    counts from zero again: when its figures (or the messages it received) go back, what
    the killed one had counted is banked."""

    def __init__(self, chats: list[str]):
        self.last = {name: dict.fromkeys(STREAM_FIGURES, 0) for name in chats}
        self.received = dict.fromkeys(chats, 0)
        self.banked = dict.fromkeys(STREAM_FIGURES, 0)

    def note(self, stats: dict[str, dict[str, Any]]) -> None:
        for name, last in self.last.items():
            s = stats.get(name) or {}
            if "gaps" not in s:  # no answer (killed just now), or a server that does not count
                continue
            now = {key: int(s.get(key, 0)) for key in STREAM_FIGURES}
            received = int((s.get("counters") or {}).get("received", 0))
            if received < self.received[name] or any(now[key] < last[key] for key in STREAM_FIGURES):
                for key in STREAM_FIGURES:
                    self.banked[key] += last[key]
            self.received[name] = received
            self.last[name] = now

    def totals(self) -> dict[str, int]:
        return {key: self.banked[key] + sum(last[key] for last in self.last.values()) for key in STREAM_FIGURES}


def run_chaos(base_file: Path, duration: float, rate: float, servers: int = 2, agents_per_server: int = 5,
              seed: int | None = None, drain: float = 30.0,
              progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    rng = random.Random(seed)
    plan = LoadPlan(rate=rate, duration=duration, handle=parse("uniform:0.2,1"), think=parse("uniform:0,0.1"),
                    patience=None)
    started = time.monotonic()
    # the rate is the servers' own setting: one restarted after a kill offers customers again
    fleet = SpawnedFleet(base_file, servers, agents_per_server, plan, rate_per_server=rate / servers)
    supervisor = fleet.supervisor
    max_tasks = supervisor.topology.mrds["chat"]["max_tasks"]
    kills: list[dict[str, Any]] = []
    double: set[str] = set()
    over: set[str] = set()
    tally = StreamTally(fleet.chats)
    try:
        fleet.tell({"run": f"chaos-{os.getpid()}", **plan.settings()})
        next_kill = time.monotonic() + rng.uniform(1, 2)
        looking: list[bool] = []  # a look at the chat servers is on its way

        def looked(results: dict[str, Any]) -> None:
            looking.clear()
            tally.note(results)
            found = held_check(results, fleet.chats, max_tasks)
            double.update(found[0])
            over.update(found[1])
        while time.monotonic() - started < duration and not supervisor.loop.stop_reason:
            if time.monotonic() >= next_kill:
                victim = pick_victim(supervisor, rng)
                if victim is not None:
                    os.kill(victim.pid, signal.SIGKILL)
                    kills.append({"t": round(time.monotonic() - started, 2), "actor": victim.name,
                                  "pid": victim.pid, "killed_at": time.monotonic()})
                    progress(f"{kills[-1]['t']:6.2f}s  killed {victim.name} (pid {victim.pid})")
                next_kill = time.monotonic() + rng.uniform(1, 2)
            note_recoveries(supervisor, kills)
            if not looking:  # asked without waiting: a server just killed must not stall the kills
                looking.append(True)
                supervisor.ask_children(set(fleet.chats), "stats", None, looked, timeout=0.5)
            fleet.wait(0.05)
        stop_offering(fleet)
        settle(fleet, drain, double, over, max_tasks, kills, progress, tally)
        comm = next((s for s in supervisor.stats_now().values() if "task_number" in s), None)
        if comm is None:
            raise RuntimeError("Comm did not answer at the end: no account can be given")
        outcomes = ask_every_task(supervisor, comm["task_number"])
    except BaseException:
        fleet.close(keep=True)
        raise
    closed = [o for o in outcomes.values() if o and o["State"] == "CLOSED"]
    lost = sum(1 for o in outcomes.values() if o is None)
    failed = bool(lost or double or over)
    fleet.close(keep=failed)
    streams = tally.totals()
    progress(f"the Chat Servers saw {streams['gaps']} gaps in Comm's numbered streams ({streams['missed']} messages "
             f"missed) and {streams['streams']} new streams, and resynchronised {streams['resyncs']} times")
    if failed:
        progress(f"the logs of this run are kept in {fleet.directory / 'run' / 'logs'}")
    return {
        "created": len(outcomes),
        "routed": sum(1 for o in outcomes.values() if o and (o.get("AgentId") or o.get("Code") == "DONE")),
        "closed": len(closed), "closed_done": sum(1 for o in closed if o.get("Code") == "DONE"),
        "unfinished": sum(1 for o in outcomes.values() if o and o["State"] != "CLOSED"),
        "lost": lost,
        "double_assigned": len(double), "over_capacity": len(over), "findings": sorted(double | over),
        **streams,
        "kills": len(kills), "recovery": recovery_by_role(kills),
        "killed": [{k: v for k, v in kill.items() if k != "killed_at"} for kill in kills],
        "duration_s": round(time.monotonic() - started, 1),
        "rate": rate, "chat_servers": servers, "agents": servers * agents_per_server,
    }


def stop_offering(fleet: SpawnedFleet, timeout: float = 15.0) -> None:
    """No more customers, from every server that runs from now on. A server started after
    the topology file says rate 0 reads it as it starts; one running before must say it
    took rate 0. So each server is asked until the process running it has answered (its
    pid unchanged across the question): a server killed a moment ago (CI saw a kill at
    8.00 s of an 8 s load) cannot answer, and neither its silence nor its successor's
    start is a refusal. Bounded: a running process that will not take it is an error."""
    supervisor = fleet.supervisor
    supervisor.topology.actors["chat"]["rate"] = 0.0
    supervisor.write_topology()
    confirmed: dict[str, int | None] = {}   # server -> the pid that said rate 0
    last: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while True:
        children = {name: supervisor.children[name] for name in fleet.chats}
        asking = {name: child.pid for name, child in children.items()
                  if child.state in SERVING and confirmed.get(name) != child.pid}
        if not asking and all(c.state in SERVING for c in children.values()):
            return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"chat servers did not take rate 0 within {timeout:g} s: "
                               f"{ {name: last.get(name, children[name].state) for name in asking or children} }")
        answers = supervisor.ask_now(set(asking), "load", {"rate": 0.0}) if asking else {}
        for name, pid in asking.items():
            answer = answers.get(name, {"error": {"reason": "no answer"}})
            if "error" not in answer and children[name].pid == pid:
                confirmed[name] = pid
            else:
                last[name] = answer.get("error", answer)
        if not asking and not fleet.wait(0.1):   # one restarting: wait for it to run
            raise RuntimeError(f"the supervisor stopped while the load was being stopped: {supervisor.loop.stop_reason}")


def note_recoveries(supervisor: Any, kills: list[dict[str, Any]]) -> None:
    """The time from a kill to the actor READY again (restarted by the supervisor)."""
    for kill in kills:
        if "recovered_s" not in kill:
            child = supervisor.children[kill["actor"]]
            if child.state == "RUNNING" and child.pid not in (None, kill["pid"]):
                kill["recovered_s"] = round(time.monotonic() - kill["killed_at"], 3)


def recovery_by_role(kills: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {}
    for kill in kills:
        if "recovered_s" in kill:
            times.setdefault(kill["actor"].rpartition(".")[0], []).append(kill["recovered_s"])
    return {role: {"kills": len(t), "median_s": round(statistics.median(t), 3), "max_s": max(t)}
            for role, t in sorted(times.items())}


def pick_victim(supervisor: Any, rng: random.Random) -> Any:
    now = time.time()
    candidates = [c for c in supervisor.children.values()
                  if c.state == "RUNNING" and c.pid is not None and now - c.started >= KILLABLE_AFTER]
    return rng.choice(candidates) if candidates else None


def settle(fleet: SpawnedFleet, drain: float, double: set[str], over: set[str], max_tasks: int,
           kills: list[dict[str, Any]], progress: Callable[[str], None], tally: StreamTally | None = None) -> None:
    """No more customers and no more kills: wait (bounded) until every actor runs again and
    no Chat Server waits for an answer or holds a task."""
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        note_recoveries(fleet.supervisor, kills)
        stats = fleet.supervisor.stats_now()
        if tally is not None:
            tally.note(stats)
        look = held_check(stats, fleet.chats, max_tasks)
        double |= look[0]
        over |= look[1]
        running = all(c.state == "RUNNING" for c in fleet.supervisor.children.values())
        busy = sum(len(stats.get(c, {}).get("held") or {}) + stats.get(c, {}).get("unacked", 1) for c in fleet.chats)
        comm = next((s for s in stats.values() if "tasks_live" in s), {"tasks_live": 1})
        if running and not busy and not comm["tasks_live"]:
            return
        if not fleet.wait(0.25):
            return
    progress(f"still busy after a {drain:.0f} s drain: what is left is counted unfinished")


def ask_every_task(supervisor: Any, count: int, timeout: float = 20.0) -> dict[str, dict[str, Any] | None]:
    """Comm's account of every task it has numbered (1..count), asked over the control
    channel (task ids cannot be guessed, so an operator asks by number): a TaskState body,
    or None for a task Comm does not know."""
    comm = next(c.name for c in supervisor.children.values() if c.role == "comm")
    answer = supervisor.ask_now({comm}, "account", {"count": count}, timeout=timeout).get(comm, {})
    if "tasks" not in answer:
        raise RuntimeError(f"Comm did not give its account of the tasks: {answer.get('error', answer)}")
    return answer["tasks"]
