"""House rules of the code base that no single module's tests see."""

import ast
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: top-level folders that may name a backend: the backends themselves, and the tests
MAY_NAME_BACKENDS = ("backends", "tests")


def _backend_names() -> set[str]:
    """seqbench's own backends, as its entry points register them."""
    return {ep.name for ep in entry_points(group="seqbench.backends") if ep.value.startswith("seqbench.backends.")}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in MAY_NAME_BACKENDS or any(p.startswith(".") or p == "site-packages" for p in parts):
            continue
        yield path


def test_no_module_outside_the_backends_names_a_backend():
    """A backend's facts live on its class (its traits), so a third-party plug-in gets what a built-in gets: no
    module outside ``backends/`` holds a backend's name as a string literal."""
    names = _backend_names()
    assert {"numpy", "torch"} <= names, names
    found = []
    for path in _modules():
        literals = sorted({(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text(), str(path)))
                           if isinstance(node, ast.Constant) and node.value in names})
        found += [f"{path.relative_to(ROOT)}:{line}: {name!r}" for line, name in literals]
    assert not found, "backends named outside backends/ (declare it in the backend's traits):\n" + "\n".join(found)
