"""What a remote cluster's workers receive of this checkout: its tracked files (as they are in the working
tree, the tracked results left out) and a git repository holding the recorded commit, which asv reads. Untracked
and ignored files (a virtual environment, a ``.env``, private data, results) stay here."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from seqbench.jobs import asv

#: tracked folders the workers do not need: they write their results to a scratch folder and send them back
LEFT_OUT = ("results/",)


def _git(args: list, cwd: Path, root: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        why = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise ValueError(f"--cluster ships the tracked files of the benchmarks' checkout and its commit to the "
                         f"workers, and {root} is not a git checkout with them ({why}); run from a git clone of "
                         "the project")
    return done.stdout


def _branches(root: Path) -> list[str]:
    """The branches the checkout's asv configuration names (``main`` where it names none)."""
    config = root / "asv.conf.json"
    return asv.load_config(config).get("branches", ["main"]) if config.is_file() else ["main"]


def tracked(root: Path) -> list[str]:
    """The checkout's tracked files present in its working tree, the left-out folders aside."""
    names = _git(["ls-files", "-z", "--cached"], root, root).split("\0")
    return [n for n in names if n and not n.startswith(LEFT_OUT) and (root / n).is_file()]


@contextmanager
def checkout_copy(root: Path, commit: str):
    """A temporary folder for Ray's ``working_dir``: the tracked files of ``root`` and a one-commit git
    repository of ``commit`` (no remotes, hooks or configuration of the checkout's own)."""
    names = tracked(root)
    with tempfile.TemporaryDirectory(prefix="seqbench-shipped-") as folder:
        folder = Path(folder)
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, folder / name, follow_symlinks=False)
        _git(["init", "-q"], folder, root)
        _git(["fetch", "-q", "--depth=1", root.resolve().as_uri(), commit], folder, root)
        for branch in _branches(root):  # asv looks the commit up on the branches its configuration names
            _git(["update-ref", f"refs/heads/{branch}", "FETCH_HEAD"], folder, root)
        _git(["update-ref", "HEAD", "FETCH_HEAD"], folder, root)
        yield folder
