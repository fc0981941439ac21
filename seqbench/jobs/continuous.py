"""``seqbench continuous [BASE] [HEAD]``: is HEAD slower, or less accurate, than BASE? A CI gate.

How both commits are made comparable: asv files a result row by machine and environment (the interpreter's
path) and each benchmark's version (a hash of its source). So both commits run under **this interpreter** and
**this checkout's** ``benchmarks/`` (the asv config found here), and only the ``seqbench`` package changes: each
commit is exported (``git archive``) and installed without dependencies into a folder of its own
(``pip install --no-deps --target``, cached by commit under ``$SEQBENCH_CACHE_DIR/commits``), which goes first on
``PYTHONPATH`` (asv passes it on to its benchmark processes): the frameworks come from this environment, nothing is
downloaded. Each commit's own ``seqbench bench`` and ``seqbench check`` run, so its backends and entry points are
its own.

Speed: the ``gate`` grid in rounds A, B, A, B (A = BASE), every sample kept, then a confirmation round (A, B) of the
flagged benchmarks only, a confirmed point judged against the spread of its own commit's rounds; precision:
``seqbench check`` at both commits. The rules and the exit status are :mod:`seqbench.jobs.gate`'s. asv's and
pytest's output go to log files under ``<out>/logs/``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from seqbench import console
from seqbench.backends import registry
from seqbench.jobs import asv, gate
from seqbench.jobs.gate_report import render, summary
from seqbench.results import asv_files

GRID = "gate"


class GateError(ValueError):
    """The harness could not compare the two commits; the message says why (exit status 2)."""


@dataclass(frozen=True)
class Request:
    base: str | None = None  # default: the merge base with main
    head: str = "HEAD"
    ops: tuple = ()
    backends: tuple = ()
    devices: tuple = ("cpu",)
    dtypes: tuple = ()
    speed_factor: float = 1.5
    precision_factor: float = 2.0
    host_tolerance: float | None = None  # the matmul rate's move within a round that makes speed inconclusive
    out: Path = Path("seqbench-continuous/comparison.md")  # the Markdown; results and logs beside it
    cache: Path | None = None
    config: str | None = None
    machine: str | None = None


@dataclass
class Comparison:
    """What the gate found."""

    commits: tuple = ("", "")
    speed: list = field(default_factory=list)  # gate.Speed over the four rounds
    confirmed: list = field(default_factory=list)  # gate.Speed: slower again in the confirmation round
    within: list = field(default_factory=list)  # gate.Speed: confirmed, but within the host's own spread
    rounds: dict = field(default_factory=dict)  # asv's points by round (A1, B1, ...)
    unresolved: dict = field(default_factory=dict)  # point -> its rounds' spread, where it reached the speed factor
    moves: list = field(default_factory=list)  # gate.HostMove of every round
    precision: list = field(default_factory=list)  # gate.Precision
    problems: list = field(default_factory=list)  # why the harness could not compare
    logs: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def unconfirmed(self) -> list:
        """gate.Speed: flagged slower over the four rounds, not slower again in the confirmation round."""
        confirmed = {s.key for s in self.confirmed}
        return [s for s in self.speed if s.verdict == "slower" and s.key not in confirmed]

    def status(self, tolerance: float | None) -> int:
        beyond = [s for s in self.confirmed if s not in self.within]
        return gate.status(self.problems, self.precision, gate.unsteady(self.moves, tolerance), beyond, self.within,
                           self.unresolved, self.unconfirmed)


def main(request: Request) -> int:
    """Run the gate; print the table, write the Markdown; returns the exit status (:mod:`seqbench.jobs.gate`)."""
    config = asv.find_config(request.config)
    root = config.parent
    markdown = Path(request.out).resolve()
    out = markdown.parent
    for stale in ("rounds", "conformance", "logs"):
        shutil.rmtree(out / stale, ignore_errors=True)
    (out / "logs").mkdir(parents=True)
    common = asv.suite_common(config, asv.load_config(config))
    request = _narrowed(request, common)
    comparison = Comparison()
    try:
        comparison.commits = _commits(root, request.base, request.head)
        print(f"seqbench continuous: BASE {comparison.commits[0][:10]} -> HEAD {comparison.commits[1][:10]}, "
              f"{GRID} grid, ops {', '.join(request.ops)}, backends {', '.join(request.backends) or 'all'} on "
              f"{', '.join(request.devices)} -> {out}/")
        _run(request, root, config, out, comparison)
    except GateError as error:
        comparison.problems.append(str(error))
    code = comparison.status(request.host_tolerance)
    markdown.write_text(render(comparison, request, code))
    print(summary(comparison, request, code, markdown))
    return code


def _narrowed(request: Request, common) -> Request:
    """The request with the gate's defaults: the suite's gate ops, the gate grid's dtypes, and the backends here
    that the main job runs and the gate grid keeps (a backend named with --backend is passed on as it is: the
    commit's own seqbench checks it)."""
    ops = request.ops or tuple(common.GATE_OPS)
    dtypes = request.dtypes or tuple(common.GRIDS[GRID]["dtypes"])
    backends = request.backends or tuple(
        s.name for s in registry.backends() if s.available and not registry.traits(s.name).left_out_of_main_job
        and GRID not in registry.traits(s.name).left_out_of_grids)
    return Request(**{**request.__dict__, "ops": ops, "backends": backends, "dtypes": dtypes})


def _commits(root: Path, base: str | None, head: str) -> tuple[str, str]:
    head_sha = _rev(root, head, "HEAD")
    if base:
        return _rev(root, base, "BASE"), head_sha
    for main in ("main", "origin/main"):
        found = _git(root, "merge-base", main, head_sha)
        if found.returncode == 0:
            return found.stdout.strip(), head_sha
    raise GateError("BASE: no merge base of HEAD with main or origin/main here; name BASE (e.g. origin/main)")


def _rev(root: Path, name: str, what: str) -> str:
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    if found.returncode != 0:
        raise GateError(f"{what}: {name!r} is not a commit of the repository at {root}")
    return found.stdout.strip()


def _git(root: Path, *argv) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True)


