"""``seqbench bench --commits A..B`` in a temporary git repository of the project (``project_repo``): each commit
of the range installed apart and recorded for its own hash, one that does not install skipped and said, the others
kept. Two sweeps of one op on the NumPy backend (the gate grid: one shape) and three installs: about 40 s on two
cores, so that test runs in CI (``CI=true``) only; the range and the command line are checked here too."""

import os
import subprocess
import sys

import pytest

from project_repo import commit, environment, git, project
from seqbench.jobs import history
from seqbench.jobs.asv import BenchError

BROKEN = ('[project.entry-points."seqbench.backends"]\n', '[project.entry-points."seqbench.backends"\n')


def test_the_range_is_its_commits_oldest_first_and_a_bad_one_is_refused(tmp_path):
    git(tmp_path, "init", "-q")
    shas = []
    for n in range(3):
        git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", f"c{n}")
        shas.append(git(tmp_path, "rev-parse", "HEAD"))
    assert history.commits(tmp_path, f"{shas[0]}..HEAD") == shas[1:]
    for spec, said in (("HEAD", "takes a range A..B"), ("HEAD..HEAD", "no commit in that range"),
                       ("nope..HEAD", "--commits nope..HEAD: ")):
        with pytest.raises(BenchError, match=said):
            history.commits(tmp_path, spec)


@pytest.mark.parametrize("extra, said", [(["--dry-run"], "takes no --dry-run"),
                                         (["--set-commit-hash", "HEAD"], "takes no --set-commit-hash")])
def test_commits_refuse_what_they_do_themselves(extra, said):
    done = subprocess.run([sys.executable, "-m", "seqbench", "bench", "--commits", "HEAD~1..HEAD", *extra],
                          capture_output=True, text=True)
    assert done.returncode == 2 and said in done.stderr, done.stderr


@pytest.mark.skipif(os.environ.get("CI") != "true", reason=(
    "three commits installed and two asv sweeps (about 40 s on two cores): run with CI=true"))
def test_each_commit_of_the_range_is_recorded_and_one_that_does_not_install_is_skipped(tmp_path):
    repo = tmp_path / "project"
    base = project(repo)
    first = commit(repo, "README.md", "# seqbench", "# seqbench (one)", "docs", base)
    broken = commit(repo, "pyproject.toml", *BROKEN, "a pyproject.toml that does not parse", first)
    last = commit(repo, "pyproject.toml", *reversed(BROKEN), "fixed", broken)
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "seqbench", "bench", "--commits", f"{base}..{last}", "--grid",
                           "gate", "--op", "lstm", "--backend", "numpy", "--results-dir", str(results), "--cache-dir",
                           str(tmp_path / "commits")], cwd=repo, env=environment(tmp_path / "home"),
                          capture_output=True, text=True, timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert f"skipped {broken[:10]}" in said and "2 of 3 commits recorded; 1 skipped" in said, said
    for sha in (first, last):
        assert list(results.glob(f"*/{sha[:8]}-*.json")), (sha, sorted(results.rglob("*")), said)
    assert not list(results.glob(f"*/{broken[:8]}-*.json"))
    assert git(repo, "rev-parse", "HEAD") == last  # the checkout itself is left as it was
