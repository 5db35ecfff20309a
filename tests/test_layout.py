"""The layout design.md section 2 asks for, checked: launch/ talks to actors through the
documented queues, the control channel and the run directory, never through an actor's
internals; no file of launch/ holds two concerns' worth of lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What launch/ may use of actors/: the role table and the loop the supervisor runs on.
ALLOWED = {"actors", "actors.loop"}


def launch_files() -> list[Path]:
    return sorted((ROOT / "launch").rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_launch_never_imports_an_actors_internals():
    found = {f"{path.relative_to(ROOT)}: {name}" for path in launch_files() for name in imported(path)
             if name.split(".")[0] == "actors" and name not in ALLOWED}
    assert not found, sorted(found)


def test_every_launch_file_is_at_most_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in launch_files() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
