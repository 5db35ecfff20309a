"""The CLI's consistency (issue 13): a group-level -f and MROUTE_FILE, --version, `stats`,
`send` ending with its answer, every verb against a stopped topology saying so at once,
and the README's table of verbs matching `mroute --help`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from launch import client as control_client

from ..helpers import MROUTE, base_topology, wait_until

ROOT = Path(__file__).resolve().parents[2]
SIM = {"count": 1, "agents": 3, "rate": 0, "handle": 0.2, "think": [0.0, 0.05]}
NOT_RUNNING = 3


def run(directory, *args, env=None, timeout=30):
    return subprocess.run([*MROUTE, *args], cwd=directory, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class Lines:
    """A running command's stdout, line by line, read without blocking (a pipe's buffered
    reader would hide lines already read from the selector)."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        os.set_blocking(self.fd, False)
        self.pending = b""

    def until(self, done, timeout: float = 15) -> list[str]:
        """Lines until done(line) holds for one; fails at the deadline."""
        lines: list[str] = []

        def next_lines() -> bool:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return False
            assert chunk, f"the command ended; printed:\n{''.join(lines)}"
            *complete, self.pending = (self.pending + chunk).split(b"\n")
            for raw in complete:
                lines.append(raw.decode(errors="replace") + "\n")
                if done(lines[-1]):
                    return True
            return False
        wait_until(next_lines, timeout=timeout, what=f"a line; got:\n{''.join(lines)}")
        return lines


