"""``seqbench bench``: the asv suite in ``benchmarks/`` over a grid, for the backends and devices here.

It runs ``asv run --python=same`` (this interpreter, seqbench as installed)
with ``--bench`` patterns that keep only the combinations that can run here:
backends that import, their devices, their dtypes, and the ops each one
implements. Everything else would only be skipped in setup; leaving it out
saves asv a process per combination. asv's progress streams through.

    seqbench bench                          # quick grid, one sample per benchmark
    seqbench bench --grid mid --op lstm     # one op over the mid grid
    seqbench bench --full --backend torch --device cuda --set-commit-hash HEAD

Without ``--set-commit-hash`` asv shows the results and does not keep them
(it still writes ``results/benchmarks.json`` and the machine's
``machine.json``); with it they go to ``results/<machine>/`` for
``asv publish`` and ``seqbench report``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import itertools
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqbench import catalog, console
from seqbench.backends import registry
from seqbench.backends.protocol import BackendUnavailable
from seqbench.results.records import gpu_names

MODULES = {"recurrent": "bench_recurrent", "composite": "bench_composite", "embedding": "bench_embedding"}
#: the ``--op`` that selects the embedding trainers' suite (``benchmarks/bench_training.py``): every trainer here,
#: skip-gram, CBOW and GloVe, speed and quality beside gensim
TRAINING = "training"


class BenchError(ValueError):
    """``seqbench bench`` cannot start; the message says why and what to do."""


def add_command(subparsers) -> argparse.ArgumentParser:
    """Add ``bench`` to the ``seqbench`` subcommands."""
    p = subparsers.add_parser(
        "bench", help="benchmark sweep through asv: time, memory, throughput per backend",
        description="Run the asv suite (benchmarks/) over a grid, for the backends, devices and dtypes that can "
                    "run here. Without --set-commit-hash asv shows the results and does not keep them; with it "
                    "they go to the results folder, for asv publish and seqbench report.",
    )
    grid = p.add_mutually_exclusive_group()
    grid.add_argument("--quick", dest="grid", action="store_const", const="quick",
                      help="the small grid, one sample per benchmark (asv --quick); the default")
    grid.add_argument("--full", dest="grid", action="store_const", const="full",
                      help="the full grid (seq_len 16-4096, hidden 64-2048, batch 1-512): meant for GPUs")
    grid.add_argument("--grid", choices=("quick", "mid", "gpu", "full"),
                      help="choose the grid by name (gpu: a short GPU session, see benchmarks/common.py)")
    for name, what in (("op", f"catalog op (or {TRAINING!r}: the embedding trainers, bench_training)"),
                       ("backend", "backend"), ("device", "device (cpu, cuda, ...)"),
                       ("dtype", "dtype")):
        p.add_argument(f"--{name}", action="append", help=f"only this {what}; repeatable or comma-separated")
    p.add_argument("--machine", help="asv machine name results are filed under (default: SEQBENCH_MACHINE, else "
                                     "the host name); created with `asv machine --yes` if unknown")
    p.add_argument("--set-commit-hash", metavar="COMMIT",
                   help="keep the results, recorded for COMMIT (e.g. HEAD) in the results directory")
    p.add_argument("--results-dir", help="write asv results here instead of the config's results/")
    p.add_argument("--config", help="asv.conf.json (default: found from the current directory up)")
    p.add_argument("--launch-method", choices=("spawn", "forkserver"),
                   help="how asv starts benchmark processes (default: forkserver where os.fork exists)")
    p.add_argument("-e", "--show-stderr", action="store_true", help="show benchmark output, skip reasons included")
    p.add_argument("--log", help="write asv's output to this file and show a progress bar instead")
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would run, run nothing")
    add_cluster_options(p, "benchmark shards; results kept for --set-commit-hash (default HEAD)")
    p.set_defaults(func=_command)
    return p


def add_cluster_options(p, what: str) -> None:
    """``--cluster`` and ``--shards``, for the commands that can run over a Ray cluster."""
    p.add_argument("--cluster", metavar="ADDRESS",
                   help=f"run as {what} over a Ray cluster: a Ray address (ray://head:10001, auto), or 'local' "
                        "for a Ray instance on this machine; needs pip install 'seqbench[cluster]'")
    p.add_argument("--shards", type=int, metavar="N",
                   help="with --cluster: this many CPU shards (and GPU shards, where the cluster has GPUs); "
                        "default one per GPU, and one per node for CPU benchmarks (they take turns on a machine) "
                        "or one per CPU for CPU checks")


def main(argv=None) -> int:
    """``seqbench bench`` on its own (the CLI wires :func:`add_command` into ``seqbench``)."""
    parser = argparse.ArgumentParser(prog="seqbench")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(argv or [])])
    return args.func(args)


def _command(args) -> int:
    try:
        if args.cluster:
            from seqbench.fleet.sweeps import bench_command

            return bench_command(args)
        return run(args)
    except BenchError as error:
        print(f"seqbench bench: error: {error}", file=sys.stderr)
        return 2


def _values(option) -> list[str]:
    return [v.strip() for item in option or [] for v in item.split(",") if v.strip()]


def find_config(path: str | None = None) -> Path:
    """The asv config: ``path``, or ``asv.conf.json`` in the current directory or one above it."""
    if path:
        config = Path(path)
        if not config.is_file():
            raise BenchError(f"no asv config at {config}")
        return config.resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "asv.conf.json").is_file():
            return folder / "asv.conf.json"
    raise BenchError("no asv.conf.json in this directory or above: run seqbench bench in the seqbench "
                     "repository (the asv suite lives in its benchmarks/), or pass --config")


def _load_config(config: Path) -> dict:
    from asv import util

    return util.load_json(str(config), js_comments=True)


def suite_common(config: Path, conf: dict):
    """The suite's ``benchmarks/common.py`` (grids and axes), loaded from its file."""
    path = config.parent / conf.get("benchmark_dir", "benchmarks") / "common.py"
    if not path.is_file():
        raise BenchError(f"no benchmark suite at {path.parent} (benchmark_dir of {config})")
    spec = importlib.util.spec_from_file_location("_seqbench_suite_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def select(common, grid: str, ops=(), backends=(), devices=(), dtypes=()):
    """What can run here: ``{op: [(backend, device, dtype), ...]}`` and notes on what was left out.

    Raises :class:`BenchError` for an unknown name or an empty selection.
    """
    notes = []
    axis_backends = common.backends(grid)
    for name in ops:
        catalog.get(name)  # ValueError naming the ops there are
    for name in backends:
        if name not in registry.names():
            raise BenchError(f"unknown backend {name!r}; backends: {', '.join(registry.names())}")
        if name not in axis_backends:
            raise BenchError(f"backend {name!r} is not on the {grid} grid's backend axis "
                             f"({', '.join(axis_backends)}); {common.LEFT_OUT.get((grid, name), '')}"
                             f"SEQBENCH_BACKENDS sets the axis")
    for name in devices:
        if name not in common.DEVICES:
            raise BenchError(f"device must be one of {list(common.DEVICES)}, got {name!r}")
    grid_dtypes = common.GRIDS[grid]["dtypes"]
    for name in dtypes:
        if name not in grid_dtypes:
            raise BenchError(f"dtype must be one of {list(grid_dtypes)} on the {grid} grid, got {name!r}")

    chosen = []
    for name in backends or axis_backends:
        try:
            chosen.append(registry.backend(name))
        except (BackendUnavailable, ValueError) as error:
            if backends:
                raise BenchError(f"backend {name!r} cannot run here: {error}") from None
            notes.append(f"{name}: unavailable ({error})")

    for be in chosen:
        kept = common.grid_dtypes(grid, be.name)
        if kept != grid_dtypes and (not dtypes or set(dtypes) - set(kept)):
            notes.append(f"{be.name}: {'/'.join(kept)} only on the {grid} grid ({common.NARROW[(grid, be.name)][1]})")

    selection = {}
    for op in catalog.ops().values():
        if ops and op.name not in ops:
            continue
        if common.area(op) is None:
            notes.append(f"{op.name}: no benchmark suite benchmarks its family {op.family!r}")
            continue
        points = []
        for be in chosen:
            for device in be.devices():
                if device not in common.DEVICES or (devices and device not in devices):
                    continue
                for dtype in common.grid_dtypes(grid, be.name):
                    if (dtypes and dtype not in dtypes) or not be.supports(op, device, dtype):
                        continue
                    points.append((be.name, device, dtype))
        if points:
            selection[op.name] = points
        elif ops:
            notes.append(f"{op.name}: no selected backend, device and dtype supports it")
    if not selection:
        asked = ", ".join(f"{k}={v}" for k, v in (("op", ops), ("backend", backends), ("device", devices),
                                                  ("dtype", dtypes)) if v) or "everything"
        why = "; ".join(notes) or "no backend here supports the selected ops on the selected devices and dtypes"
        raise BenchError(f"nothing to benchmark on the {grid} grid for {asked}: {why}")
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
        out.append(rf"^{module}\.{re.escape(name)}\.(?:{'|'.join(alternatives)})")
    pairs = peak_points(selection)
    if pairs:
        combos = "|".join(f"'{re.escape(d)}', '{re.escape(t)}'" for d, t in pairs)
        out.append(rf"^bench_peak\.matmul\.track_gflops\((?:{combos})\)")
    return out


def peak_points(selection: dict) -> list[tuple[str, str]]:
    """The (device, dtype) pairs whose matmul rate (``bench_peak``) the sweep measures: those it benchmarks
    (half precision on a GPU only)."""
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
    return total + len(peak_points(selection))


def _machine_file() -> Path:
    return Path(os.path.expanduser("~/.asv-machine.json"))


def ensure_machine(name: str | None) -> None:
    """Record the asv machine in ``~/.asv-machine.json`` (so asv never prompts): asv's own defaults for what is
    missing (CPU, OS, memory), and the GPUs ``nvidia-smi`` lists, which asv keeps into each results folder's
    ``machine.json`` for the report."""
    from asv.machine import Machine, MachineCollection

    path = _machine_file()
    known = {}
    if path.is_file():
        try:
            known = {k: v for k, v in json.loads(path.read_text()).items() if k != "version"}
        except ValueError:
            known = {}
    node = platform.node()
    key = name or (node if node in known or len(known) != 1 else next(iter(known)))
    info = {**Machine.get_defaults(), **known.get(key, {}), "machine": key}
    gpus = gpu_names()
    if gpus:
        info["gpu"] = gpus
    if info != known.get(key):
        MachineCollection.save(key, info, _path=str(path))


def _derived_config(config: Path, conf: dict, results_dir: str, folder: Path) -> Path:
    """A copy of the config in ``folder`` with absolute paths and another results directory."""
    root = config.parent
    derived = dict(conf)
    derived.update(
        repo=str((root / conf.get("repo", ".")).resolve()),
        benchmark_dir=str((root / conf.get("benchmark_dir", "benchmarks")).resolve()),
        results_dir=str(Path(results_dir).resolve()),
        html_dir=str((Path(results_dir) / "html").resolve()),
        env_dir=str((root / conf.get("env_dir", "env")).resolve()),
    )
    (folder / "asv.conf.json").write_text(json.dumps(derived, indent=2))
    return folder / "asv.conf.json"


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


def run(args) -> int:
    """``seqbench bench``: plan the sweep, say what runs, run asv, say how it went."""
    result = sweep(args, announce=True)
    return console.INTERRUPTED if result.interrupted else result.code


def sweep(args, announce: bool = False, points: dict | None = None) -> Sweep:
    """Run the sweep ``args`` selects, one asv run per op (so an interrupted sweep keeps the ops it finished);
    ``announce`` prints the plan and the outcome (``seqbench bench``). ``points`` (``{op: [(backend, device,
    dtype), ...]}``, a shard of a cluster sweep) replaces the selection ``args`` would make."""
    if importlib.util.find_spec("asv") is None:
        raise BenchError(f"asv is not installed in this Python ({sys.executable}); "
                         "pip install 'seqbench[bench]' (asv >= 0.6)")
    grid = args.grid or "quick"
    config = find_config(args.config)
    conf = _load_config(config)
    common = suite_common(config, conf)
    ops, backends, devices, dtypes = (_values(getattr(args, k)) for k in ("op", "backend", "device", "dtype"))
    training = TRAINING in ops
    ops = [op for op in ops if op != TRAINING]
    try:
        selection, notes = ((points, []) if points is not None else
                            select(common, grid, ops, backends, devices, dtypes) if ops or not training else ({}, []))
    except ValueError as error:
        raise BenchError(str(error)) from None

    result = Sweep(grid, count(common, grid, selection) + (common.training_processes(grid) if training else 0), notes)
    results = Path(args.results_dir) if args.results_dir else config.parent / conf.get("results_dir", "results")
    if announce:
        points = sorted({p for ps in selection.values() for p in ps})
        trained = " and the embedding trainers (bench_training)" if training else ""
        print(f"seqbench bench: {grid} grid, {len(selection)} ops{trained}, {result.planned} benchmark runs")
        for backend in sorted({b for b, _, _ in points}):
            combos = sorted({(d, t) for b, d, t in points if b == backend})
            print(f"  {backend}: " + ", ".join(f"{d}/{t}" for d, t in combos))
        for note in notes:
            print(f"  left out: {note}")
    peak = [p for p in patterns(common, selection, grid) if p.startswith("^bench_peak")]
    chunks = [({op: points}, patterns(common, {op: points}, grid)[:1] + (peak if k == 0 else []))
              for k, (op, points) in enumerate(selection.items())]  # the device peaks ride with the first op
    if training:
        chunks.append(({TRAINING: []}, [r"^bench_training\."]))

    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="seqbench-asv-"))
        run_config = _derived_config(config, conf, args.results_dir, Path(scratch)) if args.results_dir else config
        if args.dry_run:
            for _, chunk_patterns in chunks:
                print(f"would run: SEQBENCH_GRID={grid} {shlex.join(_asv_command(args, grid, run_config, chunk_patterns))}")
            return result
        stack.enter_context(machine_lock(args, _lock_keys(selection, training), wait=getattr(args, "wait", False)))
        ensure_machine(machine(args))
        result.log = Path(args.log) if getattr(args, "log", None) else None
        watch = None
        if result.log:
            result.log.parent.mkdir(parents=True, exist_ok=True)
            watch = stack.enter_context(console.phase(getattr(args, "title", None) or f"benchmarks ({grid} grid)",
                                                      total=100 * len(chunks), counts=False))
        start = time.monotonic()
        done = []
        for k, (chunk, chunk_patterns) in enumerate(chunks):
            op = next(iter(chunk))
            try:
                code = _run_asv(args, grid, run_config, chunk_patterns, result, watch, 100 * k, start)
            except KeyboardInterrupt:
                kept = (f"results of {', '.join(done)} kept in {results}/" if done and args.set_commit_hash
                        else "no op finished, nothing kept" if args.set_commit_hash else "results not kept")
                result.interrupted = f"benchmarks interrupted during {op} (op {k + 1} of {len(chunks)}); {kept}"
                break
            result.code = max(result.code, code)
            done.append(op)
        result.seconds = time.monotonic() - start
        if watch:
            watch.done(result.interrupted.split(";")[0] if result.interrupted else
                       ("benchmarks " + ", ".join(f"{n} {status}" for status, n in result.counts.items()))
                       if result.counts else "nothing ran")
    if announce:
        kept = f"results in {results}/" if args.set_commit_hash else "results not kept (no --set-commit-hash)"
        status = ("ok" if result.code == 0 else f"asv exited with {result.code}: {len(result.failed)} benchmarks "
                  f"failed ({', '.join(result.failed[:5])}{', ...' if len(result.failed) > 5 else ''}); see "
                  f"{result.log or 'above'}")
        print(result.interrupted or f"seqbench bench: {status}; wall time {result.seconds:.0f} s; {kept}"
              + (f"; asv's output: {result.log}" if result.log else ""))
    return result


