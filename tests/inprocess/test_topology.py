from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from launch.topology import TopologyError, load, parse

from ..helpers import base_topology

ROOT = Path(__file__).resolve().parents[2]


def refuse(tmp_path: Path, spec) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        parse(spec, tmp_path / "topology.yaml")
    return info.value


def test_default_topology_is_valid_and_resolves_every_endpoint():
    topology = load(ROOT / "topology.yaml")
    assert [name for name, _ in topology.instances()] == ["comm.1", "mre.1", "gc.1", "chat.1", "chat.2"]
    assert set(topology.endpoints) == {"General", "RoutingEngine", "CommunicationServer", "ChatEvents", "GC",
                                       "GCEvents"}
    assert all(e.startswith("ipc://") for e in topology.endpoints.values())


@pytest.mark.parametrize("mutate, key", [
    (lambda t: t["actors"]["comm"].update(count=2), "actors.comm.count"),
    (lambda t: t["actors"].update(x={"role": "teleporter"}), "actors.x.role"),
    (lambda t: t["actors"].update(chat={"role": "chat", "count": "two"}), "actors.chat.count"),
    (lambda t: t["mrds"]["chat"].update(max_tasks=11), "mrds.chat.max_tasks"),
    (lambda t: t.update(transport="carrier-pigeon"), "transport"),
    (lambda t: t.update(colour="blue"), "colour"),
    (lambda t: t.pop("mrds"), "mrds"),
    (lambda t: t["agents"].append({"id": "alice", "password": "x"}), "agents"),
    (lambda t: t["agents"].append({"id": "carl"}), "agents[3].password"),
    (lambda t: t.update(queues={"q": {"mrd": "fax"}}), "queues.q.mrd"),
    (lambda t: t.update(queues={"q": {"mrd": "chat", "policy": "RANDOM"}}), "queues.q.policy"),
    (lambda t: t["actors"].update(chat={"role": "chat", "count": 3, "agents": 10}), "actors"),
    (lambda t: t.update(endpoints={"General": "udp://x"}), "endpoints.General"),
    (lambda t: t.update(supervisor={"ping_interval": 0}), "supervisor.ping_interval"),
    (lambda t: t.update(supervisor={"ping_misses": 0}), "supervisor.ping_misses"),
    (lambda t: t.update(supervisor={"ping_misses": 2.5}), "supervisor.ping_misses"),
    (lambda t: t.update(supervisor={"unresponsive_grace": "soon"}), "supervisor.unresponsive_grace"),
    (lambda t: t.update(supervisor={"ping_every": 1}), "supervisor.ping_every"),
    (lambda t: t["actors"]["comm"].update(io_threads=0), "actors.comm.io_threads"),
    (lambda t: t["actors"]["mre"].update(io_threads=17), "actors.mre.io_threads"),
])
def test_bad_topology_is_refused_naming_the_key(tmp_path, mutate, key):
    spec = base_topology()
    mutate(spec)
    err = refuse(tmp_path, spec)
    assert err.key == key
    assert str(err).startswith(f"{tmp_path / 'topology.yaml'}: {key}: ")


def test_liveness_settings_have_defaults_and_take_the_files_values(tmp_path):
    assert {k: parse(base_topology(), tmp_path / "t.yaml").supervisor[k]
            for k in ("ping_interval", "ping_misses", "unresponsive_grace")} == {
        "ping_interval": 1.0, "ping_misses": 3, "unresponsive_grace": 10.0}
    spec = {**base_topology(), "supervisor": {"ping_interval": 0.2, "ping_misses": 5, "unresponsive_grace": 2}}
    timings = parse(spec, tmp_path / "t.yaml").supervisor
    assert (timings["ping_interval"], timings["ping_misses"], timings["unresponsive_grace"]) == (0.2, 5, 2.0)
    assert "must be an integer >= 1, not 0" in str(refuse(tmp_path, {**spec, "supervisor": {"ping_misses": 0}}))


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "topology.yaml"
    path.write_text("name: x\nmrds: {chat: [\n")
    with pytest.raises(TopologyError) as info:
        load(path)
    assert "not valid YAML" in str(info.value) and "line" in str(info.value)


def test_deep_run_directories_get_short_socket_paths(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "topology.yaml").write_text(yaml.safe_dump(base_topology()))
    topology = load(deep / "topology.yaml")
    assert topology.run_dir == deep / ".mroute" / "t"
    assert all(len(e) - len("ipc://") <= 107 for e in topology.endpoints.values())


