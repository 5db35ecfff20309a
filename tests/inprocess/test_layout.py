"""The layout design.md section 2 asks for, checked: three floors (wire/ with its kernel,
actors/, launch/), each importing only downward; launch/ reaches actors/ only by its command
line (`python -m actors ROLE|bench|journal`), never by import; no import circle, type-only
ones included; no file and no class holding two concerns' worth of lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOORS = ("wire", "actors", "launch")
MAX_LINES = 400
# what each floor may import of ours: the floors below it
MAY_IMPORT = {"wire": {"wire"}, "actors": {"wire", "actors"}, "launch": {"wire", "launch"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for floor in FLOORS for p in sorted((ROOT / floor).rglob("*.py"))}


def imported(name: str, path: Path) -> set[str]:
    """Every module of ours `name` imports, anywhere in it (in a function, under
    TYPE_CHECKING), relative imports resolved; `from x import y` counts y if it is a module,
    else x."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module or ""
            for alias in node.names:   # a submodule, or a name the module `base` holds
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    ours = set()
    for module in found:
        while module and module not in MODULES:
            module = module.rpartition(".")[0]
        if module and module != name:
            ours.add(module)
    return ours


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def test_each_floor_imports_only_the_floors_below_it():
    wrong = sorted(f"{name} imports {other}" for name, others in GRAPH.items() for other in others
                   if other.split(".")[0] not in MAY_IMPORT[name.split(".")[0]])
    assert not wrong, wrong


def test_launch_starts_actors_only_through_the_packages_command_line():
    """`-m actors.<module>` reaches past the package's face (as `-m actors.bench` and
    `-m actors.comm.journal_cli` did)."""
    found = sorted(f"{p.relative_to(ROOT)}: {m.group(0)}" for p in (ROOT / "launch").rglob("*.py")
                   for m in re.finditer(r'"-m",\s*"actors\.[\w.]+"', p.read_text()))
    assert not found, found


def circles() -> list[list[str]]:
    """The strongly connected parts of the import graph with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in GRAPH[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_type_only_ones_included():
    assert not circles(), circles()


def test_the_circle_finder_finds_a_circle():
    GRAPH["wire.codec"].add("wire.session")   # wire.session imports wire.codec
    try:
        assert any({"wire.codec", "wire.session"} <= set(part) for part in circles())
    finally:
        GRAPH["wire.codec"].discard("wire.session")


def test_no_file_and_no_class_is_over_400_lines():
    long = {}
    for name, path in MODULES.items():
        text = path.read_text()
        if (lines := len(text.splitlines())) > MAX_LINES:
            long[str(path.relative_to(ROOT))] = lines
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and (size := node.end_lineno - node.lineno + 1) > MAX_LINES:
                long[f"{path.relative_to(ROOT)}:{node.name}"] = size
    assert not long, long
