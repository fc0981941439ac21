"""Results on disk -> pandas: asv benchmark results and conformance rows joined in one tidy table.

Inputs, found under any number of results directories (several machines merge):

* conformance results: JSON lines ``**/*.jsonl``, one flat row per check
  (written by the conformance suite's pytest plugin; :mod:`.conformance_rows`);
* probe findings: ``**/*.probes.json`` (:mod:`.findings`);
* asv results: ``<machine>/machine.json`` beside ``<commit>-<env>.json`` files,
  with ``benchmarks.json`` in the results root (read by
  :mod:`seqbench.results.asv_files`, pivoted by :mod:`.benchmark_rows`).

A published asv dashboard among them (``results/dashboard/``) is not read
(:func:`seqbench.results.asv_files.scan`).

:data:`COLUMNS` is the tidy schema of :attr:`Results.benchmarks`: one row per
(machine, benchmark, kind of pass, parameter point), with conformance
joined in by (machine, backend, device, dtype, op), each backend's
implementation label and kernel family (its declared traits: the family is
the backend's own name unless it declares one) and the device's roofline.
``time_s`` is asv's median; ``samples`` the times asv kept (seconds; None
where it kept none) and ``ci_99_a``/``ci_99_b``/``q_25``/``q_75``/``repeat``
its statistics (:mod:`.noise` tests two rows with them); ``started_at`` when
the time benchmark started (ms since the epoch, as ``date``).
``peak_start_gflops``/``peak_end_gflops``: the device's matmul rate measured
at the start and at the end of the sweep that measured the row (NaN where a
rate is missing or the row is not of that sweep; :mod:`.plausibility`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from seqbench import catalog
from seqbench.backends import registry
from seqbench.catalog.axes import SHAPE_KEYS
from seqbench.results import asv_files, probes

from . import benchmark_rows, findings, peaks, training
from .benchmark_rows import ITEMSIZE, PASS_FLOPS, PEAK_BENCHMARK, PEAK_END_BENCHMARK, PRECISION_BENCHMARK, STATS
from .conformance_rows import devkey, load_conformance, load_unchecked, summarize_conformance

COLUMNS = [
    "machine", "device", "device_name", "backend", "family", "implementation", "op", "variant", "kind", "dtype",
    "math_mode", *SHAPE_KEYS, "time_s", "samples", *STATS, "throughput", "gflops", "roofline_fraction",
    "peak_gflops", "peak_source", "peak_start_gflops", "peak_end_gflops", "peak_memory", "peak_memory_source",
    "conformance_passed", "max_err_eps", "ratio", "conformance_reason", "versions", "commit", "date", "started_at",
    "benchmark",
]


@dataclass
class Results:
    benchmarks: pd.DataFrame  # tidy, COLUMNS (+ extra benchmark params and track_* metrics)
    conformance: pd.DataFrame  # the raw conformance rows
    checks: pd.DataFrame  # conformance per (machine, backend, device, dtype, op)
    machines: dict = field(default_factory=dict)  # asv machine.json per machine
    dashboards: list = field(default_factory=list)  # asv html/index.html found near the results
    skipped: list = field(default_factory=list)  # (file, why): unreadable, foreign or newer files, left out
    unchecked: list = field(default_factory=list)  # conformance cases a run left without a verdict, with why
    training: pd.DataFrame = field(default_factory=pd.DataFrame)  # the embedding trainers over seeds (reports/training.py)
    pipeline: pd.DataFrame = field(default_factory=pd.DataFrame)  # the trainers' host pipeline, words/s per item kind
    probes: list = field(default_factory=list)  # the probes' findings (reports/findings.py)

    @property
    def empty(self) -> bool:
        return self.benchmarks.empty and self.conformance.empty and self.training.empty and not self.probes


def load(dirs) -> Results:
    """Every result under ``dirs`` (paths; a single path is fine) as :class:`Results`."""
    dirs = [Path(d) for d in ([dirs] if isinstance(dirs, (str, Path)) else dirs)]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise ValueError(f"results directory not found: {', '.join(missing)}")
    skipped: list = []
    conformance = load_conformance(sorted({p for d in dirs for p in asv_files.scan(d, "*.jsonl")}), skipped)
    unchecked = load_unchecked(sorted({p for d in dirs for p in asv_files.scan(d, "*.unchecked.json")}), skipped)
    checks = summarize_conformance(conformance, unchecked)
    machines, raw = asv_files.read(dirs, skipped, benchmark_rows.unlisted_names())
    raw = benchmark_rows.with_shape_keys(raw)
    ours = [p for p in raw if not p["suite"].startswith((training.SUITE, PRECISION_BENCHMARK))]
    table = tidy(ours, checks, machines, dirs[0] / "conformance")
    near = [p for d in dirs for p in (d / "html" / "index.html", d.parent / "html" / "index.html")]
    dashboards = sorted({p.resolve() for p in near if p.is_file()})
    found = findings.load(sorted({p for d in dirs for p in asv_files.scan(d, "*" + probes.SUFFIX)}), skipped)
    return Results(table, conformance, checks, machines, dashboards, skipped, unchecked,
                   training.summary(training.table(raw), training.memory(raw)), training.pipeline(raw), found)


def tidy(points: list[dict], checks: pd.DataFrame, machines: dict, conformance_dir=None) -> pd.DataFrame:
    """The tidy table (:data:`COLUMNS`); a missing check names the command that makes it, into ``conformance_dir``."""
    rows = benchmark_rows.measurements(points)
    rates = benchmark_rows.peak_rates(rows)
    rows = [r for r in rows if not r["benchmark"].startswith((PEAK_BENCHMARK, PEAK_END_BENCHMARK))]
    labels = {b: implementation(b) for b in {r.get("backend") for r in rows}}
    rows = [_enrich(r, checks, machines, rates, labels, conformance_dir) for r in benchmark_rows.ran(rows)]
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame:
            frame[column] = math.nan
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def implementation(backend) -> str:
    """What ``backend`` runs, as its class declares it (:class:`~seqbench.backends.protocol.Traits`), else its name."""
    return (registry.traits(backend).implementation if isinstance(backend, str) else "") or backend


def _enrich(row: dict, checks: pd.DataFrame, machines: dict, rates: dict, labels: dict,
            conformance_dir=None) -> dict:
    row["op"] = benchmark_rows.op_of(row)
    entry = catalog.ops().get(row["op"])
    backend, dtype, device = row.get("backend"), row.get("dtype"), str(row.get("device", "cpu"))
    row["device"] = device
    row["implementation"] = row.get("implementation") or labels[backend]
    row["family"] = (registry.traits(backend).family if isinstance(backend, str) else "") or backend
    row["variant"] = entry.variant if entry else None
    check = _check(checks, row["machine"], backend, device, dtype, row["op"])
    row["conformance_passed"] = check.get("conformance_passed")  # None: never checked
    row["max_err_eps"] = check.get("max_err_eps", math.nan)
    row["ratio"] = check.get("ratio", math.nan)
    row["conformance_reason"] = check.get("conformance_reason") or (
        "" if check else f"no conformance results for {row['op']} on {backend}/{device}/{dtype} (make them: "
                         f"seqbench check --op {row['op']} --backend {backend} --device {device} --dtype {dtype}"
                         + (f" --results-dir {conformance_dir})" if conformance_dir else ")"))
    row["math_mode"] = row.get("math_mode") or check.get("math_mode")
    row["versions"] = check.get("versions")
    row["device_name"] = _device_name(checks, machines, row["machine"], device)
    shape = benchmark_rows.shape_of(entry, row)
    peak_mem = row.get("peak_device_memory", math.nan)
    use_device = isinstance(peak_mem, float) and not math.isnan(peak_mem)
    row["peak_memory"] = peak_mem if use_device else row.get("peak_host_memory", math.nan)
    row["peak_memory_source"] = "device" if use_device else ("host" if not math.isnan(row["peak_memory"]) else None)
    time_s = row.get("time_s", math.nan)
    flops = nbytes = row["throughput"] = row["gflops"] = math.nan
    if shape is not None and time_s > 0:
        row["throughput"] = entry.tokens(shape) / time_s
        flops = entry.flops(shape) * PASS_FLOPS.get(row["kind"], math.nan)
        nbytes = entry.bytes(shape, ITEMSIZE.get(dtype, 4))
        row["gflops"] = flops / time_s / 1e9 if flops > 0 else math.nan
    info = machines.get(row["machine"], {})
    rate = rates.get((row["machine"], device, dtype), {})
    start, end = (rate[w]["track_gflops"] if w in rate else math.nan for w in ("start", "end"))
    row["peak_start_gflops"], row["peak_end_gflops"] = (start, end) if _in_sweep(row, rate) else (math.nan,) * 2
    measured = max((v for v in (start, end) if v == v), default=None)  # the device's best rate: its ceiling
    peak_flops, peak_bw, row["peak_source"] = peaks.peak(device, row["device_name"], dtype, row["math_mode"],
                                                         info.get("num_cpu"), info.get("arch"), measured)
    row["peak_gflops"] = peak_flops
    row["roofline_fraction"] = peaks.roofline_fraction(row["gflops"], flops, nbytes, peak_flops, peak_bw)
    return row


def _in_sweep(row: dict, rate: dict) -> bool:
    """Whether ``row`` was measured between the start and the end matmul rates ``rate`` holds (True where a start
    time is unknown: asv wrote none)."""
    times = [row.get("started_at"), *(rate[w].get("started_at") for w in ("start", "end") if w in rate)]
    if len(times) < 3 or not all(times):
        return True
    return times[1] <= times[0] <= times[2]


def _check(checks: pd.DataFrame, machine, backend, device, dtype, op) -> dict:
    """Conformance of a (backend, device, dtype, op): this machine's checks, else any machine's, with a note."""
    if checks.empty:
        return {}
    same = checks[(checks["backend"] == backend) & (checks["devkey"] == devkey(device))
                  & (checks["dtype"] == dtype) & (checks["op"] == op)]
    here = same[same["machine"] == machine]
    if len(here):
        return here.iloc[0].to_dict()
    if not len(same):
        return {}
    failed = same[~same["conformance_passed"].astype(bool)]
    picked = (failed if len(failed) else same).iloc[0].to_dict()
    picked["conformance_reason"] = (picked["conformance_reason"] + " " if picked["conformance_reason"] else "") + \
        f"(checked on machine {picked['machine']!r})"
    picked["conformance_passed"] = not len(failed)
    return picked


def _device_name(checks, machines, machine, device):
    if not checks.empty:
        same = checks[(checks["machine"] == machine) & (checks["devkey"] == devkey(device))]
        names = same["device_name"].dropna()
        if len(names):
            return names.iloc[0]
    # else the machine record: its CPU, or the GPUs `seqbench bench` found there (nvidia-smi's names)
    return machines.get(machine, {}).get("cpu" if devkey(device) == "cpu" else "gpu")

