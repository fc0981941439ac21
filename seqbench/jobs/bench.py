"""``seqbench bench``: the asv suite in ``benchmarks/`` over a grid, for the backends and devices here.

It runs ``asv run --python=same`` (this interpreter, seqbench as installed)
with ``--bench`` patterns that keep only the combinations that can run here:
backends that import, their devices, their dtypes, and the ops each one
implements. Everything else would only be skipped in setup; leaving it out
saves asv a process per combination. The backend axis is every registered
backend, a plug-in's as a built-in's (:mod:`benchmarks.common`).

    seqbench bench                          # quick grid, 10 to 20 samples per time benchmark
    seqbench bench --grid mid --op lstm     # one op over the mid grid
    seqbench bench --full --backend torch --device cuda --set-commit-hash HEAD

asv writes into a scratch folder. With a commit (``--set-commit-hash``) each
op's results are merged point by point into the results folder as the op
finishes (:mod:`seqbench.results.asv_files`: a sweep never removes a point it
did not measure); without one nothing is kept and nothing is written.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqbench import catalog, console
from seqbench.backends import registry
from seqbench.backends.protocol import BackendUnavailable
from seqbench.jobs import asv
from seqbench.jobs.asv import BenchError
from seqbench.results import asv_files
from seqbench.selection import Selection

MODULES = {"recurrent": "bench_recurrent", "composite": "bench_composite", "embedding": "bench_embedding"}
#: the ``--op`` that selects the embedding trainers' suite (``benchmarks/bench_training.py``): every trainer here,
#: skip-gram, CBOW and GloVe, speed and quality beside gensim
TRAINING = "training"
GRIDS = ("quick", "mid", "gpu", "gate", "full")


@dataclass(frozen=True)
class Request:
    """One sweep, as the command line, the main job or a cluster shard asks for it.

    ``commit`` keeps the results, recorded for that commit, in ``results_dir`` (default: the config's);
    ``training`` adds the embedding trainers' suite; ``log`` sends asv's output to a file and shows a progress
    bar titled ``title``; ``wait`` waits for another sweep's lock instead of refusing."""

    selection: Selection = Selection()
    grid: str = "quick"
    training: bool = False
    commit: str | None = None
    results_dir: Path | None = None
    machine: str | None = None
    config: str | None = None
    launch_method: str | None = None
    show_stderr: bool = False
    log: Path | None = None
    title: str = ""
    dry_run: bool = False
    wait: bool = False


def select(common, grid: str, sel: Selection):
    """What can run here: ``{op: [(backend, device, dtype), ...]}`` and notes on what was left out.

    Raises :class:`BenchError` for a backend the grid leaves out or that cannot run here, a device or dtype
    off the grid, and an empty selection.
    """
    notes = []
    axis = common.backends(grid)
    for name in sel.backends:
        left_out = registry.traits(name).left_out_of_grids.get(grid)
        if left_out:
            raise BenchError(f"backend {name!r} is left out of the {grid} grid: {left_out}")
    for name in sel.devices:
        if name not in common.DEVICES:
            raise BenchError(f"--device must be one of {list(common.DEVICES)} for benchmarks, got {name!r}")
    grid_dtypes = common.GRIDS[grid]["dtypes"]
    for name in sel.dtypes:
        if name not in grid_dtypes:
            raise BenchError(f"--dtype must be one of {list(grid_dtypes)} on the {grid} grid, got {name!r}")

    chosen = []
    for name in sel.backends or axis:
        try:
            chosen.append(registry.backend(name))
        except BackendUnavailable as error:
            if sel.backends:
                raise BenchError(f"backend {name!r} cannot run here: {error}") from None
            notes.append(f"{name}: unavailable ({error})")
    installed = registry.installed()
    for be in chosen:
        if be.name not in installed:
            raise BenchError(f"backend {be.name!r} is registered in this process only: asv's benchmark processes "
                             "find backends through the 'seqbench.backends' entry-point group; declare it there")

    for be in chosen:
        kept = common.grid_dtypes(grid, be.name)
        if kept != grid_dtypes and (not sel.dtypes or set(sel.dtypes) - set(kept)):
            notes.append(f"{be.name}: {'/'.join(kept)} only on the {grid} grid "
                         f"({registry.traits(be.name).grid_dtypes[grid][1]})")

    selection = {}
    for op in catalog.ops().values():
        if not sel.wants("ops", op.name):
            continue
        if common.area(op) is None:
            notes.append(f"{op.name}: no benchmark suite benchmarks its family {op.family!r}")
            continue
        points = [(be.name, device, dtype) for be in chosen for device in be.devices()
                  if device in common.DEVICES and sel.wants("devices", device)
                  for dtype in common.grid_dtypes(grid, be.name)
                  if sel.wants("dtypes", dtype) and be.supports(op, device, dtype)]
        if points:
            selection[op.name] = points
        elif sel.ops:
            notes.append(f"{op.name}: no selected backend, device and dtype supports it")
    if not selection:
        asked = ", ".join(f"{k}={','.join(v)}" for k, v in (("op", sel.ops), ("backend", sel.backends),
                                                            ("device", sel.devices), ("dtype", sel.dtypes)) if v)
        why = "; ".join(notes) or "no backend here supports the selected ops on the selected devices and dtypes"
        raise BenchError(f"nothing to benchmark on the {grid} grid for {asked or 'everything'}: {why}")
    return selection, notes


#: benchmarks that only measure on accelerators: left out for the CPU (they would only be skipped)
DEVICE_ONLY = ("track_device_peak_memory",)


def patterns(common, selection: dict, grid: str = "quick") -> list[str]:
    """asv ``--bench`` patterns (one per op) matching ``module.op.method('backend', 'device', 'dtype', ...``."""
    out = []
    only = common.METHODS.get(grid)
    for name, points in selection.items():
        module = MODULES[common.area(catalog.get(name))]
        alternatives = []
        for on_cpu in (True, False):
            combos = "|".join(f"'{re.escape(b)}', '{re.escape(d)}', '{re.escape(t)}'"
                              for b, d, t in points if (d == "cpu") == on_cpu)
            if combos:
                if only:
                    method = "(?:" + "|".join(m for m in only if not (on_cpu and m in DEVICE_ONLY)) + ")"
                else:
                    method = "(?!" + "|".join(DEVICE_ONLY) + r")[a-z_]+" if on_cpu else "[a-z_]+"
                alternatives.append(rf"{method}\((?:{combos}),")
        suites = [rf"{module}\.{re.escape(name)}\.(?:{'|'.join(alternatives)})"]
        checked = precision_points(common, grid, name, points)
        if checked:
            combos = "|".join(f"'{re.escape(b)}', '{re.escape(d)}', '{re.escape(t)}'" for b, d, t in checked)
            method = "(?:" + "|".join(common.precision_methods(grid)) + ")"
            suites.append(rf"{PRECISION_MODULE}\.{re.escape(name)}\.{method}\((?:{combos})\)")
        out.append(rf"^(?:{'|'.join(suites)})")
    pairs = peak_points(selection)
    if pairs:
        combos = "|".join(f"'{re.escape(d)}', '{re.escape(t)}'" for d, t in pairs)
        out += [rf"^{module}\.matmul\.track_gflops\((?:{combos})\)" for module in PEAK_MODULES]
    return out


#: the precision suite: each op's conformance errors per point as asv tracks (it rides with the op's run)
PRECISION_MODULE = "bench_precision"


def precision_points(common, grid: str, op: str, points: list) -> list:
    """The points of ``op`` the precision suite tracks on ``grid`` (none where the op or grid has none)."""
    if op not in common.PRECISION["ops"] or not common.precision_methods(grid):
        return []
    return [(b, d, t) for b, d, t in points if t in common.PRECISION["dtypes"]]


#: the modules measuring the device's matmul rate: at the start of a sweep (with its first op) and at its end (with
#: its last op; asv runs a run's benchmarks sorted by name, and this one sorts last)
PEAK_MODULES = ("bench_peak", "bench_zz_peak_end")


def peak_points(selection: dict) -> list[tuple[str, str]]:
    """The (device, dtype) pairs whose matmul rate (``bench_peak``, and ``bench_zz_peak_end`` again at the end)
    the sweep measures: those it benchmarks (half precision on a GPU only)."""
    pairs = {(d, t) for points in selection.values() for _, d, t in points}
    return sorted((d, t) for d, t in pairs if d != "cpu" or t in ("float32", "float64"))


def methods(common, grid: str, device: str) -> list[str]:
    """The benchmark methods ``grid`` runs on ``device`` (one asv process each per point and shape)."""
    chosen = common.METHODS.get(grid) or [m for m in dir(common._OpBenchmark)
                                          if m.startswith(("time_", "peakmem_", "track_"))]
    return [m for m in chosen if not (device == "cpu" and m in DEVICE_ONLY)]


def shapes(common, grid: str, op) -> list[dict]:
    """The catalog shapes ``grid`` benchmarks ``op`` at."""
    params, _ = common.params_of(op, grid)
    keys = [key for key, _ in common.shape_axes(op)]
    return [common.bench_shape(op, dict(zip(keys, combo))) for combo in itertools.product(*params[3:])]


def count(common, grid: str, selection: dict) -> int:
    """Benchmark processes asv will start: methods × selected points × shapes."""
    total = sum(len(shapes(common, grid, catalog.get(name))) * len(methods(common, grid, device))
                for name, points in selection.items() for _, device, _ in points)
    checked = sum(len(precision_points(common, grid, name, points)) for name, points in selection.items())
    return total + checked * len(common.precision_methods(grid)) + len(PEAK_MODULES) * len(peak_points(selection))


@dataclass
class Sweep:
    """What one sweep planned and did."""

    grid: str
    planned: int  # benchmark processes asv will start
    notes: list  # what was left out, and why
    code: int = 0  # asv's exit status (the worst over the sweep's runs)
    counts: Counter = field(default_factory=Counter)  # finished benchmarks by status (ok, failed, ...)
    failed: list = field(default_factory=list)  # names of the benchmarks that failed
    seconds: float = 0.0
    log: Path | None = None
    interrupted: str = ""  # where an interrupted sweep stopped, and what it kept
    kept: list = field(default_factory=list)  # result files written into the results folder

    def status(self) -> str:
        """``"19 ok, 1 failed"``: the finished benchmarks by status, or ``"nothing ran"``."""
        return ", ".join(f"{n} {status}" for status, n in self.counts.items()) or "nothing ran"


def run(request: Request) -> int:
    """``seqbench bench``: plan the sweep, say what runs, run asv, say how it went."""
    result = sweep(request, announce=True)
    return console.INTERRUPTED if result.interrupted else result.code


def sweep(request: Request, announce: bool = False, points: dict | None = None) -> Sweep:
    """Run the sweep ``request`` asks for, one asv run per op (so an interrupted sweep keeps the ops it
    finished); ``announce`` prints the plan and the outcome (``seqbench bench``). ``points`` (``{op: [(backend,
    device, dtype), ...]}``, a shard of a cluster sweep) replaces the selection the request would make."""
    asv.require_asv()
    grid = request.grid
    config = asv.find_config(request.config)
    conf = asv.load_config(config)
    common = asv.suite_common(config, conf)
    sel = request.selection
    selection, notes = ((points, []) if points is not None else
                        select(common, grid, sel) if sel.ops or not request.training else ({}, []))
    planned = count(common, grid, selection) + (common.training_processes(grid) if request.training else 0)
    result = Sweep(grid, planned, notes)
    target = Path(request.results_dir).resolve() if request.results_dir else asv.results_dir(config, conf)
    if announce:
        _announce(result, selection, request.training)
    start, end = (patterns(common, selection, grid)[len(selection):] or [[], []])[:2]
    chunks = [(op, patterns(common, {op: ops_points}, grid)[:1]) for op, ops_points in selection.items()]
    if request.training:
        chunks.append((TRAINING, [r"^bench_training\."]))
    if start:  # the device's matmul rate rides with the first run and again with the last (PEAK_MODULES)
        chunks[0][1].append(start)
        chunks[-1][1].append(end)

    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="seqbench-asv-")))
        run_config = asv.derived_config(config, conf, scratch / "results", scratch)
        name = asv.machine(request.machine)
        lines = [asv.command(run_config, chunk_patterns, request.commit, name, request.launch_method,
                             request.show_stderr) for _, chunk_patterns in chunks]
        if request.dry_run:
            for line in lines:
                print(f"would run: {asv.shown(grid, line)}")
            return result
        devices = {d for ops_points in selection.values() for _, d, _ in ops_points}
        stack.enter_context(asv.machine_lock(asv.lock_keys(devices, request.training), str(target), request.wait))
        asv.ensure_machine(name)
        result.log = Path(request.log) if request.log else None
        sink = progress = None
        if result.log:
            result.log.parent.mkdir(parents=True, exist_ok=True)
            sink = stack.enter_context(open(result.log, "a", buffering=1))
            bar = stack.enter_context(console.phase(request.title or f"benchmarks ({grid} grid)",
                                                    total=100 * len(chunks), counts=False))
        followed, start, done = asv.Followed(), time.monotonic(), []
        for k, ((op, _), line) in enumerate(zip(chunks, lines)):
            if sink:
                def progress(percent, benchmark, offset=100 * k):
                    bar.update(offset + percent, item=benchmark.split(".", 1)[-1])
            try:
                code = asv.stream(line, grid, scratch, start, followed, sink, progress)
            except KeyboardInterrupt:
                kept = (f"results of {', '.join(done)} kept in {target}/" if done and request.commit
                        else "no op finished, nothing kept" if request.commit else "results not kept")
                result.interrupted = f"benchmarks interrupted during {op} (op {k + 1} of {len(chunks)}); {kept}"
                break
            result.code = max(result.code, code)
            if request.commit:
                result.kept += _keep(scratch / "results", target)
            done.append(op)
        result.counts, result.failed = followed.counts, followed.failed
        result.seconds = time.monotonic() - start
        if sink:
            bar.done(result.interrupted.split(";")[0] if result.interrupted else "benchmarks " + result.status())
    if announce:
        _outcome(result, request, target)
    return result


