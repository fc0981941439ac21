"""``seqbench run``: the main job. On every device here: conformance, then benchmarks; then the report.

Devices: ``cpu``, and where a CUDA GPU is visible ``cuda`` and ``cuda:tf32``
(``--device`` narrows). Per device group the conformance suite runs first
(the recurrent cells, every dtype a backend offers), then the benchmarks of
the same backends: the quick grid on the CPU, the ``gpu`` grid (an LSTM over
the shapes where the backends trade places) on a GPU. The console shows one
progress bar per phase and ends with a short summary; pytest's and asv's own
output go to log files under ``<out>/logs/``, named at the end.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from seqbench import console
from seqbench.backends import registry
from seqbench.jobs import bench, check
from seqbench.selection import DEVICES, NAMED, Selection, kind, require_here

#: what the main job checks, and benchmarks on the CPU, when no --op is given: the notes' cells
RUN_OPS = ("rnn", "lstm", "gru", "gru_reset_after")
#: what it benchmarks on a GPU (the gpu grid has 12 shapes in three dtypes: one op fits a short session)
GPU_BENCH_OPS = ("lstm",)
#: the grid each device kind benchmarks on (each device kind is checked, then benchmarked, as one phase)
GRID = {"cpu": "quick", "cuda": "gpu"}


def plan(sel: Selection) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """``(backends, {device kind: devices}, notes)``: what runs where, and the lines that say what does not.
    A backend whose traits leave it out of the main job runs only when ``--backend`` names it."""
    statuses = {s.name: s for s in registry.backends()}
    asked = sel.backends
    notes, backends = [], []
    for name, status in sorted(statuses.items()):
        if asked and name not in asked:
            continue
        if not status.available:
            notes.append(f"{name}: unavailable ({status.reason.removeprefix(name + ': ')})")
        elif not asked and registry.traits(name).left_out_of_main_job:
            notes.append(f"{name}: left out ({registry.traits(name).left_out_of_main_job})")
        else:
            backends.append(name)
    if asked and not backends:
        raise ValueError(f"none of --backend {', '.join(asked)} can run here: " + "; ".join(notes))
    here = {d for name in backends for d in statuses[name].devices}
    wanted = sel.devices
    groups = {}
    for group, members in DEVICES.items():
        devices = [d for d in members if d in here and (not wanted or d in wanted or d.split(":")[0] in wanted)]
        if devices:
            groups[group] = devices
    require_here(wanted, {d for d in here if d in NAMED})  # (the main job runs the named devices only)
    if "cuda" not in groups and not wanted:
        notes.append("no CUDA GPU here: conformance and benchmarks run on the CPU only")
    return backends, groups, notes


def main(sel: Selection, out: Path, exitfirst: bool = False, timeout: float | None = None) -> int:
    """The main job for ``sel`` (``quick`` is set here), everything under ``out``; the exit status: 0 all went
    well, 1 a check or a benchmark failed or a phase could not run."""
    out = Path(out).resolve()
    results, logs = out / "results", out / "logs"
    backends, groups, notes = plan(sel)
    ops = list(sel.ops or RUN_OPS)
    print(f"seqbench run: {', '.join(backends)} on {', '.join(d for ds in groups.values() for d in ds)} -> {out}/")
    for note in notes:
        print(f"  {note}")
    started, timings, outcomes, sweeps = time.monotonic(), {}, {}, {}
    for group, devices in groups.items():
        t0 = time.monotonic()
        checked = replace(sel, backends=tuple(backends), ops=tuple(ops), devices=tuple(devices), quick=True)
        outcomes[group] = check.run_suite(checked, results / "conformance", logs / f"conformance-{group}.log",
                                          title=f"conformance {group}", exitfirst=exitfirst, timeout=timeout)
        timings[f"conformance {group}"] = time.monotonic() - t0
        if outcomes[group].interrupted:
            return _stopped(outcomes[group].interrupted, results)
        t0 = time.monotonic()
        sweeps[group] = _benchmarks(group, replace(checked, dtypes=()), results, logs)
        timings[f"benchmarks {group}"] = time.monotonic() - t0
        if sweeps[group] and sweeps[group].interrupted:
            return _stopped(sweeps[group].interrupted, results)

    return _report(out, groups, outcomes, sweeps, timings, started)


def _report(out: Path, groups, outcomes, sweeps, timings, started) -> int:
    """Write the report, print the summary; the exit status: 1 when a check or a benchmark failed."""
    results = out / "results"
    t0 = time.monotonic()
    with console.phase("report", total=1) as bar:
        from .reports import write_report

        try:
            page = write_report([str(results)], str(out / "report"))
            bar.done("written")
        except ValueError as error:  # nothing to report: the summary says what ran
            page = None
            bar.done(f"not written: {error}")
    timings["report"] = time.monotonic() - t0
    timings["total"] = time.monotonic() - started
    print(summary(groups, outcomes, sweeps, results, page, timings))
    failed = (any(not o.ok for o in outcomes.values()) or any(s is None or s.code for s in sweeps.values())
              or page is None)
    return 1 if failed else 0


def on_cluster(sel: Selection, out: Path, address: str, shards: int | None = None,
               timeout: float | None = None, insecure: bool = False) -> int:
    """The main job over a Ray cluster (``--cluster``): the checks of every device the workers have in shards,
    then the benchmarks in shards (the quick grid on CPU workers, the gpu grid on GPU workers), gathered into
    ``<out>/results``; then the report and the summary here."""
    from seqbench.fleet import engine as cluster
    from seqbench.fleet import sweeps

    out = Path(out).resolve()
    results, logs = out / "results", out / "logs"
    if not sel.backends:
        sel = replace(sel, backends=tuple(n for n in registry.names() if not registry.traits(n).left_out_of_main_job))
    ops = list(sel.ops or RUN_OPS)
    root = bench.asv.find_config(None).parent
    check_spec = sweeps.spec(sel, address, None, ops, timeout=timeout, quick=True)
    bench_spec = sweeps.spec(sel, address, root, ops, grid=GRID, commit=cluster.commit(root))
    bench_spec["ops"]["cuda"] = list(bench_ops("cuda", ops))
    started, timings = time.monotonic(), {}
    resources = cluster.connect(address, root, logs / "ray.log", insecure, bench_spec["commit"])
    print(f"seqbench run --cluster {address}: {int(resources.get('CPU', 0))} CPUs, "
          f"{int(resources.get('GPU', 0))} GPUs -> {out}/")
    try:
        plan_, notes = sweeps.plan(sweeps.check_survey, check_spec, resources, shards, "check")
        for note in notes:
            print(f"  {note}")
        gathered = cluster.run_shards(plan_, sweeps.check_shard, check_spec,
                                      sweeps.gather_rows(results / "conformance", logs), "conformance (cluster)")
        outcome = sweeps.check_outcome(plan_, gathered, logs)
        timings["conformance"] = gathered.seconds
        if outcome.interrupted:
            return _stopped(outcome.interrupted, results)
        plan_, notes = sweeps.plan(sweeps.bench_survey, bench_spec, resources, shards, "benchmark")
        gathered = cluster.run_shards(plan_, sweeps.bench_shard, bench_spec, cluster.gather_files(results, logs, "asv"),
                                      "benchmarks (cluster)")
        sweep = sweeps.as_sweep(gathered, plan_, notes)
        timings["benchmarks"] = gathered.seconds
        if sweep.interrupted:
            return _stopped(sweep.interrupted, results)
    finally:
        cluster.shutdown()
    devices = sorted({r["device"] for r in outcome.rows}, key=lambda d: (d != "cpu", d))
    return _report(out, {k: [d for d in devices if kind(d) == k] for k in DEVICES},
                   {"cluster": outcome}, {"cluster": sweep}, timings, started)


def _stopped(where: str, results: Path) -> int:
    """An interrupted main job: what was done is kept; say where it stopped and how to go on."""
    print(f"seqbench run: {where}\nResults so far: {results}/ (seqbench report {results} reads them); "
          f"run seqbench run again to complete them")
    return console.INTERRUPTED


def bench_ops(group: str, ops) -> tuple:
    """The ops the main job benchmarks on a device kind: all it checks on the CPU, the gpu grid's on a GPU."""
    return tuple(ops) if group == "cpu" else tuple(o for o in ops if o in GPU_BENCH_OPS) or GPU_BENCH_OPS


