"""The README's plug-in runs as written: its files, installed the way pip installs a package, are found through
the entry point, listed available, and pass the conformance checks; the same code with a 1e-3 error fails them."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same reader, as pytest depends on it there
    import tomli as tomllib

README = Path(__file__).resolve().parents[2] / "README.md"
#: a line of the plug-in's code, and the same line with an input 1e-3 off
RIGHT = "step(p, state, x[index[t], batch])"
WRONG = "step(p, state, x[index[t], batch] * (1 + 1e-3))"


@pytest.fixture(scope="module")
def plugin() -> dict:
    """``{path: text}``: the code blocks of the README's "Writing a backend" whose first line names a file of
    ``myfast/``."""
    section = README.read_text().split("\n## Writing a backend\n", 1)[1].split("\n## ", 1)[0]
    files = {path: text for text, path in re.findall(r"```(?:toml|python)\n(# (myfast/\S+)\n.*?)```", section, re.S)}
    assert set(files) == {"myfast/pyproject.toml", "myfast/myfast.py"}, sorted(files)
    return files


def install(files: dict, root: Path) -> Path:
    """A site folder with the package of ``files`` installed as pip installs it: its top-level modules, and a
    ``.dist-info`` holding the name, version and entry points its ``pyproject.toml`` declares."""
    source, site = root / "source", root / "site"
    for path, text in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text)
    package = source / "myfast"
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name']}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    for module in package.glob("*.py"):
        shutil.copy(module, site)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["entry-points"].items()))
    return site


def seqbench(site: Path, *args) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "seqbench", *args], capture_output=True, text=True, cwd=site,
                          env={**os.environ, "PYTHONPATH": path}, timeout=600)


def test_the_readme_plugin_is_listed_and_passes_its_checks(plugin, tmp_path):
    site = install(plugin, tmp_path)
    listed = seqbench(site, "list")
    assert re.search(r"^myfast\s+available\s+cpu\s", listed.stdout, re.M), listed.stdout + listed.stderr
    checked = seqbench(site, "check", "--backend", "myfast", "--op", "rnn,lstm", "--results-dir", str(tmp_path / "r"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"^rnn\s+ok .*\n^lstm\s+ok ", checked.stdout, re.M) and ", 0 failed" in checked.stdout, checked.stdout


def test_the_readme_plugin_with_a_1e_3_error_fails_its_checks(plugin, tmp_path):
    assert plugin["myfast/myfast.py"].count(RIGHT) == 1
    site = install({**plugin, "myfast/myfast.py": plugin["myfast/myfast.py"].replace(RIGHT, WRONG)}, tmp_path)
    checked = seqbench(site, "check", "--backend", "myfast", "--op", "rnn,lstm", "--dtype", "float32",
                       "--results-dir", str(tmp_path / "r"))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert re.search(r"^rnn\s+FAIL .*\n^lstm\s+FAIL ", checked.stdout, re.M), checked.stdout
