"""Issue 18: the web console, driven through a real headless Chromium (Selenium with
Debian's chromium and chromium-driver): the overview lists every actor and shows a Chat
Server scaled from it, the routing page shows a queue's waiting count change, and a
customer and an agent route a real chat through Comm and the MRE on two pages."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from launch import client as control_client
from selenium.webdriver.common.keys import Keys

from ..helpers import base_topology, wait_until
from .webdrive import NEEDS_CHROMIUM, browser, console, css, on, status_of, until  # noqa: F401 (fixtures)

pytestmark = NEEDS_CHROMIUM


def test_every_page_and_action_needs_the_token_and_no_other_site_may_act(console):
    _running, web = console(base_topology("webauth"))
    for path in ("/", "/desk", "/api/state", "/api/stream?ch=overview"):
        assert status_of(web.base + path) == 401, path
    assert status_of(web.base + "/api/state", Authorization="Bearer wrong") == 401
    assert status_of(web.base + "/api/state", Authorization="Bearer gr\u00fc\u00df".encode().decode("latin-1")) == 401
    assert status_of(web.base + "/api/state", Authorization=f"Bearer {web.token}") == 200
    restart = web.base + "/api/actors/restart"
    assert status_of(restart, b'{"name": "mre"}', **{"Content-Type": "application/json"}) == 401
    # what another site's page could send: a form (no JSON), from its origin, or by a rebound name
    authorized = {"Authorization": f"Bearer {web.token}"}
    assert status_of(restart, b'{"name": "mre"}', **authorized, **{"Content-Type": "text/plain"}) == 415
    assert status_of(restart, b'{"name": "mre"}', **authorized, **{"Content-Type": "application/json",
                                                                    "Origin": "http://evil.example"}) == 403
    assert status_of(web.base + "/api/state", **authorized, Host="evil.example") == 403


def test_the_overview_lists_every_actor_and_shows_a_scaled_chat_server(console, browser):
    running, web = console(base_topology("webscale", chat={"count": 1, "agents": 2, "rate": 0}))
    page = browser()
    page.get(f"{web.base}/?token={web.token}")
    rows = lambda: {r.get_attribute("data-actor"): r.text for r in css(page, "#actors tbody tr")}  # noqa: E731
    until(page, lambda d: {"comm.1", "mre.1", "chat.1"} <= set(rows())
          and all("RUNNING" in text for text in rows().values()))
    # typed as a person does (select all, type): the field keeps the focus, no redraw takes it back
    on(page, 'input[data-scale="chat"]', lambda e: (e.click(), e.send_keys(Keys.CONTROL, "a"), e.send_keys("2")))
    on(page, 'button[data-scale-button="chat"]', lambda e: e.click())
    until(page, lambda d: "RUNNING" in rows().get("chat.2", ""), timeout=30)
    until(page, lambda d: "chat.2" in css(page, "#events")[0].text)          # its lifecycle, as it happened
    assert [a["name"] for a in control_client.ask(running.topology, "status")["actors"]].count("chat.2") == 1


def test_the_routing_page_shows_a_queue_filling(console, browser):
    _running, web = console(base_topology("webqueue"))
    page = browser()
    page.get(f"{web.base}/routing?token={web.token}")
    waiting = lambda: css(page, '#queues tr[data-queue="chat-default"] .waiting')  # noqa: E731
    until(page, lambda d: waiting() and waiting()[0].text == "0")
    customer = browser()   # a customer asks for service; no agent is READY: the task waits
    customer.get(f"{web.base}/customer?token={web.token}")
    until(customer, lambda d: css(d, "#queue option"))
    on(customer, "#start-button", lambda e: e.click())
    until(page, lambda d: waiting()[0].text == "1")


def test_a_customer_and_an_agent_route_a_real_chat(console, browser):
    running, web = console(base_topology("webchat"))
    agent, customer = browser(), browser()
    agent.get(f"{web.base}/desk?token={web.token}")
    until(agent, lambda d: css(d, "#agent"))
    on(agent, "#agent", lambda e: e.send_keys("alice"))
    on(agent, "#password", lambda e: e.send_keys("pw-alice"))
    on(agent, "#login-button", lambda e: e.click())
    until(agent, lambda d: css(d, "#desk")[0].is_displayed())
    on(agent, "#ready", lambda e: e.click())
    until(agent, lambda d: css(d, "#state")[0].text == "READY")

    customer.get(f"{web.base}/customer?token={web.token}")
    until(customer, lambda d: css(d, "#queue option"))
    on(customer, "#customer", lambda e: (e.clear(), e.send_keys("Kim Lee")))
    on(customer, "#start-button", lambda e: e.click())
    until(agent, lambda d: css(d, ".offer .accept") and "Kim Lee" in css(d, ".offer")[0].text)
    on(agent, ".offer .accept", lambda e: e.click())
    until(customer, lambda d: css(d, "#state")[0].text == "CONNECTED" and "alice" in css(d, "#agent")[0].text)

    on(customer, "#text", lambda e: e.send_keys("Hello, my order is late"))
    on(customer, "#send", lambda e: e.click())
    until(agent, lambda d: "Hello, my order is late" in css(d, ".chat .transcript")[0].text)
    on(agent, ".chat .agent-text", lambda e: e.send_keys("Sorry about that, let me look"))
    on(agent, ".chat .send", lambda e: e.click())
    until(customer, lambda d: "let me look" in css(d, "#transcript")[0].text)

    on(agent, ".chat .end", lambda e: e.click())            # the customer is told; alice wraps up
    until(customer, lambda d: css(d, "#state")[0].text == "ENDED")
    on(agent, ".chat.wrapup .done", lambda e: e.click())
    until(customer, lambda d: css(d, "#state")[0].text == "CLOSED")
    until(agent, lambda d: css(d, "#chats")[0].text == "none")
    comm = control_client.ask(running.topology, "stats")["actors"]["comm.1"]   # CLOSED in Comm, DONE by alice
    assert comm["tasks_closed"] == 1 and comm["queues"]["chat-default"]["accepted"] == 1

    # the console stops at once with its pages open, and its agent leaves with it
    assert web.stop() == 0
    until(agent, lambda d: "lost" in css(d, "#where")[0].text)   # the page says it lost the console

    def logged_in() -> int:
        states = control_client.ask(running.topology, "stats")["actors"]["comm.1"]["agents_by_state"]["chat"]
        return sum(n for state, n in states.items() if state != "LOGOUT")
    wait_until(lambda: logged_in() == 0, timeout=10, what="alice logged out with the console")


def test_a_load_run_from_the_console_ends_with_its_reports(console):
    running, web = console(base_topology("webload", chat={"count": 1, "agents": 3, "rate": 0}))
    headers = {"Authorization": f"Bearer {web.token}", "Content-Type": "application/json"}

    def call(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(web.base + path, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.read()
    with pytest.raises(urllib.error.HTTPError) as refused:   # a bad form is refused, naming the field
        call("/api/load/start", {"rate": "fast"})
    assert refused.value.code == 400 and "rate" in refused.value.read().decode()
    call("/api/load/start", {"rate": 10, "duration": 2, "handle": "fixed:0.2", "drain": 10})
    wait_until(lambda: json.loads(call("/api/state"))["load"]["reports"], timeout=40, what="the load's reports")
    report = json.loads(call("/api/load/report.json"))
    assert report["created"] > 5 and report["lost"] == 0 and report["closed"] == report["created"]
    assert b"<svg" in call("/api/load/report.html")
    assert call("/api/load/report_stats.csv").decode().startswith("Type,Name,Request Count,Failure Count")
    assert call("/api/load/report_mroute.csv").decode().startswith("type,name,measure,count")
    # the Chat Server has what it was doing before the run back
    assert control_client.ask(running.topology, "stats")["actors"]["chat.1"]["rate"] == 0