def _benchmarks(group: str, sel: Selection, results: Path, logs: Path) -> bench.Sweep | None:
    request = bench.Request(replace(sel, ops=bench_ops(group, sel.ops)), grid=GRID[group], commit="HEAD",
                            results_dir=results, log=logs / f"asv-{group}.log", title=f"benchmarks {group}")
    try:
        return bench.sweep(request)
    except bench.BenchError as error:  # nothing of this group can be benchmarked: say so, go on (exit 1)
        print(f"benchmarks {group}: not run ({error})")
        return None


def summary(groups, outcomes, sweeps, results, page, timings) -> str:
    """The end of the run: verdicts per backend and device, the recommendations, where everything is."""
    devices = [d for ds in groups.values() for d in ds]
    rows = [r for o in outcomes.values() for r in o.rows]
    lines = ["", "Conformance: checks passed of run per device, worst error over a faithful implementation's (x)",
             check.by_backend(rows, devices)]
    for outcome in outcomes.values():
        lines += check.problems(outcome, limit=4)
    for group, sweep in sweeps.items():
        if sweep is None:
            lines.append(f"benchmarks {group}: not run (see above)")
        elif sweep.failed:
            lines.append(f"benchmarks {group}: {len(sweep.failed)} failed ({', '.join(sweep.failed[:4])}"
                         f"{', ...' if len(sweep.failed) > 4 else ''}); see {sweep.log}")
    lines += ["", *recommendations(results)]
    logs = list(dict.fromkeys([str(o.log) for o in outcomes.values()] + [str(s.log) for s in sweeps.values()
                                                                           if s and s.log]))
    lines += ["", f"Report: {page}  (Markdown: {page.with_suffix('.md')})" if page else "Report: not written",
              f"Results: {results}/",
              f"Logs: {', '.join(logs)}",
              "Wall time: " + ", ".join(f"{k} {console.duration(v)}" for k, v in timings.items())]
    return "\n".join(lines)


