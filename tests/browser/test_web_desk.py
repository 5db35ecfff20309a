"""Issue 25 (points 5 and 6): the console's agent desk and customer page in a real headless
Chromium. On the default topology the console's customer meets the console's desk, not a
bot, and a simulated customer's task at the desk says what it is and what can be done
with it; an offer shows whose customer, which queue and the time left to accept, and can
be declined; the Ready button shows the state; every line of a chat has its time; Transfer
lists only agents that can take the chat; ending a chat is a wrap-up, then Done; a closed
chat's customer has no input left."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..helpers import base_topology
from .webdrive import NEEDS_CHROMIUM, api, browser, console, css, log_in, on, page, until  # noqa: F401 (fixtures)

pytestmark = NEEDS_CHROMIUM
DEFAULT = Path(__file__).resolve().parents[2] / "topology.yaml"


def default_topology(name: str) -> dict:
    """The repository's topology.yaml as it is (bots chatting, 5 a second per Chat Server),
    under a name of its own and without the fixed metrics port."""
    spec = yaml.safe_load(DEFAULT.read_text())
    spec.update(name=name, metrics={"port": 0, "host": "127.0.0.1"})
    return spec


def offer_of(driver, text):
    return [card for card in css(driver, ".offer") if text in card.text]


def text_of(driver, selector) -> str:
    """The text of what `selector` finds first, read again if a redraw replaced it meanwhile."""
    return until(driver, lambda d: css(d, selector) and css(d, selector)[0].text)


def pressed(driver, selector) -> bool:
    return css(driver, selector)[0].get_attribute("aria-pressed") == "true"


def test_on_the_default_topology_the_console_customer_meets_the_console_desk(console, browser):
    _running, web = console(default_topology("webdefault"))
    agent = page(browser, web, "/desk")
    suggested = until(agent, lambda d: [o.get_attribute("value") for o in css(d, "#agent-ids option")])
    log_in(agent, suggested[0], "secret")   # the first agent the desk suggests: the console's own
    on(agent, "#ready", lambda e: e.click())
    until(agent, lambda d: not css(d, "#state")[0].text.startswith("NOT_READY"))

    customer = page(browser, web, "/customer")
    until(customer, lambda d: css(d, "#queue option"))
    on(customer, "#customer", lambda e: (e.clear(), e.send_keys("Kim Lee")))
    on(customer, "#start-button", lambda e: e.click())
    # the person at the console's desk is offered it (no bot took it), and only it: the
    # simulated customers' chats, ten a second, are not offered to the console's agents
    until(agent, lambda d: offer_of(d, "Kim Lee"), timeout=30)
    assert len(css(agent, ".offer")) == 1, [card.text for card in css(agent, ".offer")]
    on(agent, ".offer .accept", lambda e: e.click())
    until(customer, lambda d: css(d, "#state")[0].text == "CONNECTED")
    assert text_of(customer, "#agent") == f"with {suggested[0]}"
    assert not css(agent, ".offer") and len(css(agent, ".chat")) == 1


def test_a_simulated_customer_s_task_at_the_desk_says_what_it_is(console, browser):
    _running, web = console(default_topology("webbots"))
    agent = page(browser, web, "/desk")
    log_in(agent, "agent19", "secret")   # no Chat Server desks it, and it is not `console`: it serves the bots' queue
    on(agent, "#ready", lambda e: e.click())
    until(agent, lambda d: css(d, ".offer .badge.simulated"), timeout=30)
    task = until(agent, lambda d: css(d, ".offer")[0].get_attribute("data-task"))
    offer = f'.offer[data-task="{task}"]'
    text = until(agent, lambda d: re.search(r"chat\.[12]-c\d+", text_of(d, offer)) and text_of(d, offer))   # whose
    assert "simulated customer" in text.lower() and "no conversation is carried here" in text
    assert "queue chat-default" in text and re.search(r"\d+ s to accept", text)
    on(agent, f'.offer[data-task="{task}"] .accept', lambda e: e.click())
    until(agent, lambda d: css(d, f'.chat[data-task="{task}"]'))
    held = text_of(agent, f'.chat[data-task="{task}"]')
    assert "End it when done, or Transfer it" in held and not css(agent, f'.chat[data-task="{task}"] .agent-text')
    on(agent, f'.chat[data-task="{task}"] .end', lambda e: e.click())
    on(agent, f'.chat.wrapup[data-task="{task}"] .done', lambda e: e.click())
    until(agent, lambda d: not css(d, f'.chat[data-task="{task}"]'))


def test_an_offer_says_whose_and_how_long_and_may_be_declined(console, browser):
    _running, web = console(base_topology("weboffer"))
    agent = page(browser, web, "/desk")
    log_in(agent, "alice", "pw-alice")
    until(agent, lambda d: pressed(d, "#not-ready") and not pressed(d, "#ready"))   # the button shows the state
    on(agent, "#ready", lambda e: e.click())
    until(agent, lambda d: pressed(d, "#ready") and not pressed(d, "#not-ready"))

    customer = page(browser, web, "/customer")
    until(customer, lambda d: css(d, "#queue option"))
    on(customer, "#customer", lambda e: (e.clear(), e.send_keys("Kim Lee")))
    on(customer, "#start-button", lambda e: e.click())
    until(agent, lambda d: offer_of(d, "Kim Lee"))
    text = until(agent, lambda d: offer_of(d, "Kim Lee")[0].text)
    assert "queue chat-default" in text and "Accept" in text and "Decline" in text
    left = int(re.search(r"(\d+) s to accept", text).group(1))
    assert 0 < left <= 15   # chat-default's offer_timeout: 15 s, then RONA

    on(agent, ".offer .decline", lambda e: e.click())   # back to its queue; alice is not ready
    until(agent, lambda d: not css(d, ".offer") and pressed(d, "#not-ready"))
    assert css(agent, "#state")[0].text == "NOT_READY · DECLINED"   # the reason code says why
    until(customer, lambda d: "back in the queue" in css(d, "#transcript")[0].text)
    on(agent, "#ready", lambda e: e.click())             # ready again: offered again
    until(agent, lambda d: offer_of(d, "Kim Lee"))


def test_a_chat_has_times_transfers_to_who_can_take_it_and_ends_in_wrap_up(console, browser):
    _running, web = console(base_topology("webwrap"))
    api(web, "/api/desk/login", {"agent": "bob", "password": "pw-bob"})   # bob is at the console, not ready
    alice = page(browser, web, "/desk")
    log_in(alice, "alice", "pw-alice")
    on(alice, "#ready", lambda e: e.click())
    customer = page(browser, web, "/customer")
    until(customer, lambda d: css(d, "#queue option"))
    on(customer, "#start-button", lambda e: e.click())
    on(alice, ".offer .accept", lambda e: e.click())
    on(customer, "#text", lambda e: e.send_keys("Hello, my order is late"))
    on(customer, "#send", lambda e: e.click())
    until(alice, lambda d: "Hello, my order is late" in css(d, ".chat .transcript")[0].text)
    for driver, lines in ((alice, ".chat .transcript .line"), (customer, "#transcript .line")):   # each line: a time
        times = until(driver, lambda d: [[t.text for t in line.find_elements("css selector", ".time")]
                                         for line in css(d, lines)])
        assert all(len(t) == 1 and re.fullmatch(r"\d\d:\d\d:\d\d", t[0]) for t in times), times

    # bob is not ready: nobody can take it; once he is ready, he is the one listed
    until(alice, lambda d: css(d, ".chat select")[0].get_attribute("disabled") is not None
          and "no agent can take it now" in css(d, ".chat select")[0].text)
    api(web, "/api/desk/state", {"agent": "bob", "state": "READY"})
    until(alice, lambda d: [o.text for o in css(d, ".chat select option")] == ["bob"])
    on(alice, ".chat .transfer", lambda e: e.click())
    until(alice, lambda d: not css(d, ".chat"))
    until(customer, lambda d: "transferred to bob" in css(d, "#transcript")[0].text)

    bob = page(browser, web, "/desk")
    log_in(bob, "bob", "pw-bob")   # (his session is here already: the page picks it up)
    on(bob, ".chat .end", lambda e: e.click())
    until(customer, lambda d: css(d, "#state")[0].text == "ENDED" and not css(d, "#say")[0].is_displayed())
    until(bob, lambda d: css(d, ".chat.wrapup") and "WRAP-UP" in css(d, ".chat.wrapup")[0].text)
    assert not css(bob, ".chat.wrapup .agent-text")   # nothing more is said in wrap-up
    on(bob, ".chat.wrapup .done", lambda e: e.click())
    until(bob, lambda d: not css(d, ".chat"))
    until(customer, lambda d: css(d, "#state")[0].text == "CLOSED")
    assert not css(customer, "#say")[0].is_displayed() and not css(customer, "#text")[0].is_displayed()
