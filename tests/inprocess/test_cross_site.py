"""Issue 24, "Ports that refuse cross-site requests": what the guard of our small HTTP ports
lets through and how often it says it refused. The ports themselves, served:
tests/processes/test_cross_site.py."""

from __future__ import annotations

from launch.httpguard import Guard, Refusal, RefusalLog

from ..fakeclock import FakeClock


def test_a_guard_knows_the_names_a_port_is_served_as():
    wildcard = Guard("0.0.0.0", 8080, ["mroute-chat"])
    assert wildcard.host({"Host": "10.1.2.3:8080"}, "10.1.2.3") is None       # the address the client reached
    assert wildcard.host({"Host": "10.9.9.9:8080"}, "10.1.2.3") is not None   # not another one
    assert wildcard.host({"Host": "localhost:8080"}, "10.1.2.3") is not None  # loopback names: on loopback only
    assert wildcard.host({"Host": "LOCALHOST:8080"}, "127.0.0.1") is None
    assert wildcard.host({"Host": "[::1]:8080"}, "::1") is None
    assert wildcard.host({"Host": "mroute-chat:8080"}, "10.1.2.3") is None
    assert wildcard.host({"Host": "mroute-chat:8081"}, "10.1.2.3") is not None
    assert wildcard.host({}, "10.1.2.3") is None                              # no browser sends none
    same = {"Host": "127.0.0.1:8080", "Content-Type": "application/json", "Origin": "http://127.0.0.1:8080"}
    assert wildcard.change("POST", "/load", same) is None
    assert wildcard.change("POST", "/load", {**same, "Sec-Fetch-Site": "same-origin"}) is None
    assert wildcard.change("GET", "/load", same).status == 405                 # type: ignore[union-attr]
    assert wildcard.change("POST", "/load", {**same, "Origin": "http://127.0.0.1:9999"}).status == 403  # type: ignore


def test_refusals_are_logged_at_a_bounded_rate(caplog):
    time = FakeClock(100.0)
    refusals = RefusalLog(__import__("logging").getLogger("mroute.test"), every=10.0, clock=time.clock)
    with caplog.at_level("WARNING", logger="mroute.test"):
        for _ in range(1000):                       # a flood: said once, at once
            refusals.refused("POST '/load'", Refusal(403, "Origin 'x' is not this port's"))
        assert len(caplog.records) == 1 and "Origin 'x'" in caplog.records[0].getMessage()
        time.advance(10.0)
        refusals.refused("GET '/drain'", Refusal(405, "POST it"))
    assert len(caplog.records) == 2
    assert "and 999 more refused since the last line" in caplog.records[1].getMessage()