def _keep(scratch_results: Path, target: Path) -> list[str]:
    """Merge what asv wrote into the scratch folder into ``target`` point by point, then empty the scratch folder
    (so the next op's run merges only its own points)."""
    files = {str(p.relative_to(scratch_results)): p.read_text() for p in sorted(scratch_results.rglob("*.json"))
             if "html" not in p.relative_to(scratch_results).parts}
    written = asv_files.merge_folder(target, files) if files else []
    shutil.rmtree(scratch_results, ignore_errors=True)
    return written


def _announce(result: Sweep, selection: dict, training: bool) -> None:
    points = sorted({p for ps in selection.values() for p in ps})
    trained = " and the embedding trainers (bench_training)" if training else ""
    print(f"seqbench bench: {result.grid} grid, {len(selection)} ops{trained}, {result.planned} benchmark runs")
    for backend in sorted({b for b, _, _ in points}):
        combos = sorted({(d, t) for b, d, t in points if b == backend})
        print(f"  {backend}: " + ", ".join(f"{d}/{t}" for d, t in combos))
    for note in result.notes:
        print(f"  left out: {note}")


def _outcome(result: Sweep, request: Request, target: Path) -> None:
    kept = f"results in {target}/" if request.commit else "results not kept (no --set-commit-hash)"
    failed = result.failed
    status = (f"{result.status()}" if result.code == 0 else
              f"{result.status()}; asv exited with {result.code}" + (
                  f": {len(failed)} benchmarks failed ({', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''})"
                  if failed else "") + f"; see {result.log or 'above'}")
    print(result.interrupted or f"seqbench bench: {status}; wall time {result.seconds:.0f} s; {kept}"
          + (f"; asv's output: {result.log}" if result.log else ""))