def machine(args) -> str | None:
    """The asv machine results are filed under: ``--machine``, else ``SEQBENCH_MACHINE`` (the name conformance
    rows carry, so that the report joins the two), else asv's default, the host name."""
    return args.machine or os.environ.get("SEQBENCH_MACHINE") or None


def _asv_command(args, grid: str, run_config: Path, bench_patterns: list[str]) -> list[str]:
    launch = args.launch_method or ("forkserver" if hasattr(os, "fork") else "spawn")
    command = [sys.executable, "-m", "asv", "run", "--python=same", f"--config={run_config}",
               f"--launch-method={launch}"]
    if grid == "quick":
        command.append("--quick")
    if machine(args):
        command.append(f"--machine={machine(args)}")
    if args.set_commit_hash:
        command.append(f"--set-commit-hash={args.set_commit_hash}")
    if args.show_stderr:
        command.append("--show-stderr")
    for pattern in bench_patterns:
        command += ["--bench", pattern]
    return command


def _run_asv(args, grid, run_config, bench_patterns, result: Sweep, watch, offset: float, start: float) -> int:
    """One asv run; its output to the log (the bar following it) or the terminal; returns asv's exit status."""
    command = _asv_command(args, grid, run_config, bench_patterns)
    env = {**os.environ, "SEQBENCH_GRID": grid}  # the suite reads its grid from here
    with contextlib.ExitStack() as stack:
        sink = None
        if result.log:
            sink = stack.enter_context(open(result.log, "a", buffering=1))
            sink.write(f"$ SEQBENCH_GRID={grid} {shlex.join(command)}\n")
        return _stream(command, run_config.parent, env, start, sink, watch, offset, result)


