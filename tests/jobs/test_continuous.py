"""``seqbench continuous`` end to end, in a temporary git repository holding the project and a plug-in backend
(``tests/plugins/gate_plugin.py``): a docs-only commit passes, one whose plug-in does twice the real CPU work is
named slower with its ratio, one whose plug-in returns ten times the error is named with its eps. Each comparison
runs four speed rounds, a confirmation and two conformance runs of the plug-in's LSTM: about 45 to 55 s each on two
cores, so the test runs in CI (``CI=true``) only. A speed verdict the gate calls inconclusive (exit 3: the host's
own rounds moved too far) is asked again, up to :data:`TRIES` comparisons, as the CI recipe reruns the job; a test
fails if it never gets a conclusive answer, and a pass of twice the work fails it at once."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from project_repo import commit, environment, project

#: what the gate says where the host's own rounds moved too far to judge speed (``gate.explained``, ``unresolved``)
HOST = re.compile(r"within the spread of their own commit's rounds|between rounds of one commit, as far as a "
                  r"regression must")

#: comparisons a speed test makes at most while the gate says inconclusive (exit 3)
TRIES = 3

pytestmark = pytest.mark.skipif(os.environ.get("CI") != "true", reason=(
    "three gate runs of benchmarks and checks (about 3 minutes on two cores): run with CI=true"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    """The project with the plug-in registered (``project_repo``): BASE and three commits on top of it."""
    repo = tmp_path_factory.mktemp("gate") / "project"
    base = project(repo)
    commits = {
        "BASE": base,
        "docs": commit(repo, "README.md", "# seqbench", "# seqbench (docs only)", "docs", base),
        "work": commit(repo, "backends/gateplug.py", "WORK = 1", "WORK = 2", "twice the work", base),
        "error": commit(repo, "backends/gateplug.py", "ERROR = 0", "ERROR = 9", "ten times the error", base),
    }
    return repo, commits


def gate(repo: Path, commits: dict, head: str, tmp_path: Path) -> tuple[int, str]:
    """``seqbench continuous BASE head`` on the plug-in, float32; its exit status and its Markdown."""
    env = environment(tmp_path / "home")
    out = tmp_path / "out" / "comparison.md"
    done = subprocess.run([sys.executable, "-m", "seqbench", "continuous", commits["BASE"], commits[head],
                           "--backend", "gateplug", "--op", "lstm", "--dtype", "float32",
                           "--out", str(out), "--cache-dir", str(repo.parent / "commits")],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert out.is_file(), done.stdout + done.stderr
    return done.returncode, out.read_text() + "\n" + done.stdout + done.stderr


def conclusive(repo: Path, commits: dict, head: str, tmp_path: Path, again_after=(3,)) -> tuple[int, str]:
    """:func:`gate`, asked again while it says inconclusive (exit 3), :data:`TRIES` times at most; its first
    conclusive exit status and Markdown. Fails the test when every comparison was inconclusive, each named with
    why (the gate's words for the host's spread, or its output). ``again_after``: the exit statuses asked again
    (a status asked again twice is the answer)."""
    said, seen = [], []
    for attempt in range(1, TRIES + 1):
        code, text = gate(repo, commits, head, tmp_path / f"try{attempt}")
        seen.append(code)
        if code not in again_after or code != 3 and seen.count(code) >= 2:
            return code, text
        why = HOST.search(text)
        said.append(f"--- comparison {attempt}: exit {code}, " + (why.group(0) if why else "not the host's spread:\n"
                                                                       + text))
    pytest.fail(f"{head}: no answer in {TRIES} comparisons (exits {seen})\n" + "\n".join(said))


def test_a_docs_only_commit_passes(repo, tmp_path):
    """Exit 0 (asked again while the host's own rounds make it inconclusive, and after one false alarm: this
    2-core host runs a benchmark at two speeds, and once ran BASE's three rounds at 7.4-7.9 ms and HEAD's, in
    between, at 12.4-14.7 ms, the same code at 13-14 ms on both sides in the next comparison; a second false alarm
    fails the test)."""
    code, said = conclusive(*repo, "docs", tmp_path, again_after=(1, 3))
    assert code == 0, said


def test_twice_the_work_is_named_slower_with_its_ratio(repo, tmp_path):
    """Exit 1, the benchmark named slower with a ratio of about 2 (asked again while the host's own rounds make it
    inconclusive; a pass fails the test at once)."""
    code, said = conclusive(*repo, "work", tmp_path)
    assert code == 1, said
    assert "| precision |" not in said
    slower = re.findall(r"\| speed \| (\w+)\.time_forward\(gateplug[^|]*\|[^|]*\|[^|]*\| x([\d.]+) \| "
                        r"slower, confirmed \|", said)
    assert slower, said
    # about 2: beyond the factor, and within what a shared host does to a median between runs (it showed x2.40 and
    # x3.05 for this very commit on a busy host, where x2.0-2.1 was usual)
    assert all(1.5 < float(ratio) < 4 for _, ratio in slower), slower


def test_ten_times_the_error_is_named_with_its_eps(repo, tmp_path):
    code, said = gate(*repo, "error", tmp_path)
    assert code == 1, said
    regressed = re.findall(r"\| precision \| (test_forward\[\w+-gateplug-cpu-float32[^|]*) \| pass ([\d.]+) eps \| "
                           r"\w+ ?([\d.]*) eps \| [^|]* \| regressed \|", said)
    assert regressed, said