def recommendations(results: Path, limit: int = 24) -> list[str]:
    """The fastest conforming backend for the main workloads: per device, op and pass, float32, at the
    smallest and the largest measured shape: the kernel family and path, the verdict, the time, the winner's worst
    error, the runner-up family and the speed-up; then, over those workloads, the backends dropped and the
    device's other math modes, each with its speed against the winner, its error and the rule it failed."""
    from .reports import beside, load, select

    table = load.load([results]).benchmarks
    recs = select.recommendations(table)
    if recs.empty:
        return ["Recommendations: no benchmark results"]
    recs = recs[recs["dtype"] == "float32"]
    keys = select.shape_keys(table)
    picked = []
    for _, group in recs.groupby(["device", "op", "kind"], sort=True):
        size = group[keys].fillna(1).prod(axis=1)
        picked += list(dict.fromkeys([size.idxmin(), size.idxmax()]))
    picked = recs.loc[picked[:limit]]
    body = []
    for _, r in picked.iterrows():
        shape = " ".join(f"{k}={int(r[k])}" for k in keys if r[k] == r[k])
        time_s = f"{r['time_s'] * 1e3:.3g} ms" if r["time_s"] == r["time_s"] else "-"
        faster = f"x{r['speedup']:.2f} over {beside.path(r['runner_up_family'], r['runner_up'])}" \
            if isinstance(r["runner_up"], str) else "-"
        error = beside.error(r["max_err_eps"], r["ratio"]) if isinstance(r["winner"], str) else "-"
        body.append([r["device"], r["op"], r["kind"], shape, beside.path(r["family"], r["winner"], r["paths"])
                     if isinstance(r["winner"], str) else "none conforms", beside.verdict(r), time_s, error, faster])
    more = [f"... {len(recs) - len(picked)} more workloads in the report"] if len(recs) > len(picked) else []
    lines = ["Fastest conforming backend (float32; smallest and largest measured shape):",
             console.table(body, ["device", "op", "pass", "shape", "fastest", "verdict", "time", "worst error",
                                  "speed-up"]), *more]
    for column, title in (("other_detail", "Other math modes"), ("dropped_detail", "Dropped")):
        found = beside.details(picked, column)
        for (device, backend), group in found.groupby(["device", "backend"], sort=True):
            ops = ", ".join(sorted(set(group["op"])))
            lines.append(f"{title}: {beside.summed(group, with_device=True)} ({ops}; "
                         f"{len(group)} of the workloads above)")
    return lines