def test_actors_placed_on_hosts_bind_on_their_hosts_address(tmp_path):
    spec = base_topology("spread", chat={"count": 1, "agents": 2})
    spec["transport"] = "tcp"
    spec["hosts"] = {"front": "10.0.0.1", "back": "10.0.0.2"}
    spec["port_base"] = 7000
    spec["actors"]["comm"]["host"] = "back"
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))  # hosts in the order written: front is the first
    topology = load(path)
    assert topology.endpoints["General"] == "tcp://10.0.0.2:7000"
    assert topology.endpoints["RoutingEngine"] == "tcp://10.0.0.1:7001"  # the MRE is on the first host
    back = topology.for_host("back")
    assert [name for name, _ in back.instances()] == ["comm.1"]
    assert [name for name, _ in topology.for_host("front").instances()] == ["mre.1", "chat.1"]
    assert back.run_dir == topology.run_dir / "back"
    with pytest.raises(TopologyError, match="no host named 'side'"):
        topology.for_host("side")
    spec["actors"]["mre"]["host"] = "side"
    assert refuse(tmp_path, spec).key == "actors.mre.host"
    spec["actors"]["mre"]["host"] = "front"
    spec["transport"] = "ipc"
    assert refuse(tmp_path, spec).key == "transport"


def test_comm_gets_two_io_threads_by_default_with_curve(tmp_path):
    from wire.curve import make_keys
    make_keys(tmp_path / "keys")
    spec = {**base_topology("curvy"), "security": {"curve": "keys"}}
    actors = parse(spec, tmp_path / "topology.yaml").actors
    assert (actors["comm"]["io_threads"], actors["mre"]["io_threads"]) == (2, 1)
    assert parse(base_topology(), tmp_path / "topology.yaml").actors["comm"]["io_threads"] == 1


def test_agents_can_come_from_a_file_beside_the_topology(tmp_path):
    """Issue 16: the directory (and its passwords) apart from the topology, as a Kubernetes
    Secret beside its ConfigMap; relative to where the topology is named, not where a link
    to it points (a ConfigMap's file is a link into `..data/`)."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "agents.yaml").write_text(yaml.safe_dump(
        [{"id": "zoe", "password": "pw-zoe"}, {"generate": {"count": 3, "prefix": "x", "password": "s"}}]))
    spec = base_topology()
    spec["agents"] = [{"id": "alice", "password": "pw-alice"}, {"file": "../secret/agents.yaml"}]
    real = tmp_path / "data" / "topology.yaml"
    real.parent.mkdir()
    real.write_text(yaml.safe_dump(spec))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "topology.yaml").symlink_to(real)
    topology = load(tmp_path / "config" / "topology.yaml")
    assert [a["id"] for a in topology.agents] == ["alice", "zoe", "x1", "x2", "x3"]


@pytest.mark.parametrize("content, where", [
    (None, "agents[1].file: cannot read"),
    ("- {id: zed}", "agents.yaml: [0].password"),
    ("- {file: other.yaml}", "agents.yaml: [0].file: a file of agents may not name another file"),
    ("{id: zed}", "agents.yaml: must be a non-empty list"),
])
def test_a_bad_agents_file_is_refused_naming_the_file(tmp_path, content, where):
    if content is not None:
        (tmp_path / "agents.yaml").write_text(content)
    spec = base_topology()
    spec["agents"] = [{"id": "alice", "password": "pw-alice"}, {"file": "agents.yaml"}]
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(TopologyError, match=re.escape(where)):
        load(tmp_path / "topology.yaml")


def test_each_roles_entry_is_its_typed_settings_with_the_defaults_defined_once(tmp_path):
    """topocheck validates an actors: entry into its role's dataclass (wire/kernel/settings.py);
    what topology.json carries reads back as the same settings, and an entry that names
    nothing has exactly the dataclass's defaults (defined there once, not in the checker)."""
    from wire.kernel.settings import SETTINGS, from_json
    spec = base_topology("typed")
    spec["actors"]["gc"] = {"role": "gc"}
    spec["actors"]["comm"] = {"role": "comm", "logout_grace": 3, "max_waiting": 7}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(spec))
    actors = load(path).actors
    for name, entry in actors.items():
        settings = from_json(entry["role"], entry)
        assert isinstance(settings, SETTINGS[entry["role"]])
        if name in ("mre", "gc"):
            assert settings == SETTINGS[entry["role"]](entry["role"])
    comm = from_json("comm", actors["comm"])
    assert (comm.logout_grace, comm.max_waiting, comm.events_hwm) == (3.0, 7, 64)


@pytest.mark.parametrize("role,key,value,reason", [
    ("comm", "max_waiting", 0, "must be an integer >= 1"),
    ("comm", "session_takeover", "steal", "must be move or refuse"),
    ("gc", "licenses", "many", "must be an integer >= 0"),
    ("gc", "client_timeout", 0, "must be a number > 0"),
    ("chat", "handle", "sometimes", ""),
    ("mre", "colour", "red", "unknown key"),
])
def test_a_bad_setting_is_refused_naming_its_key(tmp_path, role, key, value, reason):
    spec = base_topology("badsetting")
    spec["actors"]["extra" if role in ("gc", "chat") else role] = {"role": role, key: value}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(TopologyError) as refused:
        load(path)
    assert refused.value.key.endswith(f".{key}") and reason in refused.value.reason, str(refused.value)
