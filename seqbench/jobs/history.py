"""``seqbench bench --commits A..B``: a history for asv's dashboard, one commit of a range at a time.

Each commit of ``git rev-list A..B`` (oldest first) is installed as ``seqbench continuous`` installs a commit
(:func:`seqbench.jobs.continuous.install`: exported, installed without dependencies into a cached folder that goes
first on ``PYTHONPATH``), and its own ``seqbench bench`` runs under this interpreter and this checkout's
``benchmarks/`` with ``--set-commit-hash`` that commit, merging its results into the results folder. So the rows
of every commit are comparable, and ``asv publish`` finds steps between them. A commit that does not install, or
whose sweep fails, is reported and skipped; the others' results are kept. Each commit's install and sweep log to
``seqbench-history/``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from seqbench import console
from seqbench.jobs import asv
from seqbench.jobs.asv import BenchError
from seqbench.jobs.continuous import GateError, cache_dir, environment, install


@dataclass
class History:
    """What a history run recorded, and what it skipped and why."""

    commits: list = field(default_factory=list)  # every commit of the range, oldest first
    recorded: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)  # commit -> why


def commits(root: Path, spec: str) -> list[str]:
    """The commits of ``A..B`` (``git rev-list``), oldest first; :class:`BenchError` for a bad or empty range."""
    if ".." not in spec:
        raise BenchError(f"--commits takes a range A..B (the commits after A up to B), got {spec!r}")
    found = subprocess.run(["git", "rev-list", "--reverse", spec, "--"], cwd=root, capture_output=True, text=True)
    if found.returncode != 0:
        raise BenchError(f"--commits {spec}: {found.stderr.strip() or 'git rev-list failed'}")
    shas = found.stdout.split()
    if not shas:
        raise BenchError(f"--commits {spec}: no commit in that range")
    return shas


def record(spec: str, argv: list[str], config: str | None = None, results_dir: Path | None = None,
           cache: Path | None = None) -> History:
    """Benchmark each commit of ``spec`` with its own ``seqbench bench`` and ``argv`` (the sweep's narrowing and
    grid), recorded for that commit into ``results_dir`` (default: the config's results folder)."""
    config_path = asv.find_config(config)
    target = Path(results_dir).resolve() if results_dir else asv.results_dir(config_path, asv.load_config(config_path))
    logs = Path("seqbench-history").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    history = History(commits(config_path.parent, spec))
    cache = cache_dir(cache)
    print(f"seqbench bench: {len(history.commits)} commits of {spec}, oldest first -> {target}/; logs in {logs}/")
    with console.phase("commits", total=len(history.commits)) as bar:
        for sha in history.commits:
            bar.advance(0, item=sha[:10])
            why = _one(config_path, sha, argv, target, logs, cache)
            if why:
                history.skipped[sha] = why
                print(f"  skipped {sha[:10]}: {why}")
            else:
                history.recorded.append(sha)
            bar.advance()
        bar.done(f"{len(history.recorded)} recorded, {len(history.skipped)} skipped")
    return history


def _one(config: Path, sha: str, argv: list[str], target: Path, logs: Path, cache: Path) -> str:
    """Install and benchmark one commit; why it was skipped, or "" when its results were recorded."""
    try:
        site = install(config.parent, sha, cache, logs / f"install-{sha[:10]}.log", "commit")
    except GateError as error:
        return str(error)
    log = logs / f"bench-{sha[:10]}.log"
    line = [sys.executable, "-m", "seqbench", "bench", *argv, "--set-commit-hash", sha, "--results-dir", str(target),
            "--config", str(config), "--wait"]
    with open(log, "w") as sink:
        sink.write(f"$ seqbench {' '.join(line[3:])}\n")
        sink.flush()
        code = subprocess.run(line, cwd=logs, env=environment(site), stdout=sink,
                              stderr=subprocess.STDOUT).returncode
    return f"its seqbench bench exited with {code}: see {log}" if code else ""


def run(spec: str, argv: list[str], config: str | None = None, results_dir: Path | None = None,
        cache: Path | None = None) -> int:
    """``seqbench bench --commits``: 0 when every commit was recorded, 1 when some were skipped (said why)."""
    history = record(spec, argv, config, results_dir, cache)
    print(f"seqbench bench: {len(history.recorded)} of {len(history.commits)} commits recorded"
          + (f"; {len(history.skipped)} skipped" if history.skipped else ""))
    return 1 if history.skipped else 0
