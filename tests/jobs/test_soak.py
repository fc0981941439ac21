"""The gate's false-alarm rate and what it catches, measured: ``seqbench continuous`` many times over, in a git
repository of the project with the gate's plug-in (``project_repo``). BASE against itself must never say 1 (a
false alarm); twice the plug-in's work must be caught (1) or called inconclusive (3), with a process spinning on a
core throughout; 1.3x and 1.5x are measured and recorded only. Each run's exit status, matmul-rate moves and
verdicts are appended as JSON lines to ``$SEQBENCH_SOAK_OUT/soak.jsonl`` (default: the test's temporary folder).

Opt-in (``SEQBENCH_SOAK=1``): a gate run takes about a minute on two cores, and the soak is 20 of them and more.
``SEQBENCH_SOAK_RUNS`` (default 20) sets the self-comparisons, ``SEQBENCH_SOAK_SLOW_RUNS`` (default 3) the runs
per slowdown; ``SEQBENCH_SOAK_ONLY`` (``self``, ``hog`` or ``work``) keeps one test's runs."""

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from project_repo import commit, environment, project
from seqbench.jobs import gate
from seqbench.results import asv_files

pytestmark = pytest.mark.skipif(os.environ.get("SEQBENCH_SOAK") != "1", reason=(
    "the soak runs the gate 20 times and more (about a minute each on two cores): run with SEQBENCH_SOAK=1"))

RUNS = int(os.environ.get("SEQBENCH_SOAK_RUNS", "20"))
SLOW_RUNS = int(os.environ.get("SEQBENCH_SOAK_SLOW_RUNS", "3"))
#: the selection: the LSTM forward of the plug-in and of the NumPy backend, the gate grid's float32
SELECTION = ["--op", "lstm", "--backend", "gateplug,numpy"]
WORK = (1.3, 1.5, 2)


def wanted(name: str) -> None:
    only = os.environ.get("SEQBENCH_SOAK_ONLY")
    if only and only != name:
        pytest.skip(f"SEQBENCH_SOAK_ONLY={only}")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    repo = tmp_path_factory.mktemp("soak") / "project"
    base = project(repo)
    commits = {"BASE": base}
    for work in WORK:
        commits[work] = commit(repo, "backends/gateplug.py", "WORK = 1", f"WORK = {work}", f"x{work} work", base)
    return repo, commits


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    out = Path(os.environ.get("SEQBENCH_SOAK_OUT") or tmp_path_factory.mktemp("soak-out"))
    out.mkdir(parents=True, exist_ok=True)
    return out / "soak.jsonl"


def gate_run(repo: Path, base: str, head: str, tmp_path: Path, record: Path, what: str) -> int:
    """One ``seqbench continuous`` with the gate's defaults on :data:`SELECTION`; its record appended."""
    out = tmp_path / "out" / "comparison.md"
    done = subprocess.run([sys.executable, "-m", "seqbench", "continuous", base, head, *SELECTION, "--out", str(out),
                           "--cache-dir", str(tmp_path.parent / "commits")],
                          cwd=repo, env=environment(tmp_path / "home"), capture_output=True, text=True, timeout=1200)
    rounds = {r.name: asv_files.read([r])[1] for r in sorted((out.parent / "rounds").glob("*")) if r.is_dir()}
    moves = [m for name, points in rounds.items() for m in gate.host_moves(name, points)]
    medians = {name: {gate.label(k): statistics.median(v) for k, v in gate.pooled([points]).items()}
               for name, points in rounds.items()}
    lines = [line for line in done.stdout.splitlines() if line.startswith(("speed ", "host", "exit"))]
    with open(record, "a") as sink:
        sink.write(json.dumps({"what": what, "code": done.returncode, "lines": lines, "medians": medians,
                               "moves": [[m.round, m.start, m.end, round(m.moved, 3)] for m in moves]}) + "\n")
    shutil.rmtree(out.parent, ignore_errors=True)
    return done.returncode


def test_base_against_itself_never_says_regressed(repo, tmp_path, record):
    wanted("self")
    repo, commits = repo
    codes = [gate_run(repo, commits["BASE"], commits["BASE"], tmp_path / f"{k}", record, "self")
             for k in range(RUNS)]
    assert gate.REGRESSED not in codes and gate.BROKEN not in codes, codes


def test_twice_the_work_is_caught_or_inconclusive_beside_a_busy_core(repo, tmp_path, record):
    wanted("hog")
    repo, commits = repo
    spin = [sys.executable, "-c", "while True: pass"]
    hog = subprocess.Popen(["taskset", "-c", "0", *spin] if shutil.which("taskset") else spin)
    try:
        codes = [gate_run(repo, commits["BASE"], commits[2], tmp_path / f"{k}", record, "hog x2")
                 for k in range(SLOW_RUNS)]
    finally:
        hog.kill()
        hog.wait()
    assert set(codes) <= {gate.REGRESSED, gate.INCONCLUSIVE}, codes


def test_slowdowns_are_measured(repo, tmp_path, record):
    """1.3x, 1.5x and 2x the plug-in's work, recorded; only 2x must be caught or inconclusive."""
    wanted("work")
    repo, commits = repo
    codes = {work: [gate_run(repo, commits["BASE"], commits[work], tmp_path / f"{work}-{k}", record, f"x{work}")
                    for k in range(SLOW_RUNS)] for work in WORK}
    assert all(gate.BROKEN not in c for c in codes.values()) and set(codes[2]) <= {1, 3}, codes
