"""`mroute top` and `mroute trace` frames of the widest values and longest names fit 80
columns whole (issue 25, point 7), rendered here. The commands piped:
tests/processes/test_terminal_width.py."""

from __future__ import annotations

import io
import re

from rich.console import Console


CLOCK = re.compile(r"\b\d\d:\d\d:\d\d\.\d{3}\b")


def widest(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


def worst_view(processes: int = 5) -> dict:
    """A frame with the widest values each column is sized for."""
    from wire.states import AGENT_STATES
    procs = [{"name": f"chat.{i}", "role": "chat", "state": "UNRESPONSIVE", "reason": "missed 3 pings in a row",
              "pid": 4194303, "uptime": 1.0, "restarts": 12, "cpu_percent": 100.0, "rss_mb": 1234.5,
              "in_per_s": 123456.0, "out_per_s": 123456.0} for i in range(1, processes + 1)]
    return {"topology": "local", "processes": procs,
            "agents_by_state": {mrd: dict.fromkeys(AGENT_STATES, 1000) for mrd in ("chat", "voice", "email")},
            "queues": {"chat-default-long": {"mrd": "chat", "waiting": 10000, "oldest_wait_s": 299.9}},
            "routed_per_s": 12345.6, "route_p50_us": 1234.0, "route_p99_us": 98765.0, "service_level": 0.987}


def printed(renderable, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def test_a_top_frame_of_the_widest_values_fits_80_columns_whole():
    from launch.top import render
    text = printed(render(worst_view(), 1.0), 80)
    assert widest(text) <= 80 and "…" not in text, text
    for value in ("UNRESPONSIVE", "4194303", "100.0", "1234.5", "123,456", "chat-default-long", "299.9 s",
                  "PENDING_NOT_READY", "98.77 ms", "98.7 %", "missed 3 pings in a row"):
        assert value in text, (value, text)
    rows = [line for line in text.splitlines() if "4194303" in line]
    assert len(rows) == 5 and all(row.count("123,456") == 2 for row in rows), text   # in/s and out/s, whole
    assert "out/s" in text


def test_a_trace_of_the_longest_names_fits_80_columns_without_cutting_a_word():
    from launch.traceview import HopTable
    hops = [{"at": 1_700_000_000.0, "after_ms": 0.0, "actor": "comm.1", "queue": "General", "type": "Task",
             "state": "QUEUED", "code": None, "agent": None},
            {"at": 1_700_000_300.0, "after_ms": 300000.0, "actor": "comm.1", "queue": "CommunicationServer",
             "type": "TaskAgentTransferred", "state": None, "code": None, "agent": "agent100"},
            {"at": 1_700_000_300.1, "after_ms": 100.5, "actor": "chat.10", "queue": "ChatEvents",
             "type": "TaskState", "state": "CLOSED", "code": "NO_AGENT_AVAILABLE", "agent": "agent100"}]
    text = printed(HopTable("1a24b3a026c-375-3f9c5cf02ead", hops), 80)
    assert widest(text) <= 80 and "…" not in text, text
    words = set(text.split())
    assert {"TaskAgentTransferred", "NO_AGENT_AVAILABLE", "300000.000", "agent100", "chat.10"} <= words, text
    assert len(CLOCK.findall(text)) == 3, text
