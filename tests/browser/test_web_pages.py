"""Issue 25 (point 6): the console's pages in a real headless Chromium. Every page loads
without an error in the browser's console (the icon included); a real lifecycle event
replaces "none since the console started"; a chat that ended hides its customer's input
(the stylesheet's `.row` display overrode `hidden`); the Routing page lists every logged-in
agent (where it is, its state on each MRD, time in state, reason code, tasks in hand),
live; the Voice page lists the voice agents and answers a call."""

from __future__ import annotations

import re

from launch import client as control_client

from ..helpers import base_topology, wait_until
from .webdrive import NEEDS_CHROMIUM, api, browser, console, css, errors, on, page, status_of, until  # noqa: F401

pytestmark = NEEDS_CHROMIUM
GC = {"role": "gc", "queues": {"sales": {"rate": 0}}, "wrap_up": 0, "answer_delay": 1.0}


def with_gc(name: str) -> dict:
    spec = base_topology(name)
    spec["actors"]["gc"] = dict(GC)
    return spec


def test_every_page_loads_without_an_error_and_the_icon_is_served(console, browser):
    _running, web = console(with_gc("webicon"))
    answer = status_of(web.base + "/favicon.ico")   # as a browser asks for it: before any page, without a token
    assert answer == 200
    driver = browser()
    driver.get(f"{web.base}/?token={web.token}")
    for path in ("/", "/routing", "/load", "/desk", "/customer", "/voice"):
        driver.get(web.base + path)
        until(driver, lambda d: "topology webicon" in css(d, "#where")[0].text)
        until(driver, lambda d: d.execute_script("return document.readyState") == "complete")
        assert errors(driver) == [], path


def test_a_real_lifecycle_event_replaces_none_since_the_console_started(console, browser):
    running, web = console(base_topology("webevents"))
    overview = page(browser, web, "/")
    until(overview, lambda d: "none since the console started" in css(d, "#events")[0].text)
    control_client.ask(running.topology, "restart", {"name": "mre"}, timeout=30)
    until(overview, lambda d: "mre.1 RUNNING" in css(d, "#events")[0].text)
    assert "none since the console started" not in css(overview, "#events")[0].text


def test_a_chat_that_ended_leaves_its_customer_no_input(console, browser):
    _running, web = console(base_topology("webleave"))
    customer = page(browser, web, "/customer")
    until(customer, lambda d: css(d, "#queue option"))
    on(customer, "#start-button", lambda e: e.click())   # nobody is ready: it waits
    until(customer, lambda d: css(d, "#state")[0].text == "QUEUED" and css(d, "#text")[0].is_displayed())
    on(customer, "#leave", lambda e: e.click())
    until(customer, lambda d: css(d, "#state")[0].text == "CLOSED")
    assert not css(customer, "#text")[0].is_displayed() and not css(customer, "#send")[0].is_displayed()
    assert css(customer, "#leave")[0].text == "Start another chat"


def row(driver, agent: str) -> list[str]:
    """The Routing page's row of an agent: its cells' text."""
    found = css(driver, f'#team tr[data-agent="{agent}"]')
    return [cell.text for cell in found[0].find_elements("css selector", "td")] if found else []


