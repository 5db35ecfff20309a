"""Issue 29: the Containerfile takes its base as an argument, installs into a venv of its
own (so that a Debian base with Debian's python, which refuses `pip install` outside one,
builds it too) and says how a container is healthy. Read here, not built: a build needs a
container runtime (issue 29, item 5)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from launch.export.compose import READY_CHECK
from launch.export.plan import HEALTH_PORT, IMAGE_UID

CONTAINERFILE = Path(__file__).resolve().parents[2] / "Containerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continued lines joined."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        pending = ""
    return out


STEPS = instructions(CONTAINERFILE.read_text())


def only(keyword: str) -> str:
    (found,) = [rest for k, rest in STEPS if k == keyword]
    return found


def test_the_base_is_an_argument_with_the_python_image_as_default():
    assert STEPS[0][0] == "ARG" and STEPS[0][1].startswith("BASE=python:3.")
    assert only("FROM") in ("${BASE}", "$BASE")


def test_mroute_is_installed_into_a_venv_on_the_path():
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for k, rest in STEPS if k == "ENV")))
    venv = env["VIRTUAL_ENV"]
    assert env["PATH"].startswith(f"{venv}/bin:")   # `mroute` and `python` are the venv's
    commands = [part.strip() for rest in (r for k, r in STEPS if k == "RUN") for part in rest.split("&&")]
    assert f'python3 -m venv "$VIRTUAL_ENV"' in commands
    installs = [c for c in commands if re.search(r"\bpip3?\b\S*\s+install\b", c)]
    pips = ("$VIRTUAL_ENV/bin/pip", f"{venv}/bin/pip")
    assert installs and all(shlex.split(c)[0] in pips for c in installs), installs
    assert commands.index(f'python3 -m venv "$VIRTUAL_ENV"') < commands.index(installs[0])


def test_a_container_is_healthy_once_its_health_port_says_ready():
    options, _, command = only("HEALTHCHECK").partition(" CMD ")
    assert json.loads(command) == ["python", "-c", READY_CHECK]   # what compose's healthcheck runs
    assert f"127.0.0.1:{HEALTH_PORT}/readyz" in READY_CHECK
    assert {"--interval", "--timeout", "--start-period", "--retries"} <= {o.split("=")[0] for o in options.split()}
    assert only("USER") == f"{IMAGE_UID}:{IMAGE_UID}"   # the exports' runAsUser, compose's user when root exports
    assert str(HEALTH_PORT) in only("EXPOSE").split()