def _run(request: Request, root: Path, config: Path, out: Path, comparison: Comparison) -> None:
    names = ("BASE", "HEAD")
    started = time.monotonic()
    with console.phase("install", total=2) as bar:
        sites, cache = [], cache_dir(request.cache)
        for name, sha in zip(names, comparison.commits):
            sites.append(install(root, sha, cache, out / "logs" / f"install-{name.lower()}.log", name))
            bar.advance(item=f"{name} {sha[:10]}")
        bar.done("both commits installed")
    comparison.timings["install"] = time.monotonic() - started
    envs = [environment(site) for site in sites]
    for name, site, env in zip(names, sites, envs):
        _require_own(name, site, env, out / "logs")
    rounds = [("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    started = time.monotonic()
    points = {side: [] for side in "AB"}
    with console.phase("speed rounds", total=len(rounds)) as bar:
        for side, number in rounds:
            k = "AB".index(side)
            bar.advance(0, item=f"{side}{number}: {names[k]} {comparison.commits[k][:10]}")
            points[side].append(_round(request, config, out, comparison, f"{side}{number}", k, envs[k]))
            bar.advance()
        bar.done("4 rounds")
    comparison.timings["speed rounds"] = time.monotonic() - started
    versions = [_versions(out / "rounds" / f"{side}1") for side in "AB"]
    why = gate.incomparable(sum(points["A"], []), sum(points["B"], []), tuple(versions))
    if why:
        raise GateError("rows not comparable: " + "; ".join(why))
    comparison.speed = gate.compare_speed(gate.pooled(points["A"]), gate.pooled(points["B"]), request.speed_factor)
    comparison.unresolved = gate.unresolved(gate.spread(comparison.rounds), request.speed_factor)
    flagged = [s for s in comparison.speed if s.verdict == "slower"]
    if flagged:
        started = time.monotonic()
        again = _confirm(request, config, out, comparison, flagged, envs)
        comparison.confirmed = gate.confirmed(flagged, again)
        comparison.within = gate.explained(comparison.confirmed, gate.spread(comparison.rounds))
        comparison.timings["confirmation"] = time.monotonic() - started
    started = time.monotonic()
    rows = []
    with console.phase("precision", total=2) as bar:
        for k, name in enumerate(names):
            bar.advance(0, item=f"{name} {comparison.commits[k][:10]}")
            rows.append(_check(request, out, comparison, name, envs[k]))
            bar.advance()
        bar.done(f"{len(rows[0])} and {len(rows[1])} cases checked")
    comparison.precision = gate.compare_precision(*rows, factor=request.precision_factor)
    comparison.timings["precision"] = time.monotonic() - started


def cache_dir(chosen: Path | None = None) -> Path:
    """Where installed commits are kept: ``chosen``, else ``$SEQBENCH_CACHE_DIR/commits``, else the user's cache."""
    if chosen:
        return Path(chosen).resolve()
    root = os.environ.get("SEQBENCH_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                       Path.home() / ".cache") / "seqbench"
    return Path(root) / "commits"


def install(root: Path, sha: str, cache: Path, log: Path, name: str) -> Path:
    """The folder holding commit ``sha``'s seqbench, installed for this interpreter (built once, then reused)."""
    site = cache / f"{sha}-{sys.implementation.cache_tag}"
    if (site / ".installed").is_file():
        log.write_text(f"{name} {sha}: installed before, in {site}\n")
        return site
    shutil.rmtree(site, ignore_errors=True)
    source = cache / f"{sha}-src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=root, capture_output=True)
    if archive.returncode != 0:
        raise GateError(f"{name} {sha[:10]}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    with open(log, "w") as sink:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                               "--target", str(site), str(source)], stdout=sink, stderr=subprocess.STDOUT)
    shutil.rmtree(source, ignore_errors=True)
    if done.returncode != 0:
        raise GateError(f"{name} {sha[:10]} does not install (pip exited with {done.returncode}): see {log}")
    (site / ".installed").write_text(sha + "\n")
    return site


def environment(site: Path) -> dict:
    """This process's environment with a commit's seqbench first on the path (asv's benchmark processes too), and
    the current directory kept off it (``PYTHONSAFEPATH``: a checkout's own ``seqbench/`` would come first)."""
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "ASV_PYTHONPATH": path, "PYTHONSAFEPATH": "1"}


def _require_own(name: str, site: Path, env: dict, cwd: Path) -> None:
    """Make sure a commit's processes import that commit's seqbench (and its backends), not another copy."""
    found = subprocess.run([sys.executable, "-c", "import seqbench.backends as b; print(b.__file__)"], cwd=cwd,
                           env=env, capture_output=True, text=True)
    where = found.stdout.strip()
    if found.returncode != 0 or not Path(where).is_relative_to(site):
        raise GateError(f"{name}: its processes import seqbench from {where or found.stderr.strip()}, not from its "
                        f"install in {site}")


def _narrowing(request: Request, ops=None, backends=None) -> list[str]:
    line = []
    for option, chosen in (("--op", ops or request.ops), ("--backend", backends or request.backends),
                           ("--device", request.devices), ("--dtype", request.dtypes)):
        if chosen:
            line += [option, ",".join(chosen)]
    return line


def _seqbench(argv: list[str], env: dict, log: Path, comparison: Comparison) -> int:
    """One command of a commit's own seqbench, its output appended to ``log``; it runs in the logs' folder, out
    of any checkout (whose ``seqbench/`` would shadow the commit's)."""
    if log not in comparison.logs:
        comparison.logs.append(log)
    with open(log, "a") as sink:
        sink.write(f"$ seqbench {' '.join(argv)}\n")
        sink.flush()
        return subprocess.run([sys.executable, "-m", "seqbench", *argv], cwd=log.parent, env=env, stdout=sink,
                              stderr=subprocess.STDOUT).returncode


def _round(request, config, out, comparison, name: str, k: int, env: dict, ops=None, backends=None) -> list:
    """One speed round of one commit (``k``: 0 BASE, 1 HEAD); returns asv's points."""
    results = out / "rounds" / name
    argv = ["bench", "--grid", GRID, *_narrowing(request, ops, backends), "--set-commit-hash", comparison.commits[k],
            "--results-dir", str(results), "--config", str(config), "--wait"]
    log = out / "logs" / "bench.log"
    code = _seqbench(argv + (["--machine", request.machine] if request.machine else []), env, log, comparison)
    if code != 0:
        raise GateError(f"speed round {name}: seqbench bench exited with {code}{_said(log)}: see {log}")
    points = asv_files.read([results])[1] if results.is_dir() else []
    comparison.rounds[name] = points
    comparison.moves += gate.host_moves(name, points)
    return points


def _confirm(request, config, out, comparison, flagged: list, envs: list) -> list:
    """A round of BASE and one of HEAD over the flagged benchmarks only; the verdicts of their samples alone."""
    params = [dict(s.key[1]) for s in flagged]
    ops = sorted({s.key[0].split(".")[1] for s in flagged})
    backends = sorted({p["backend"] for p in params if "backend" in p})
    points = []
    with console.phase("confirmation", total=2) as bar:
        for k, side in enumerate("AB"):
            bar.advance(0, item=f"{side}3: {len(flagged)} flagged")
            points.append(_round(request, config, out, comparison, f"{side}3", k, envs[k], ops, backends))
            bar.advance()
        keys = {s.key for s in flagged}
        again = [s for s in gate.compare_speed(gate.pooled(points[:1]), gate.pooled(points[1:]),
                                               request.speed_factor) if s.key in keys]
        bar.done(f"{sum(s.verdict == 'slower' for s in again)} of {len(flagged)} slower again")
    return again


def _versions(results: Path) -> dict:
    return {name: meta.get("version") for name, meta in asv_files.benchmark_list(results).items()}


def _check(request: Request, out: Path, comparison: Comparison, name: str, env: dict) -> list[dict]:
    """A commit's conformance rows (``seqbench check`` on the gate's narrowing)."""
    results = out / "conformance" / name.lower()
    log = out / "logs" / f"check-{name.lower()}.log"
    code = _seqbench(["check", *_narrowing(request), "--results-dir", str(results), "--log", str(log)], env, log,
                     comparison)
    rows = [json.loads(line) for path in sorted(results.glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]
    if code not in (0, 1) or not rows:
        raise GateError(f"precision at {name}: seqbench check exited with {code} and {len(rows)} result rows"
                        f"{_said(log)}: see {log}")
    return rows


def _said(log: Path) -> str:
    """The error a command's log ends with (``seqbench bench: error: ...``), as ``" (the error)"``; "" if none."""
    errors = [line for line in log.read_text(errors="replace").splitlines() if ": error: " in line]
    return f" ({errors[-1].strip()})" if errors else ""
