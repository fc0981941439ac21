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

from seqbench import catalog, console
from seqbench.fleet import engine as cluster
from seqbench.fleet import shards
from seqbench.jobs import asv, bench, check
from seqbench.results import records as results
from seqbench.selection import KINDS, Selection, kind as kind_of


def _kind_devices(spec: dict, kind: str, all_devices) -> list[str]:
    asked = [d for d in spec["devices"] if kind_of(d) == kind]
    return asked or [d for d in all_devices if kind_of(d) == kind]


def _selection(spec: dict, kind: str, **narrowed) -> Selection:
    """The selection a worker of ``kind`` runs: the spec's, narrowed."""
    return Selection(**{"backends": tuple(spec["backends"]), "dtypes": tuple(spec["dtypes"]),
                        "ops": tuple(spec["ops"][kind]), "large": spec["large"], "quick": spec["quick"], **narrowed})


# --- benchmarks -----------------------------------------------------------------------------------------------


def bench_survey(spec: dict, kind: str) -> tuple[list, list]:
    """On a worker of ``kind``: the benchmark units that can run there, and notes on what cannot."""
    config = cluster.worker_root(spec) / "asv.conf.json"
    common = asv.suite_common(config, asv.load_config(config))
    grid = spec["grid"][kind]
    try:
        selection, notes = bench.select(common, grid,
                                        _selection(spec, kind, devices=tuple(_kind_devices(spec, kind, common.DEVICES))))
    except ValueError as error:
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
        request = bench.Request(grid=spec["grid"]["cuda" if shard.gpu else "cpu"], commit=spec["commit"],
                                results_dir=folder / "results", config=str(cluster.worker_root(spec) / "asv.conf.json"),
                                log=folder / "asv.log", title="shard", wait=True)
        start = time.monotonic()
        sweep = bench.sweep(request, points=shard.bench_points())
        status = sweep.status()
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
    from seqbench.conformance.cases import cases

    groups, notes = {}, []
    for case in cases(_selection(spec, kind, devices=tuple(_kind_devices(spec, kind, KINDS)))):
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
            sel = _selection(spec, "cpu", backends=(backend,), ops=tuple(ops), devices=tuple(devices))
            part = check.run_suite(sel, folder / "results", folder / "conformance.log",
                                   title=f"conformance {backend}", timeout=spec["timeout"])
            total.add(part)
        status = f"{total.passed} passed, {len(total.failed)} failed, {sum(total.skipped.values())} skipped"
        return cluster.returned({}, folder / "conformance.log", time.monotonic() - start, status,
                                outcome=total, machine=results.machine_name())


def gather_rows(results_dir: Path, logs: Path):
    """A ``gather`` for conformance shards: rows merged into the worker machine's file, the log written."""
    def gather(shard, returned: dict) -> list:
        outcome = returned["outcome"]
        results.save_conformance(results_dir, outcome.rows, [c for c in outcome.unchecked if check.gives_row(c)],
                                 machine=returned["machine"])
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


def spec(sel: Selection, address: str, root: Path | None, ops: list, **more) -> dict:
    """What every worker of a cluster sweep needs to know (sent to them as plain data)."""
    return {"root": str(root) if root else None, "local": address == "local", "ops": {k: list(ops) for k in KINDS},
            "backends": list(sel.backends), "devices": list(sel.devices), "dtypes": list(sel.dtypes),
            "large": sel.large, "quick": sel.quick, "threads": os.environ.get("OMP_NUM_THREADS"), **more}


def _announce(command: str, address: str, plan: list, notes: list, resources: dict) -> None:
    units = sum(len(s.units) for s in plan)
    workers = cluster.shard_counts(resources, None, timed=command == "bench")[0]
    print(f"seqbench {command} --cluster {address}: {units} units in {len(plan)} shards; estimated wall time "
          f"{console.duration(shards.wall_time(plan, workers))} (FLOP model)")
    for note in notes:
        print(f"  left out: {note}")
    print(cluster.plan_table(plan))


def bench_command(request: bench.Request, address: str, asked_shards: int | None = None,
                  insecure: bool = False) -> int:
    """``seqbench bench --cluster``: the sweep ``request`` asks for, in shards over the cluster, into one folder."""
    if request.machine:
        raise asv.BenchError("--machine names one machine; with --cluster each worker files its results under "
                             "its own name (SEQBENCH_MACHINE there, else its host name)")
    if request.training:
        raise asv.BenchError(f"--op {bench.TRAINING} trains on one machine (seqbench bench --op {bench.TRAINING}); "
                             "--cluster shards the catalog ops")
    config = asv.find_config(request.config)
    root = config.parent
    results_dir = Path(request.results_dir).resolve() if request.results_dir else asv.results_dir(config, asv.load_config(config))
    sel = request.selection
    shared = spec(sel, address, root, list(sel.ops), grid={k: request.grid for k in KINDS},
                  commit=cluster.commit(root, request.commit or "HEAD"))
    resources = cluster.connect(address, root, results_dir / "logs" / "ray.log", insecure, shared["commit"])
    try:
        shard_plan, notes = plan(bench_survey, shared, resources, asked_shards, "benchmark")
        _announce("bench", address, shard_plan, notes, resources)
        if request.dry_run:
            return 0
        gathered = cluster.run_shards(shard_plan, bench_shard, shared,
                                      cluster.gather_files(results_dir, results_dir / "logs", "asv"),
                                      "benchmarks (cluster)")
    finally:
        cluster.shutdown()
    print(cluster.plan_table(shard_plan, gathered))
    sweep = as_sweep(gathered, shard_plan, notes)
    print(gathered.interrupted or f"seqbench bench: {sweep.status()}; wall time {sweep.seconds:.0f} s; results in "
          f"{results_dir}/ (commit {shared['commit'][:8]}); logs: {results_dir / 'logs'}/asv-shard-*.log")
    return console.INTERRUPTED if gathered.interrupted else 1 if sweep.code else 0


def check_command(sel: Selection, address: str, asked_shards: int | None, results_dir: Path,
                  timeout: float | None = None, insecure: bool = False) -> int:
    """``seqbench check --cluster``: the conformance suite in shards over the cluster, rows into one folder."""
    shared = spec(sel, address, Path.cwd(), list(sel.ops), timeout=timeout)
    resources = cluster.connect(address, None, results_dir / "logs" / "ray.log", insecure)
    try:
        shard_plan, notes = plan(check_survey, shared, resources, asked_shards, "check")
        _announce("check", address, shard_plan, notes, resources)
        gathered = cluster.run_shards(shard_plan, check_shard, shared, gather_rows(results_dir, results_dir / "logs"),
                                      "conformance (cluster)")
    finally:
        cluster.shutdown()
    print(cluster.plan_table(shard_plan, gathered))
    outcome = check_outcome(shard_plan, gathered, results_dir / "logs")
    check.print_summary(outcome, results_dir)
    return console.INTERRUPTED if outcome.interrupted else 0 if outcome.ok else 1