def _lock_keys(selection: dict, training: bool) -> list[str]:
    """What a sweep times on: ``cpu``, and the GPUs visible to it (``gpu``, or ``gpu-<CUDA_VISIBLE_DEVICES>``
    where that names some), so sweeps on different GPUs of one machine may run side by side."""
    devices = {d for points in selection.values() for _, d, _ in points}
    keys = {"cpu"} if training or "cpu" in devices or not devices else set()
    if any(d != "cpu" for d in devices):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").replace(",", "-").strip()
        keys.add(f"gpu-{visible}" if visible else "gpu")
    return sorted(keys)


@contextlib.contextmanager
def machine_lock(args, keys=("cpu",), wait: bool = False):
    """One sweep at a time on a device of a machine (they would slow each other down): a second one is
    refused, naming the first, or with ``wait`` (a shard of a cluster sweep) waits its turn. The locks are files
    ``bench-<key>.lock`` under ``$SEQBENCH_CACHE_DIR`` (default ``~/.cache/seqbench``)."""
    root = os.environ.get("SEQBENCH_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                       Path.home() / ".cache") / "seqbench"
    Path(root).mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for key in keys:  # in sorted order, so two sweeps never each hold one the other waits for
            handle = stack.enter_context(open(Path(root) / f"bench-{key}.lock", "a+"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise BenchError(f"another benchmark sweep is running on this machine ({holder}); sweeps run one "
                                 f"at a time so that they do not slow each other down: wait for it to finish") from None
            stack.callback(fcntl.flock, handle, fcntl.LOCK_UN)
            stack.callback(handle.truncate, 0)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}: seqbench bench on {key}, started "
                         f"{time.strftime('%H:%M:%S')}, results to {args.results_dir or 'the config results_dir'}")
            handle.flush()
        yield


#: asv's line for a finished benchmark: ``[ 40.00%] ··· bench_recurrent.rnn.time_forward    ok`` (or ``2/6 failed``:
#: some of its parameter points failed)
_PROGRESS = re.compile(r"^\[\s*([\d.]+)%\]\s+·+\s+(bench_\S+)\s+(\S.*?)\s*$")


def _stream(command, cwd, env, start, sink, watch, offset: float, result: Sweep) -> int:
    """Run asv, its output to ``sink`` (a log, with the bar ``watch`` following its progress from ``offset``) or
    the terminal; count finished benchmarks by status into ``result``; return asv's exit status."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          cwd=cwd, env=env, start_new_session=True) as process:  # stopped as one group
        try:
            for line in process.stdout:
                elapsed = time.monotonic() - start
                stamped = f"{int(elapsed // 60):3d}:{int(elapsed % 60):02d} {line}" if line.startswith("[") else line
                finished = _PROGRESS.match(line)
                if finished:
                    status = "failed" if "failed" in finished.group(3) else finished.group(3)
                    result.counts[status] += 1
                    if status == "failed":
                        result.failed.append(finished.group(2))
                if sink is None:
                    print(stamped, end="", flush=True)
                    continue
                sink.write(stamped)
                if finished:
                    watch.update(offset + float(finished.group(1)), item=finished.group(2).split(".", 1)[1])
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # asv, its fork server and its benchmark processes
            raise
    return process.returncode