def test_group_file_lets_logs_dash_f_follow(start_topology, tmp_path):
    running = start_topology(base_topology("followed", chat=SIM))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.Popen([*MROUTE, "-f", str(running.file), "logs", "-f", "chat", "-n", "5"], cwd=elsewhere,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    output = Lines(proc.stdout)
    try:
        output.until(lambda line: "chat.1" in line and "READY" in line)
        assert run(elsewhere, "-f", str(running.file), "restart", "chat").returncode == 0
        running.remember_pids()
        new_pid = next(a["pid"] for a in running.status()["actors"] if a["name"] == "chat.1")
        followed = output.until(lambda line: f"READY (pid {new_pid})" in line)  # only -f shows it
        assert all(line.startswith("chat.1") for line in followed if line.strip())
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_mroute_file_names_the_topology_and_a_verbs_own_file_wins(start_topology, tmp_path):
    running = start_topology(base_topology("named", chat=SIM))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    from_env = run(elsewhere, "status", "--json", env={"MROUTE_FILE": str(running.file)})
    assert from_env.returncode == 0, from_env.stderr
    assert json.loads(from_env.stdout)["name"] == "named"
    assert run(elsewhere, "check", env={"MROUTE_FILE": str(running.file)}).returncode == 0
    own = run(elsewhere, "-f", "no-such.yaml", "status", "-f", str(running.file), "--json",
              env={"MROUTE_FILE": "neither.yaml"})
    assert own.returncode == 0 and json.loads(own.stdout)["running"] is True
    group = run(elsewhere, "-f", str(running.file), "status", "--json", env={"MROUTE_FILE": "neither.yaml"})
    assert group.returncode == 0 and json.loads(group.stdout)["running"] is True  # the group's -f beats the env
    missing = run(elsewhere, "status", env={"MROUTE_FILE": "neither.yaml"})
    assert missing.returncode != 0 and "neither.yaml" in missing.stderr


def test_version_is_the_packages(tmp_path, monkeypatch):
    from importlib.metadata import PackageNotFoundError, version

    import launch.cli
    try:
        expected = version("mroute")
    except PackageNotFoundError:
        expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"mroute {expected}"

    def not_installed(_name):
        raise PackageNotFoundError("mroute")
    monkeypatch.setattr("importlib.metadata.version", not_installed)
    assert launch.cli.version() == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_stats_shows_each_actors_counters_and_role_figures(start_topology):
    running = start_topology(base_topology("counted", chat=SIM))
    wait_until(lambda: control_client.ask(running.topology, "stats")["actors"]["comm.1"]["agents_logged_in"] == 3,
               timeout=15, what="the agents to log in")
    every = running.cli("stats", "--json")
    assert every.returncode == 0, every.stderr
    view = json.loads(every.stdout)
    assert view["topology"] == "counted" and set(view["actors"]) == {"comm.1", "mre.1", "chat.1"}
    assert all(a["state"] == "RUNNING" and a["stats"]["counters"]["received"] > 0 for a in view["actors"].values())
    assert view["actors"]["comm.1"]["role"] == "comm" and view["actors"]["comm.1"]["stats"]["agents_logged_in"] == 3
    assert set(json.loads(running.cli("stats", "chat", "--json").stdout)["actors"]) == {"chat.1"}
    assert set(json.loads(running.cli("stats", "mre.1", "--json").stdout)["actors"]) == {"mre.1"}
    text = running.cli("stats", "comm")
    assert text.returncode == 0, text.stderr
    assert "comm.1 (comm, RUNNING)" in text.stdout and "mre.1" not in text.stdout
    assert re.search(r"counters\.received\s*│\s*[\d,]+", text.stdout)
    assert re.search(r"agents_logged_in\s*│\s*3\b", text.stdout)
    unknown = running.cli("stats", "nobody")
    assert unknown.returncode == 1 and "no actor or instance named 'nobody'" in unknown.stderr


def test_send_ends_with_the_answer_and_exits_1_on_an_error(start_topology):
    running = start_topology(base_topology("sent", chat=SIM))
    wait_until(lambda: control_client.ask(running.topology, "stats")["actors"]["chat.1"]["agents_ready"] == 3,
               timeout=15, what="the agents to be READY")
    sent = running.cli("send", "Task", '{"Mrd": "chat", "ClientUniqueId": "c1", "MsgId": "m-1"}')
    assert sent.returncode == 0, sent.stderr
    answers = [line for line in sent.stdout.splitlines() if line.startswith("<- ")]
    # the answer, and nothing after it: it returned then, not after a second of listening
    assert len(answers) == 1 and " TaskState " in answers[0]
    answer = json.loads(answers[0].split(" ", 3)[3])
    assert answer["MsgId"] == "m-1" and answer["State"] == "QUEUED"
    assert sent.stdout.splitlines()[-1] == answers[0]
    refused = running.cli("send", "Task", '{"Mrd": "chat", "MsgId": "m-2"}')
    assert refused.returncode == 1
    error = json.loads(refused.stdout.splitlines()[-1].split(" ", 3)[3])
    assert refused.stdout.splitlines()[-1].split()[2] == "Error"
    assert error["Code"] == "MISSING_FIELD" and error["MsgId"] == "m-2"
    assert "MISSING_FIELD" in refused.stderr


@pytest.mark.parametrize("verb", [["gc", "alice", "GetState"], ["send", "GetAgentState", "{}"], ["stats"],
                                  ["events", "--count", "1"], ["restart", "chat"], ["tap", "--count", "1"],
                                  ["trace", "t-1"], ["flush", "t-1"], ["call", "sales"], ["top", "--once"]])
def test_every_verb_against_a_stopped_topology_says_so(tmp_path, verb):
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(base_topology("stopped", chat=SIM)))
    result = run(tmp_path, *verb, timeout=10)
    assert result.returncode == NOT_RUNNING, result.stderr
    assert "topology 'stopped' is not running" in result.stderr


def help_verbs() -> set[str]:
    text = run(ROOT, "--help").stdout
    listed = text.split("Commands:", 1)[1]
    return {m.group(1) for m in re.finditer(r"^  (\S+)", listed, re.M)}


def readme_verbs() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## The CLI\n", 1)[1].split("\n## ", 1)[0]
    verbs = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first_cell = re.split(r"(?<!\\)\|", row)[1]
        for span in re.findall(r"`([^`]+)`", first_cell):
            words = span.split()
            words = words[1:] if words[0] == "mroute" else words
            if words and not words[0].startswith("-"):
                verbs.add(words[0])
    return verbs


def test_the_readme_lists_exactly_the_verbs_of_help():
    assert len(help_verbs()) > 20
    assert readme_verbs() == help_verbs()


def test_events_says_when_the_topology_goes_away_and_ends(start_topology):
    running = start_topology(base_topology("watched", chat=SIM))
    proc = subprocess.Popen([*MROUTE, "events"], cwd=running.directory, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        errors = Lines(proc.stderr)
        errors.until(lambda line: line.startswith("# listening"))
        assert running.cli("down").returncode == 0
        errors.until(lambda line: "topology 'watched' is not running any more" in line)
        assert proc.wait(timeout=15) == NOT_RUNNING
        assert b" STOPPED " in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
