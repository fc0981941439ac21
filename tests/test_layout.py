"""The house's rules, checked on the code itself: imports point one way (no cycle between modules or between
folders, lazy imports included), and modules stay small."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the folders of the one distribution and the import names they map to (pyproject.toml's package-dir)
PACKAGES = {"seqbench": "seqbench", "reference": "seqbench.reference", "backends": "seqbench.backends",
            "conformance": "seqbench.conformance", "reports": "seqbench.reports", "benchmarks": "benchmarks"}
#: lines a module may have (DESIGN.md: "under ~400 lines")
MAX_LINES = 420


def modules() -> dict[str, Path]:
    """Every module of the distribution, and of the asv suite beside it, by its import name."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder)
            parts = [package, *rel.parts[:-1], *([] if rel.name == "__init__.py" else [rel.stem])]
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known) -> set[str]:
    """The modules (the distribution's, the asv suite's) ``name`` imports, anywhere in it (a function's lazy import counts too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known and m != name}


def folder(name: str, known) -> str:
    """The folder a module belongs to (a package's ``__init__`` is its folder; a top-floor module is its own)."""
    if known[name].name == "__init__.py" or name.count(".") < 2:
        return name
    return name.rpartition(".")[0]


def cycle(graph: dict) -> list | None:
    """One cycle of ``graph`` (node -> successors) as a path, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def graphs():
    known = modules()
    edges = {name: imports(name, path, known) for name, path in known.items()}
    folders = {}
    for name, targets in edges.items():
        for target in targets:
            if folder(name, known) != folder(target, known):
                folders.setdefault(folder(name, known), set()).add(folder(target, known))
    return edges, folders


def test_the_cycle_check_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_itself_back_through_others():
    edges, _ = graphs()
    assert edges["seqbench.jobs.bench"] and edges["seqbench.cli"]  # the graph is read, not empty
    assert cycle(edges) is None


def test_no_folder_imports_itself_back_through_others():
    _, folders = graphs()
    assert "seqbench.jobs" in folders["seqbench.fleet"]  # the fleet runs the jobs, never the other way round
    assert cycle(folders) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{modules()[name]} has {lines} lines: split it by responsibility"
