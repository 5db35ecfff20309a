"""Issue 30 (item 6): the console's Load page takes a scenario, pasted or uploaded, read by
the parser `mroute load --scenario` uses: a wrong key is named on the page before anything
starts (a hook, which only a file run by mroute load may name, among them); a good one
fills the fields it sets and says its behaviours and voice calls; a field changed after
wins, as a flag wins over the file; the run has the scenario's behaviours, and its reports
their figures."""

from __future__ import annotations

import json
import urllib.request

from selenium.webdriver.common.keys import Keys

from ..helpers import base_topology
from .webdrive import NEEDS_CHROMIUM, browser, console, css, on, page, until  # noqa: F401 (fixtures)

pytestmark = NEEDS_CHROMIUM

SCENARIO = """\
customers:
  rate: 12
  duration: 30
  profile: steps:3
  queues: {sales: 3, support: 1}
  priority: {support: 5}
agents:
  handle: fixed:0.2
  think: fixed:0.01
  breaks: {every: 'exp:0.5', length: 'fixed:0.1'}
"""


def spec() -> dict:
    topology = base_topology("webscenario", chat={"count": 1, "agents": 4, "rate": 0})
    topology["actors"]["gc"] = {"role": "gc", "queues": {"phones": {"rate": 0}}}
    topology["queues"] = {name: {"mrd": "chat", "offer_timeout": 1, "ttl": 300,
                                 "steps": [{"expr": "true", "timeout": 30}]} for name in ("sales", "support")}
    return topology


def raw(web, path: str) -> bytes:
    request = urllib.request.Request(web.base + path, headers={"Authorization": f"Bearer {web.token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read()


def typed(driver, selector: str, text: str) -> None:
    on(driver, selector, lambda e: (e.click(), e.send_keys(Keys.CONTROL, "a"), e.send_keys(Keys.DELETE),
                                    e.send_keys(text)))


def test_a_bad_scenario_is_refused_on_the_page_naming_the_key(console, browser):
    _running, web = console(spec())
    load = page(browser, web, "/load")
    for text, said in (("customers: {queues: {billing: 1}}", "customers.queues.billing: not a queue of the topology"),
                       ("agents: {ignore_offers: 0.1}", "agents.ignore_offers: unknown key"),
                       ("agents_per_server: 3", "agents_per_server: fixed by the running topology's file"),
                       ("hook: vip.py:Vip", "hook: only a scenario file run by mroute load may name one"),
                       ("customers: [", "(file): not YAML")):
        typed(load, "#scenario", text)
        on(load, "#check", lambda e: e.click())
        until(load, lambda d: said in css(d, "#scenario-error")[0].text)
        assert css(load, "#scenario-status")[0].text == ""
    on(load, "#start", lambda e: e.click())   # Start reads it too: nothing runs
    until(load, lambda d: "not YAML" in css(d, "#scenario-error")[0].text)
    assert css(load, "#status")[0].text == ""
    # a good one says what it does, its voice calls included
    typed(load, "#scenario", "voice: {calls_per_s: 0.5, talk: 'fixed:2'}")
    on(load, "#check", lambda e: e.click())
    until(load, lambda d: "Scenario valid" in css(d, "#scenario-status")[0].text)
    assert "0.5 voice calls a second on phones (talk fixed:2, ring fixed:1)" in css(load, "#scenario-status")[0].text


def test_an_uploaded_scenario_fills_the_form_and_runs_with_its_behaviours(console, browser, tmp_path):
    running, web = console(spec())
    load = page(browser, web, "/load")
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    css(load, "#scenario-file")[0].send_keys(str(tmp_path / "scenario.yaml"))
    until(load, lambda d: "Scenario valid" in css(d, "#scenario-status")[0].text)
    said = css(load, "#scenario-status")[0].text
    assert "customers choose sales (weight 3), support (weight 1, priority 5)" in said
    assert "NOT_READY breaks every exp:0.5 s for fixed:0.1 s" in said
    field = lambda name: css(load, f'#form [name="{name}"]')[0].get_attribute("value")  # noqa: E731
    assert [field(n) for n in ("rate", "duration", "profile", "handle", "think")] == \
        ["12", "30", "steps:3", "fixed:0.2", "fixed:0.01"]
    assert css(load, "#scenario")[0].get_attribute("value") == SCENARIO
    typed(load, '#form [name="duration"]', "3")   # changed after: it wins over the scenario's 30
    on(load, "#start", lambda e: e.click())
    until(load, lambda d: css(d, "#reports a"), timeout=60)
    assert css(load, "#error")[0].text == "" and "done:" in css(load, "#status")[0].text and "0 lost" in \
        css(load, "#status")[0].text
    shown = [[c.text for c in r.find_elements("css selector", "td")] for r in css(load, "#queue-figures tr")][1:]
    assert [r[0] for r in shown] == ["sales", "support"]
    assert "breaks" in css(load, "#behaviour-figures")[0].text

    report = json.loads(raw(web, "/api/load/report.json"))
    assert report["plan"]["rate"] == 12 and report["plan"]["duration_s"] == 3 and report["plan"]["profile"] == "steps:3"
    assert report["plan"]["queues"] == {"sales": 3.0, "support": 1.0} and report["plan"]["priority"] == {"support": 5}
    assert report["run"]["scenario"] == SCENARIO and report["lost"] == 0
    assert set(report["queues"]) == {"sales", "support"} and report["breaks"] > 0
    assert sum(q["created"] for q in report["queues"].values()) == report["created"] > 0
    assert 'class="queues"' in raw(web, "/api/load/report.html").decode()
    mine = raw(web, "/api/load/report_mroute.csv").decode()
    assert "customer_queue,sales," in mine and "behaviour,breaks," in mine
