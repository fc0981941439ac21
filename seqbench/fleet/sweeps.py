"""The benchmark and conformance sweeps over a Ray cluster (``--cluster``): their surveys, their shards' work,
and what gathers them (see :mod:`seqbench.fleet.engine` for the engine's side).

A benchmark unit is one (op, backend, device, dtype) over the grid's shapes; a
shard runs ``seqbench bench``'s sweep with exactly its units as the selection.
A conformance unit is one (op, backend, device group); a shard runs the
conformance suite once per (backend, devices) it holds, narrowed to its ops.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from seqbench.jobs import bench, check
from seqbench import catalog, console
from seqbench.fleet import engine as cluster, shards
from seqbench.results import records as results

KINDS = ("cpu", "cuda")


def _kind_devices(spec: dict, kind: str, all_devices) -> list[str]:
    asked = [d for d in spec["devices"] if (d == "cpu") == (kind == "cpu")]
    return asked or [d for d in all_devices if (d == "cpu") == (kind == "cpu")]


# --- benchmarks -----------------------------------------------------------------------------------------------


def bench_survey(spec: dict, kind: str) -> tuple[list, list]:
    """On a worker of ``kind``: the benchmark units that can run there, and notes on what cannot."""
    config = cluster.worker_root(spec) / "asv.conf.json"
    common = bench.suite_common(config, bench._load_config(config))
    grid = spec["grid"][kind]
    try:
        selection, notes = bench.select(common, grid, spec["ops"][kind], spec["backends"],
                                        _kind_devices(spec, kind, common.DEVICES), spec["dtypes"])
    except (bench.BenchError, ValueError) as error:
        return [], [f"{kind} workers: {error}"]
    units = []
    for name, points in selection.items():
        op = catalog.get(name)
        at = bench.shapes(common, grid, op)
        units += [shards.bench_unit(op, b, d, t, at, bench.methods(common, grid, d)) for b, d, t in points]
    return units, [f"{kind} workers: {note}" for note in notes]


def bench_shard(spec: dict, shard: shards.Shard) -> dict:
    """On a worker: ``seqbench bench`` over the shard's units; returns the asv result files and the log."""
    with cluster.scratch(spec) as folder:
        folder = Path(folder)
        args = cluster.bench_args(spec, folder)
        args.grid = spec["grid"]["cuda" if shard.gpu else "cpu"]
        start = time.monotonic()
        sweep = bench.sweep(args, points=shard.bench_points())
        status = ", ".join(f"{n} {s}" for s, n in sweep.counts.items()) or "nothing ran"
        waited = time.monotonic() - start - sweep.seconds
        status += (f"; asv exited with {sweep.code}" if sweep.code else "") + (
            f"; waited {waited:.0f} s for the machine's other sweeps" if waited >= 1 else "")
        return cluster.returned(cluster.files_under(folder / "results"), folder / "asv.log", sweep.seconds, status,
                                counts=dict(sweep.counts), failed=sweep.failed, code=sweep.code)


def plan(survey, spec: dict, resources: dict, asked_shards: int | None, what: str) -> tuple[list, list]:
    """``(shards, notes)``: the units ``survey`` finds on the cluster's workers, dealt into shards."""
    units, notes = cluster.survey(survey, spec, gpu_too=resources.get("GPU", 0) > 0)
    if not units:
        raise ValueError(f"nothing to {what} on the cluster: " + ("; ".join(notes) or "no unit can run there"))
    return shards.deal(units, *cluster.shard_counts(resources, asked_shards, timed=survey is bench_survey)), notes


def as_sweep(gathered: cluster.Gathered, plan: list, notes: list) -> bench.Sweep:
    """The cluster sweep as one :class:`bench.Sweep` (for the main job's summary)."""
    done = gathered.done.values()
    sweep = bench.Sweep("cluster", sum(len(s.units) for s in plan), notes,
                        code=max([d.get("code", 0) for d in done] + [1 if gathered.failed else 0]),
                        counts=cluster.counts(gathered, "counts"), seconds=gathered.seconds,
                        interrupted=gathered.interrupted)
    sweep.failed = [name for d in done for name in d.get("failed", [])] + [
        f"{plan[i].name}: {why}" for i, why in gathered.failed.items()]
    sweep.log = gathered.logs[0].parent if gathered.logs else None
    return sweep


# --- conformance ----------------------------------------------------------------------------------------------


def check_survey(spec: dict, kind: str) -> tuple[list, list]:
    """On a worker of ``kind``: the conformance units there (one per op, backend and device group, costed by
    its cases), and notes on what cannot run there (an unavailable backend or device)."""
    from seqbench.conformance.cases import DEVICE_KINDS, Selection, cases

    devices = _kind_devices(spec, kind, DEVICE_KINDS)
    sel = Selection(backends=tuple(spec["backends"]), devices=tuple(devices), dtypes=tuple(spec["dtypes"]),
                    ops=tuple(spec["ops"][kind]), large=spec["large"], quick=spec["quick"])
    groups, notes = {}, []
    for case in cases(sel):
        if case.op is None:
            notes.append(f"{kind} workers: {case.skip}")
            continue
        group = groups.setdefault((case.op.name, case.backend), {"devices": set(), "shapes": []})
        group["devices"].add(case.device)
        group["shapes"].append(case.shape)
    units = [shards.check_unit(catalog.get(op), backend, tuple(sorted(g["devices"])), g["shapes"])
             for (op, backend), g in groups.items()]
    return units, notes


