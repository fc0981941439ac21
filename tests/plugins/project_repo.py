"""A git repository of the project for the tests that install commits (``seqbench continuous``, ``seqbench bench
--commits``): the project's tracked files as in the working tree, with the gate's plug-in backend
(``gate_plugin.py``) registered, committed as BASE on ``main``."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugins" / "gate_plugin.py"


def git(repo: Path, *argv) -> str:
    return subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, path: str, old: str, new: str, message: str, base: str) -> str:
    """A commit on top of ``base`` replacing ``old`` with ``new`` in ``path``; returns its hash."""
    git(repo, "checkout", "-q", "--detach", base)
    file = repo / path
    text = file.read_text()
    assert old in text, (path, old)
    file.write_text(text.replace(old, new, 1))
    git(repo, "commit", "-qam", message)
    return git(repo, "rev-parse", "HEAD")


def project(repo: Path) -> str:
    """The project in a new repository at ``repo``, the plug-in registered; returns BASE's hash."""
    files = git(ROOT, "ls-files", "-co", "--exclude-standard").splitlines()
    for name in files:
        if name.startswith("results/") or not (ROOT / name).is_file():
            continue
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    shutil.copy2(PLUGIN, repo / "backends" / "gateplug.py")
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        '[project.entry-points."seqbench.backends"]\n',
        '[project.entry-points."seqbench.backends"]\ngateplug = "seqbench.backends.gateplug:GatePlug"\n'))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "t")
    git(repo, "config", "user.email", "t@t")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "BASE")
    return git(repo, "rev-parse", "HEAD")


def environment(home: Path) -> dict:
    """This process's environment for a command run in such a repository: a home of its own, no ``PYTHONPATH``,
    and the machine's sweep lock (under ``SEQBENCH_CACHE_DIR``) shared with every other sweep here."""
    home.mkdir(parents=True, exist_ok=True)
    locks = os.environ.get("SEQBENCH_CACHE_DIR") or str(Path(os.environ.get("XDG_CACHE_HOME") or
                                                             Path.home() / ".cache") / "seqbench")
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "HOME": str(home),
            "SEQBENCH_CACHE_DIR": locks}
