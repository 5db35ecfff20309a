"""The contract as others read it: docs/asyncapi.yaml and wire/messages.py are what the
catalogue makes, @asyncapi/cli finds the document valid, and the README's desk takes a
chat. What the document names: tests/inprocess/test_contract.py; a desk written in another
language from it alone: tests/browser/test_contract.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import ChatClient, base_topology

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
# What the tests install with npm (gitignored, as all of .mroute): .ci/run puts @asyncapi/cli
# here (and tests/browser/test_contract.py the node desk's zeromq, in node_desk/ beside it).
NPM_DIR = ROOT / ".mroute" / "npm"


def test_generated_files_are_what_the_catalogue_makes() -> None:
    done = subprocess.run([sys.executable, "-m", "wire.generate", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"stale generated files (run `python -m wire.generate`):\n{done.stderr}{done.stdout}"


def asyncapi_cli() -> str | None:
    found = shutil.which("asyncapi")
    if found:
        return found
    local = NPM_DIR / "node_modules" / ".bin" / "asyncapi"
    return str(local) if local.exists() else None


def test_asyncapi_validate(tmp_path: Path) -> None:
    cli = asyncapi_cli()
    if cli is None:
        pytest.skip(f"no asyncapi CLI on PATH nor in {NPM_DIR.relative_to(ROOT)}/node_modules/.bin "
                    "(.ci/run installs @asyncapi/cli there when npm is present)")
    # No analytics, no first-run notice, nothing written to the real HOME: the CLI reads its
    # analytics setting from ASYNCAPI_METRICS_CONFIG_PATH and sends nothing when it is off.
    metrics = tmp_path / "asyncapi-analytics.json"
    metrics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true",
                                   "userID": "mroute-tests"}))
    env = dict(os.environ, HOME=str(tmp_path), ASYNCAPI_METRICS_CONFIG_PATH=str(metrics), CI="true",
               NO_COLOR="1", FORCE_COLOR="0")
    done = subprocess.run([cli, "validate", str(ASYNCAPI.relative_to(ROOT))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"asyncapi validate exited {done.returncode}:\n{output}"
    errors = [line for line in output.splitlines() if re.search(r"\berror\b", line, re.I)]
    assert not errors, f"asyncapi validate reported errors:\n{output}"
    assert "is valid" in output, output


def test_the_readmes_desk_logs_in_takes_a_chat_and_closes_it(start_topology):
    """examples/desk.py, shown whole in the README, against a real topology: a customer's
    Task reaches it, it accepts and closes it, and the customer hears the close."""
    readme = (ROOT / "README.md").read_text()
    code = (ROOT / "examples" / "desk.py").read_text()
    assert code.strip() in readme, "the README does not show examples/desk.py as it is"
    running = start_topology(base_topology("readme-desk"))
    desk = subprocess.Popen([sys.executable, str(ROOT / "examples" / "desk.py"), str(running.file), "alice",
                             "pw-alice"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert desk.stdout is not None
        assert desk.stdout.readline().strip() == "alice is READY", desk.stderr.read() if desk.poll() else ""
        with ChatClient(running.endpoints(), "readme-customer") as customer:
            customer.handshake()
            asked = customer.send("Task", {"Mrd": "chat", "ClientUniqueId": "c-readme"})
            task_id = customer.expect("TaskState", MsgId=asked, State="QUEUED")["TaskId"]
            out, err = desk.communicate(timeout=30)
            assert desk.returncode == 0, err
            assert f"alice took and closed {task_id}" in out
            assert customer.expect("TaskState", TaskId=task_id, State="CLOSED", timeout=10)["Code"] == "DONE"
    finally:
        if desk.poll() is None:
            desk.kill()
        desk.wait()