def check_shard(spec: dict, shard: shards.Shard) -> dict:
    """On a worker: the conformance suite over the shard's units; returns the result rows and the log."""
    with cluster.scratch(spec) as folder:
        folder = Path(folder)
        start, total = time.monotonic(), check.Outcome()
        for (backend, devices), ops in shard.check_groups().items():
            options = [f"--seqbench-backend={backend}", f"--seqbench-op={','.join(ops)}",
                       *(f"--seqbench-device={d}" for d in devices), *spec["options"]]
            part = check.run_suite(options, folder / "results", folder / "conformance.log",
                                   title=f"conformance {backend}", timeout=spec["timeout"])
            total.add(part)
        status = f"{total.passed} passed, {len(total.failed)} failed, {sum(total.skipped.values())} skipped"
        return cluster.returned({}, folder / "conformance.log", time.monotonic() - start, status,
                                outcome=total, machine=results.machine_name())


def gather_rows(results_dir: Path, logs: Path):
    """A ``gather`` for conformance shards: rows merged into the worker machine's file, the log written."""
    def gather(shard, returned: dict) -> list:
        results.save_conformance(results_dir, returned["outcome"].rows, machine=returned["machine"])
        return cluster.write_log(logs, "conformance", shard, returned)
    return gather


def check_outcome(plan: list, gathered: cluster.Gathered, logs: Path) -> check.Outcome:
    """The shards' outcomes as one; a failed shard's units fail, with the reason."""
    outcome = check.Outcome(log=logs, interrupted=gathered.interrupted)
    for done in gathered.done.values():
        outcome.add(done["outcome"])
    outcome.failed += [(", ".join(map(str, plan[i].units)), f"its shard failed: {why}")
                       for i, why in gathered.failed.items()]
    return outcome


# --- the commands ---------------------------------------------------------------------------------------------


def _values(option) -> list[str]:
    return [v.strip() for item in option or [] for v in item.split(",") if v.strip()]


def _spec(args, root: Path | None, ops: list, **more) -> dict:
    return {"root": str(root) if root else None, "local": args.cluster == "local", "ops": {k: ops for k in KINDS},
            "backends": _values(args.backend), "devices": _values(args.device), "dtypes": _values(args.dtype),
            "threads": os.environ.get("OMP_NUM_THREADS"), **more}


def _announce(command: str, address: str, plan: list, notes: list, resources: dict) -> None:
    units = sum(len(s.units) for s in plan)
    workers = cluster.shard_counts(resources, None, timed=command == "bench")[0]
    print(f"seqbench {command} --cluster {address}: {units} units in {len(plan)} shards; estimated wall time "
          f"{console.duration(shards.wall_time(plan, workers))} (FLOP model)")
    for note in notes:
        print(f"  left out: {note}")
    print(cluster.plan_table(plan))


def bench_command(args) -> int:
    """``seqbench bench --cluster``: the sweep ``args`` selects, in shards over the cluster, into one folder."""
    if args.machine:
        raise bench.BenchError("--machine names one machine; with --cluster each worker files its results under "
                               "its own name (SEQBENCH_MACHINE there, else its host name)")
    if bench.TRAINING in _values(args.op):
        raise bench.BenchError(f"--op {bench.TRAINING} trains on one machine (seqbench bench --op {bench.TRAINING}); "
                               "--cluster shards the catalog ops")
    config = bench.find_config(args.config)
    root = config.parent
    results_dir = Path(args.results_dir or root / bench._load_config(config).get("results_dir", "results")).resolve()
    grid = args.grid or "quick"
    spec = _spec(args, root, _values(args.op), grid={k: grid for k in KINDS},
                 commit=cluster.commit(root, args.set_commit_hash or "HEAD"))
    resources = cluster.connect(args.cluster, root, results_dir / "logs" / "ray.log")
    try:
        shard_plan, notes = plan(bench_survey, spec, resources, args.shards, "benchmark")
        _announce("bench", args.cluster, shard_plan, notes, resources)
        if args.dry_run:
            return 0
        gathered = cluster.run_shards(shard_plan, bench_shard, spec,
                                      cluster.gather_files(results_dir, results_dir / "logs", "asv"),
                                      "benchmarks (cluster)")
    finally:
        cluster.shutdown()
    print(cluster.plan_table(shard_plan, gathered))
    sweep = as_sweep(gathered, shard_plan, notes)
    status = ", ".join(f"{n} {s}" for s, n in sweep.counts.items()) or "nothing ran"
    print(gathered.interrupted or f"seqbench bench: {status}; wall time {sweep.seconds:.0f} s; results in "
          f"{results_dir}/ (commit {spec['commit'][:8]}); logs: {results_dir / 'logs'}/asv-shard-*.log")
    return console.INTERRUPTED if gathered.interrupted else 1 if sweep.code else 0


def check_command(args, options: list) -> int:
    """``seqbench check --cluster``: the conformance suite in shards over the cluster, rows into one folder."""
    from seqbench.conformance.cases import Selection, check_selection

    check_selection(Selection(devices=tuple(_values(args.device)), dtypes=tuple(_values(args.dtype))))
    results_dir = Path(args.results_dir).resolve()
    spec = _spec(args, Path.cwd(), _values(args.op), options=options, timeout=args.timeout, large=args.large,
                 quick=False)
    resources = cluster.connect(args.cluster, None, results_dir / "logs" / "ray.log")
    try:
        shard_plan, notes = plan(check_survey, spec, resources, args.shards, "check")
        _announce("check", args.cluster, shard_plan, notes, resources)
        gathered = cluster.run_shards(shard_plan, check_shard, spec, gather_rows(results_dir, results_dir / "logs"),
                                      "conformance (cluster)")
    finally:
        cluster.shutdown()
    print(cluster.plan_table(shard_plan, gathered))
    outcome = check_outcome(shard_plan, gathered, results_dir / "logs")
    check.print_summary(outcome, results_dir)
    return console.INTERRUPTED if outcome.interrupted else 0 if outcome.ok else 1
