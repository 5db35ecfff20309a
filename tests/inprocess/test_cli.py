"""The CLI's own pieces without a topology: what `mroute tap` shows. The CLI against real
topologies: tests/processes/test_cli.py."""

from __future__ import annotations


def test_tap_hides_passwords():
    from launch.tap import decode
    connect = decode("General", [b"Connect", b'{"AgentId": "alice", "Password": "pw-alice"}'])
    assert connect["body"]["Password"] == "(hidden)" and connect["agent"] == "alice"
    for command in (b"Login#alice", b" login #alice"):  # the GC reads both
        login = decode("GC", [command, b"pw-alice,1001"])
        assert "pw-alice" not in str(login) and login["agent"] == "alice"
    broken = decode("General", [b"Connect", b'{"AgentId": "alice", "Password": "pw-alice",}'])
    assert "pw-alice" not in str(broken)
