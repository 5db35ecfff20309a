"""Issue 17: metrics an operator can scrape from the first second: a fixed port from the
topology, the first scrape complete (every actor, every queue, every MRD's every state, at
0 when nothing happened), exact bucket edges, build info, clean under promtool; and the
Grafana dashboard and Prometheus configuration that ship name only what exists."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from wire.states import AGENT_STATES, LOGOUT

from ..cluster import free_port
from ..helpers import MROUTE, base_topology

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def scrape(url: str) -> tuple[str, list[tuple[str, dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    samples = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
            samples.append((match[1], labels, float(match[3])))
    return text, samples


@pytest.fixture
def metered(start_topology):
    port = free_port()
    spec = base_topology("metered", chat={"count": 1, "agents": 3, "rate": 5, "handle": 0.3})
    spec["queues"] = {"sales": {"mrd": "chat"}, "support": {"mrd": "chat"}}
    spec["metrics"] = {"port": port, "host": "127.0.0.1"}
    running = start_topology(spec)
    return running, f"http://127.0.0.1:{port}/metrics"


def test_the_first_scrape_on_the_topologys_port_is_complete(metered):
    running, url = metered
    assert running.status()["metrics"] == url                      # the port the topology names
    text, samples = scrape(url)                                    # at once: `up` has just returned
    names = {name for name, _, _ in samples}
    up = {labels["actor"]: value for name, labels, value in samples if name == "mroute_actor_up"}
    assert up == {"comm.1": 1.0, "mre.1": 1.0, "chat.1": 1.0}
    agents = {(l["mrd"], l["state"]) for name, l, _ in samples if name == "mroute_agents"}
    assert agents == {(mrd, state) for mrd in ("chat", "voice") for state in AGENT_STATES if state != LOGOUT}
    waiting = {l["queue"] for name, l, _ in samples if name == "mroute_tasks_waiting"}
    assert {"sales", "support"} <= waiting
    outcomes = {l["outcome"] for name, l, _ in samples if name == "mroute_chat_tasks_total" and l["actor"] == "chat.1"}
    assert {"created", "closed", "lost", "abandoned", "errors"} <= outcomes
    (info,) = [labels for name, labels, _ in samples if name == "mroute_build_info"]
    assert info["version"] and info["libzmq"] and info["pyzmq"]
    # every bucket edge exactly a power of two in microseconds, as the actors' own buckets
    edges = {labels["le"] for name, labels, _ in samples if name.endswith("_bucket")} - {"+Inf"}
    assert edges == {repr((1 << k) / 1e6) for k in range(9, 27)}
    assert "mroute_routing_latency_seconds_bucket" in names and "mroute_queue_wait_seconds_bucket" in names


def test_metrics_pass_promtool_and_the_dashboard_names_only_what_exists(metered):
    _running, url = metered
    text, samples = scrape(url)
    names = {name for name, _, _ in samples}
    promtool = shutil.which("promtool")
    if promtool:
        done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "mroute-dashboard.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) >= 10
    for expr in expressions:
        used = set(re.findall(r"\bmroute_[a-z_]+", expr))
        assert used, expr
        missing = used - names
        assert not missing, f"{expr} names {missing}, which no scrape has"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for subject in ("throughput", "latency", "queue", "agents", "restarts", "refused"):
        assert subject in titles
    if not promtool:
        pytest.skip("promtool is not on this machine (Debian package prometheus): the scrape was parsed, not linted")


def test_prometheus_configuration_scrapes_the_topologys_port():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    topology = yaml.safe_load((ROOT / "topology.yaml").read_text())
    target = f"{topology['metrics']['host']}:{topology['metrics']['port']}"
    assert target in config["scrape_configs"][0]["static_configs"][0]["targets"]
    pods = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml").read_text())
    relabel = pods["scrape_configs"][0]["relabel_configs"]
    assert any("prometheus_io_scrape" in " ".join(r["source_labels"]) for r in relabel)
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on this machine: the configuration was read, not checked")
    done = subprocess.run([promtool, "check", "config", str(ROOT / "deploy" / "prometheus" / "prometheus.yml")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_metrics_port_in_use_stops_the_start_naming_the_key(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        spec = base_topology("portless")
        spec["metrics"] = {"port": taken.getsockname()[1]}
        (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
        done = subprocess.run([*MROUTE, "up", "-f", str(tmp_path / "topology.yaml"), "--for", "1"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "topology key metrics" in done.stderr and "in use" in done.stderr, done.stderr
