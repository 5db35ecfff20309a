"""`mroute bench profile`: where each process's CPU goes per lifecycle (issue 28's budget).

A topology of the file's Comm, MRE and GC with two simulated Chat Servers is held at a fixed
rate while py-spy samples every process's loop thread (`py-spy record --format raw`, the
folded stacks kept under .mroute/profiles/, out of git). Each process's CPU per lifecycle
is /proc's; it is split by the samples, each counted to the innermost frame of a known kind
(PARTS), the rest `other`. py-spy counts a thread that a syscall made runnable but that has
not run yet, so a send that wakes another thread reads dearer than its CPU.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

PARTS = (  # part -> the frames it is, by function name (the innermost such frame decides)
    ("journal", r"(Journal|Storage|Unwritten)\.|CommCore\.take_changes"),
    ("poll", r"Poller\.poll"),
    ("send", r"send_frames|Sender\.|Outflow\.|Socket\.send"),
    ("recv", r"recv_frames|recv_frames_with_peer|Socket\.recv"),
    ("decode", r"decode\b|decode_stream|_validate|_check_kind|unbatch|loads|check\b|valid\b|Session\.decode"),
    ("encode", r"encode\b|encode_raw|encode_pub|Streams\.numbered|dumps"),
    ("handle", r"Turn\.|CommCore\.|Engine\.|Mre|ChatServer\.|Desk\.|Customers\.|Session\.|Tasks\.|Agents\.|on_"),
)
_PART = [(name, re.compile(rf"^(?:{rx})")) for name, rx in PARTS]
_PLACE = re.compile(r" \(.*\)$", re.S)
_COUNT = re.compile(r" (\d+)$")


def py_spy() -> str:
    """The py-spy beside this Python, else on PATH; not a dependency of ours (`pip install py-spy`)."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: `.venv/bin/pip install py-spy`, then run this again")
    return found


def split(folded: Path) -> Counter[str]:
    """Samples per part, from py-spy's raw output: `frame;frame;... count` a stack. A frame
    read while it changed (--nonblocking) may hold a line break: a stack ends at its count."""
    parts: Counter[str] = Counter()
    stack = ""
    for piece in folded.read_text(errors="replace").split("\n"):
        stack += piece
        ended = _COUNT.search(stack)
        if ended is None:
            stack += "\n"
            continue
        part = "other"
        for frame in reversed(stack[:ended.start()].split(";")):
            name = _PLACE.sub("", frame)
            hit = next((part for part, rx in _PART if rx.match(name)), None)
            if hit is not None:
                part = hit
                break
        parts[part] += int(ended.group(1))
        stack = ""
    return parts


def profile(base_file: Path, rate: float, seconds: float, out: Path) -> dict[str, Any]:
    from wire.dist import parse

    from ..load.fleet import SpawnedFleet
    from ..load.plan import LoadPlan, Reading
    from ..procstat import cpu_seconds
    from .legs import route_legs
    spy = py_spy()
    out.mkdir(parents=True, exist_ok=True)
    plan = LoadPlan(rate=0, duration=0, handle=parse("fixed:0.01"), think=parse("fixed:0"), patience=None)
    fleet = SpawnedFleet(base_file, 2, 250, plan)
    spies: list[subprocess.Popen[bytes]] = []
    try:
        pids = {name: pid for name, pid in fleet.pids().items() if name.split(".")[0] in ("comm", "mre", "chat")}
        fleet.tell({"rate": rate / len(fleet.chats)})
        if not fleet.wait(1.5):
            raise KeyboardInterrupt
        before = Reading.of(fleet.stats(), fleet.chats)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        spies = [subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", "200",
                                   "--nonblocking", "--format", "raw", "-o", str(out / f"{name}.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name, pid in pids.items()]
        if not fleet.wait(seconds):
            raise KeyboardInterrupt
        after = Reading.of(fleet.stats(), fleet.chats)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        for spying in spies:
            spying.wait(timeout=30)
        # a second more at the same rate, py-spy gone: the route's p50 and its legs, of the
        # same tasks (the legs' are the newest)
        settled = Reading.of(fleet.stats(), fleet.chats)
        if not fleet.wait(1.0):
            raise KeyboardInterrupt
        last = Reading.of(fleet.stats(), fleet.chats)
        route = last.latency.minus(settled.latency)
        fleet.tell({"rate": 0})  # the trace memories stop moving while they are asked
        if not fleet.wait(0.5):  # and the newest tasks are offered
            raise KeyboardInterrupt
        # Comm numbers the Tasks it took (`queued`), not those the Chat Servers' throttle kept
        legs = route_legs(fleet.supervisor, set(pids), next(name for name in pids if name.startswith("comm")),
                          last.counts["queued"], tasks=min(300, last.counts["queued"] - settled.counts["queued"]))
    finally:
        for spying in spies:
            if spying.poll() is None:
                spying.kill()
                spying.wait()
        fleet.close()
    done = after.counts["closed"] - before.counts["closed"]
    processes = {}
    for name in pids:
        used = cpu_after[name] - cpu_before[name]  # type: ignore[operator]
        per_lifecycle = used / done * 1e6 if done else 0.0
        parts = split(out / f"{name}.txt") if (out / f"{name}.txt").exists() else Counter()
        samples = sum(parts.values()) or 1
        processes[name] = {"total": round(per_lifecycle),
                           **{part: round(per_lifecycle * n / samples) for part, n in parts.most_common()}}
    return {"rate_per_s": rate, "completed_per_s": round(done / (after.at - before.at)), "seconds": seconds,
            "profiles": str(out), "cpu_us_per_lifecycle": processes,
            "route_p50_us": round(route.percentile(50)) if route.count else None, "route_legs": legs}


def profiles_dir(run_root: Path) -> Path:
    return run_root / ".mroute" / "profiles" / time.strftime("%Y%m%d-%H%M%S")