def test_the_routing_page_lists_every_logged_in_agent_live(console, browser):
    # chat.1 desks alice and bob (simulated, READY); agent1 and agent2 serve a queue of the
    # console's own
    spec = base_topology("webteam", chat={"count": 1, "agents": 2, "rate": 0})
    spec["agents"][2]["generate"]["attributes"] = {"console": True}
    spec["queues"] = {"chat-default": {"mrd": "chat", "steps": [{"expr": "not console", "timeout": 30}]},
                      "chat-desk": {"mrd": "chat", "steps": [{"expr": "console", "timeout": 30}]}}
    _running, web = console(spec)
    for agent in ("agent1", "agent2"):
        api(web, "/api/desk/login", {"agent": agent, "password": "secret"})
    routing = page(browser, web, "/routing")
    # agent, desk, then per MRD (chat, voice): state, reason, in state, tasks
    # (the table is drawn again each second: each look is a wait, which looks again at a row redrawn)
    until(routing, lambda d: row(d, "alice")[:3] == ["alice", "chat.1 (simulated)", "READY"]
          and row(d, "alice")[5:6] == ["0"])
    until(routing, lambda d: row(d, "agent1")[:3] == ["agent1", "this console", "NOT_READY"]
          and row(d, "agent1")[5:6] == ["0"] and re.fullmatch(r"\d+:\d\d", row(d, "agent1")[4]))   # time in state
    until(routing, lambda d: row(d, "agent2") and not row(d, "agent3"))   # agent3 is not logged in: not listed

    # live: agent1 takes a chat (ACTIVE, 1 task), agent2 declines one (NOT_READY, DECLINED)
    api(web, "/api/desk/state", {"agent": "agent1", "state": "READY"})
    api(web, "/api/desk/start", {"customer": "Kim Lee", "queue": "chat-desk"})
    offered = until(routing, lambda d: api(web, "/api/desk/agent", {"agent": "agent1"})["offers"])
    api(web, "/api/desk/task", {"agent": "agent1", "task": offered[0]["task"], "action": "accept"})
    until(routing, lambda d: row(d, "agent1")[2:6:3] == ["ACTIVE", "1"])
    api(web, "/api/desk/state", {"agent": "agent2", "state": "READY"})
    api(web, "/api/desk/start", {"customer": "Sam Roe", "queue": "chat-desk"})
    offered = until(routing, lambda d: api(web, "/api/desk/agent", {"agent": "agent2"})["offers"])
    api(web, "/api/desk/task", {"agent": "agent2", "task": offered[0]["task"], "action": "decline"})
    until(routing, lambda d: row(d, "agent2")[2:4] == ["NOT_READY", "DECLINED"])


def test_the_voice_page_lists_the_agents_and_answers_a_call(console, browser):
    running, web = console(with_gc("webvoice"))
    api(web, "/api/desk/login", {"agent": "alice", "password": "pw-alice"})   # extension 1001: voice too
    voice = page(browser, web, "/voice")
    mine = '#mine [data-agent="alice"]'
    until(voice, lambda d: css(d, mine) and "NOT_READY" in css(d, mine)[0].text)
    on(voice, f"{mine} .voice-ready", lambda e: e.click())
    until(voice, lambda d: css(d, f"{mine} .voice-ready")[0].get_attribute("aria-pressed") == "true")
    voice_row = lambda d: [c.text for c in css(d, '#voice-agents tr[data-agent="alice"] td')]  # noqa: E731
    until(voice, lambda d: voice_row(d)[1:4] == ["this console", "1001", "READY"])

    on(voice, '#calls button[data-queue="sales"]', lambda e: e.click())
    until(voice, lambda d: css(d, f"{mine} .call .answer") and "RINGING" in css(d, f"{mine} .call")[0].text)
    on(voice, f"{mine} .call .answer", lambda e: e.click())
    until(voice, lambda d: css(d, f"{mine} .call") and "ACTIVE" in css(d, f"{mine} .call")[0].text)
    until(voice, lambda d: voice_row(d)[3:4] == ["BUSY"])   # (TALKING, as Comm holds it: the voice MRD at its limit)
    on(voice, f"{mine} .call .hangup", lambda e: e.click())
    until(voice, lambda d: not css(d, f"{mine} .call") and "no call" in css(d, mine)[0].text)

    def on_voice() -> int:
        states = control_client.ask(running.topology, "stats")["actors"]["comm.1"]["agents_by_state"]["voice"]
        return sum(n for state, n in states.items() if state != "LOGOUT")
    assert on_voice() == 1
    assert web.stop() == 0   # the console stops: alice, ready for calls here, leaves voice too
    wait_until(lambda: on_voice() == 0, timeout=10, what="alice logged out of voice with the console")
