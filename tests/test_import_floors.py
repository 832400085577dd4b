"""The house is a one-way street: no import loop, and no import that runs up a floor.

The floors are read from docs/architecture.md ("Floors"), so the document and the tree
cannot drift apart: every top-level module and package under src/payguard/ must stand on
exactly one floor of that table, and every room the table names must exist. Imports are
read with `ast` from the source, every one of them (module level, inside functions, and
under `TYPE_CHECKING`), because a lazy import is still a dependency.

A module may import from its own floor or below. Loops are refused at both grains: between
rooms (two packages that import each other, even through different modules, are one room
pretending to be two), and between modules, an import under `if TYPE_CHECKING:` included
(a loop that only the type checker walks is still two modules that cannot be read apart).
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "payguard"
DOC = ROOT / "docs" / "architecture.md"
TOP = "payguard"
"""`payguard/__init__.py`: the public facade, above every floor (it re-exports)."""


def floors() -> dict[str, int]:
    """Room -> floor, from the table under "## Floors" in docs/architecture.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Floors", 1)[1].split("\n## ", 1)[0]
    table: dict[str, int] = {}
    for match in re.finditer(r"^\| (\d+) \| ([^|]+) \|", section, re.MULTILINE):
        for room in re.findall(r"`([a-z_]+)/?`", match.group(2)):
            assert room not in table, f"{room} is on two floors of the table"
            table[room] = int(match.group(1))
    return table


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__.py)."""
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def _resolve(name: str) -> str:
    """The module a dotted name lives in (`payguard.rules.RuleHit` -> `payguard.rules`)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> Iterator[tuple[str, int]]:
    """(imported payguard module, line) for every import statement in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == TOP:
                    yield _resolve(alias.name), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != TOP:
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in MODULES else _resolve(base)), node.lineno


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else TOP


EDGES = {m: {(target, line) for target, line in imports(m) if target != m} for m in MODULES}


def test_every_room_stands_on_one_floor() -> None:
    table = floors()
    rooms = {room(m) for m in MODULES} - {TOP}
    assert sorted(rooms - set(table)) == [], "rooms missing from docs/architecture.md"
    assert sorted(set(table) - rooms) == [], "the floor table names rooms that do not exist"


def test_no_import_runs_up_a_floor() -> None:
    table = floors()
    table[TOP] = max(table.values()) + 1
    upward = [
        f"{MODULES[m].relative_to(SRC)}:{line} imports {target} "
        f"(floor {table[room(m)]} -> {table[room(target)]})"
        for m, targets in EDGES.items()
        for target, line in targets
        if table[room(target)] > table[room(m)]
    ]
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_loop_between_modules() -> None:
    assert _cycles({m: {t for t, _ in targets} for m, targets in EDGES.items()}) == []


def test_no_import_loop_between_rooms() -> None:
    graph: dict[str, set[str]] = {}
    for m, targets in EDGES.items():
        graph.setdefault(room(m), set()).update(room(t) for t, _ in targets if room(t) != room(m))
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    ("graph", "loops"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_loop_finder_finds_loops(graph: dict[str, set[str]], loops: list[list[str]]) -> None:
    assert _cycles(graph) == loops
