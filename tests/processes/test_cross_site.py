"""Issue 24, "Ports that refuse cross-site requests": a page of another site, open in a
browser on the machine, could set a Chat Server's load (`POST /load` as text/plain with a
foreign Origin: 300 tasks/s) and drain the MRE (`GET /drain`), and a name rebound by DNS
to 127.0.0.1 could read /stats and /metrics. The health port of `mroute actor` and the
supervisor's metrics port now refuse all of that, say why, and log it at a bounded rate;
the exported preStop hook still drains."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launch.export.kubernetes import DRAIN_HOOK

from ..cluster import free_port
from ..helpers import base_topology, wait_until
from .test_actor_command import run  # noqa: F401 (the fixture: actors started here are stopped after)

pytestmark = pytest.mark.timeout(90)
EVIL = "http://evil.example"


def request(port: int, path: str, method: str = "GET", body: bytes | None = None,
            **headers: str) -> tuple[int, str]:
    """(status, body) of one request to 127.0.0.1:port, with exactly these headers (a
    `Host` given replaces the one http.client would send)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def lone_chat_server(tmp_path: Path) -> Path:
    """A Chat Server that offers nothing (rate 0), alone: its health port is what is tried."""
    spec = base_topology("guarded", chat={"count": 1, "agents": 3, "rate": 0.0, "handle": 0.3}, agents=2)
    spec["transport"] = "tcp"
    spec["endpoints"] = {name: f"tcp://127.0.0.1:{free_port()}" for name in
                         ("General", "RoutingEngine", "CommunicationServer", "ChatEvents", "GC", "GCEvents")}
    file = tmp_path / "topology.yaml"
    file.write_text(yaml.safe_dump(spec))
    return file


def test_the_health_port_refuses_what_another_sites_page_could_send(tmp_path, run):  # noqa: F811
    (tmp_path / "token").write_text("s3cret-token\n")
    chat = run(lone_chat_server(tmp_path), "chat.1", "--control-token-file", str(tmp_path / "token"),
               "--health-name", "chat.example")
    port = chat.port
    wait_until(lambda: chat.get("/stats")[0] == 200, timeout=30, what="the chat server answering /stats")
    here = f"127.0.0.1:{port}"

    def rate() -> float:   # asked as `mroute load --attach-pods` does: a POST of JSON, {} changes nothing
        status, body = request(port, "/load", "POST", b"{}", Content_Type="application/json")
        assert status == 200, body
        return json.loads(body)["answer"]["rate"]
    assert rate() == 0.0
    hostile = b'{"rate": 300}'
    # what the issue did: a text/plain POST (no preflight) from another site's page
    status, why = request(port, "/load", "POST", hostile, Content_Type="text/plain", Origin=EVIL)
    assert status == 403 and "Origin" in why, (status, why)
    status, why = request(port, "/load", "POST", hostile, Content_Type="application/json", Origin=EVIL)
    assert status == 403 and "Origin 'http://evil.example'" in why, why
    status, why = request(port, "/load", "POST", hostile, Content_Type="application/json", Origin="null")
    assert status == 403 and "Origin" in why, why
    status, why = request(port, "/load", "POST", hostile, Content_Type="application/json",
                          Sec_Fetch_Site="cross-site")
    assert status == 403 and "Sec-Fetch-Site" in why, why
    status, why = request(port, "/load", "POST", hostile, Content_Type="text/plain")
    assert status == 415 and "application/json" in why, why
    status, why = request(port, "/load", "POST", hostile, Content_Type="application/x-www-form-urlencoded")
    assert status == 415, why
    assert rate() == 0.0                                    # none of them set a load
    for origin in (None, EVIL):                             # a GET that drains: any link or <img> could
        status, why = request(port, "/drain", **({"Origin": origin} if origin else {}))
        assert status == 405 and "POST" in why, why
    assert "draining" not in chat.get("/readyz")[1]
    # a name rebound to this address (DNS rebinding) reads nothing, not even the probes
    for path in ("/stats", "/metrics", "/healthz"):
        status, why = request(port, path, Host=f"evil.example:{port}")
        assert status == 403 and "Host 'evil.example:" in why, (path, status, why)
    assert request(port, "/stats", Host=f"localhost:{port}")[0] == 200
    assert request(port, "/healthz", Host=f"chat.example:{port}")[0] in (200, 503)   # --health-name: served
    # this host's own client, same origin, JSON: served without the token (as before)
    status, body = request(port, "/load", "POST", b'{"rate": 0}', Content_Type="application/json; charset=utf-8",
                           Origin=f"http://{here}", Host=here)
    assert status == 200, body
    # every refusal is said in the actor's log, with its reason
    wait_until(lambda: "refused POST '/load'" in chat.text(), timeout=10, what="a log line about the refusals")
    assert "Origin 'http://evil.example'" in chat.text()
    # the preStop hook the Kubernetes export writes still drains (a POST of JSON, from this host)
    hook = subprocess.run([sys.executable, "-c", DRAIN_HOOK.replace(":8080/", f":{port}/")], capture_output=True,
                          text=True, timeout=60)
    assert hook.returncode == 0, hook.stderr
    assert "draining" in chat.get("/readyz")[1]


def test_the_supervisors_metrics_port_answers_only_the_names_it_is_served_as(start_topology):
    port = free_port()
    spec = base_topology("rebound")
    spec["metrics"] = {"port": port, "host": "127.0.0.1", "names": ["mroute.example", "scrape.example:9999"]}
    start_topology(spec)
    status, why = request(port, "/metrics", Host=f"evil.example:{port}")
    assert status == 403 and "Host 'evil.example:" in why, why
    assert request(port, "/metrics", Host="mroute.example:9999")[0] == 403    # a name is served on its port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"mroute.example:{port}", "scrape.example:9999"):
        status, text = request(port, "/metrics", Host=host)
        assert status == 200 and "mroute_actor_up" in text, (host, status)
