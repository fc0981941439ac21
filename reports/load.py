"""Results on disk -> pandas: asv benchmark results and conformance rows in one tidy table.

Inputs, found under any number of results directories (several machines merge):

* conformance results: JSON lines ``**/*.jsonl``, one flat row per check
  (written by the conformance suite's pytest plugin);
* asv results: ``<machine>/machine.json`` beside ``<commit>-<env>.json``
  files in asv's results format (API version 2: ``result_columns`` and per
  benchmark ``[result, params, ...]``, one value per point of the
  parameter product), with the benchmarks' ``param_names`` read from
  ``benchmarks.json`` in the results root.

:data:`COLUMNS` is the tidy schema of :attr:`Results.benchmarks`: one row per
(machine, benchmark, kind of pass, parameter point), with conformance
joined in by (machine, backend, device, dtype, op).
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from seqbench import catalog
from seqbench.results import records as results

from . import peaks, training

# asv parameter names -> the catalog's shape keys (benchmarks use readable names).
PARAM_ALIASES = {
    "seq_len": "T", "seq_length": "T", "length": "T", "steps": "T",
    "hidden": "H", "hidden_size": "H",
    "batch": "B", "batch_size": "B",
    "input": "I", "input_size": "I",
    "layers": "L", "num_layers": "L",
    "vocab": "V", "vocab_size": "V",
    "dim": "d", "embedding_dim": "d",
    "negatives": "K", "words": "N", "corpus": "N", "window": "c",
}
SHAPE_KEYS = ("T", "H", "B", "I", "L", "V", "d", "K", "N", "c")
#: Used when a results tree has no benchmarks.json: the recurrent suites' parameters.
DEFAULT_PARAM_NAMES = ("backend", "device", "dtype", "seq_len", "hidden", "batch")

#: What each shipped backend runs; a third-party backend shows its own name.
IMPLEMENTATIONS = {
    "numpy": "NumPy reference",
    "torch": "custom cells, eager",
    "torch-compile": "custom cells, torch.compile",
    "torch-native": "nn.RNN/LSTM/GRU (cuDNN on GPU)",
    "jax": "jit + lax.scan",
    "cupy": "raw CUDA kernels",
}

#: FLOPs of a pass relative to the catalog's forward model. A backward pass is
#: taken as twice the forward (the usual estimate: two matmuls per forward one).
PASS_FLOPS = {"forward": 1.0, "vjp": 2.0, "backward": 2.0, "forward_backward": 3.0, "train": 3.0}
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}

COLUMNS = [
    "machine", "device", "device_name", "backend", "implementation", "op", "variant", "kind", "dtype",
    "math_mode", *SHAPE_KEYS, "time_s", "throughput", "gflops", "roofline_fraction", "peak_gflops",
    "peak_source", "peak_memory", "peak_memory_source", "conformance_passed", "max_err_eps", "ratio",
    "conformance_reason", "versions", "commit", "date", "benchmark",
]
_CHECK_KEYS = ["machine", "backend", "devkey", "dtype", "op"]


@dataclass
class Results:
    benchmarks: pd.DataFrame  # tidy, COLUMNS (+ extra benchmark params and track_* metrics)
    conformance: pd.DataFrame  # the raw conformance rows
    checks: pd.DataFrame  # conformance per (machine, backend, device, dtype, op)
    machines: dict = field(default_factory=dict)  # asv machine.json per machine
    dashboards: list = field(default_factory=list)  # asv html/index.html found near the results
    skipped: list = field(default_factory=list)  # (file, why): unreadable, foreign or newer files, left out
    unchecked: list = field(default_factory=list)  # conformance cases an interrupted run did not reach
    training: pd.DataFrame = field(default_factory=pd.DataFrame)  # the embedding trainers' runs (reports/training.py)

    @property
    def empty(self) -> bool:
        return self.benchmarks.empty and self.conformance.empty and self.training.empty


def load(dirs) -> Results:
    """Every result under ``dirs`` (paths; a single path is fine) as :class:`Results`."""
    dirs = [Path(d) for d in ([dirs] if isinstance(dirs, (str, Path)) else dirs)]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise ValueError(f"results directory not found: {', '.join(missing)}")
    skipped: list = []
    conformance = load_conformance(sorted({p for d in dirs for p in d.rglob("*.jsonl")}), skipped)
    unchecked = load_unchecked(sorted({p for d in dirs for p in d.rglob("*.unchecked.json")}), skipped)
    checks = summarize_conformance(conformance, unchecked)
    machine_dirs = sorted({p.parent for d in dirs for p in d.rglob("machine.json")})
    machines, raw = {}, []
    for mdir in machine_dirs:
        try:
            info = json.loads((mdir / "machine.json").read_text())
            if not isinstance(info, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            skipped.append((mdir / "machine.json", f"not an asv machine file ({error}): its folder is left out"))
            continue
        machines[info.get("machine", mdir.name)] = info
        raw.extend(asv_points(mdir, skipped))
    table = tidy([p for p in raw if not p["suite"].startswith(training.SUITE)], checks, machines,
                 dirs[0] / "conformance")
    near = [p for d in dirs for p in (d / "html" / "index.html", d.parent / "html" / "index.html")]
    dashboards = sorted({p.resolve() for p in near if p.is_file()})
    return Results(table, conformance, checks, machines, dashboards, skipped, unchecked, training.table(raw))


# --- conformance --------------------------------------------------------------------------

NEEDED = ("machine", "backend", "device", "dtype", "op", "kind", "passed", "max_err_eps")


def load_conformance(paths, skipped: list | None = None) -> pd.DataFrame:
    """The conformance rows of ``paths``; a file that is not readable JSON lines, holds no seqbench rows, or
    was written by a newer seqbench is left out with the reason appended to ``skipped``."""
    skipped = [] if skipped is None else skipped
    rows = []
    for path in paths:
        try:
            found = results.read_jsonl(path)
        except (OSError, ValueError) as error:
            skipped.append((path, f"not JSON lines ({error})"))
            continue
        newer = [r for r in found if isinstance(r, dict) and isinstance(r.get("schema"), int)
                 and r["schema"] > results.SCHEMA]
        if newer:
            skipped.append((path, f"written by a newer seqbench (row format {max(r['schema'] for r in newer)}; "
                                  f"this one reads up to {results.SCHEMA}): upgrade seqbench to read it"))
            continue
        ours = [r for r in found if isinstance(r, dict) and set(NEEDED) <= r.keys()]
        if found and not ours:
            skipped.append((path, f"not seqbench conformance results (no row has the keys {', '.join(NEEDED)})"))
        rows += ours
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["machine", "backend", "device", "dtype", "op", "kind", "passed", "max_err_eps"])
    if "test_id" in frame and "time" in frame:  # the same check in two results trees: keep the latest
        frame = frame.sort_values("time").drop_duplicates(["machine", "test_id"], keep="last")
    frame["passed"] = frame["passed"].astype(bool)
    frame["devkey"] = frame["device"].map(_devkey)
    return frame


def load_unchecked(paths, skipped: list) -> list[dict]:
    """The cases interrupted conformance runs did not reach (``<machine>.unchecked.json``)."""
    cases = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
            found = [dict(c, machine=c.get("machine") or Path(path).name.removesuffix(".unchecked.json"))
                     for c in data["cases"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            skipped.append((path, f"not a list of unchecked cases ({type(error).__name__}: {error})"))
            continue
        cases += found
    return cases


def summarize_conformance(conformance: pd.DataFrame, unchecked: list = ()) -> pd.DataFrame:
    """One row per (machine, backend, device, dtype, op): passed only if every check passed, and none of its
    cases is listed as not reached by an interrupted run (``unchecked``)."""
    missing = {}
    for case in unchecked:
        if case.get("kind") in ("forward", "vjp"):
            key = (case["machine"], case["backend"], _devkey(case["device"]), case["dtype"], case["op"])
            missing[key] = missing.get(key, 0) + 1
    rows = []
    if conformance.empty:
        return pd.DataFrame(columns=_CHECK_KEYS + ["conformance_passed", "checks", "failed", "max_err_eps", "ratio",
                                                   "conformance_reason", "device_name", "math_mode", "versions"])
    for key, group in conformance.groupby(_CHECK_KEYS, dropna=False):
        failed = group[~group["passed"]]
        reason = ""
        faults = failed[failed["fault"].notna()] if "fault" in failed else failed.iloc[:0]
        if len(faults):
            worst = faults.iloc[0]
            reason = (f"fails conformance: {len(failed)} of {len(group)} checks; {worst['kind']} at "
                      f"{worst.get('shape', '?')}: {worst['fault']} [{worst.get('test_id', '')}]")
        elif len(failed):
            err = failed["err_eps"] if "err_eps" in failed else failed["max_err_eps"]  # rows before the calibrated model
            worst = failed.loc[(err / failed["budget_eps"]).idxmax()]
            faithful = (f", {worst['ratio']:.3g}x a faithful implementation's error"
                        if pd.notna(worst.get("ratio")) else "")
            reason = (f"fails conformance: {len(failed)} of {len(group)} checks; worst: {worst['kind']} at "
                      f"{worst.get('shape', '?')}, {worst.get('worst', '?')!r} is "
                      f"{err[worst.name]:.3g} eps from the float64 reference{faithful} "
                      f"(budget {worst['budget_eps']:.3g} eps) [{worst.get('test_id', '')}]")
        elif key in missing:
            machine, backend, device, dtype, op = key
            reason = (f"conformance incomplete: {missing[key]} of its cases were not reached by an interrupted run "
                      f"(seqbench check --op {op} --backend {backend} --device {device} --dtype {dtype} checks them)")
        rows.append({
            **dict(zip(_CHECK_KEYS, key)),
            "device": group["device"].iloc[0],
            "conformance_passed": not reason,
            "checks": len(group),
            "failed": len(failed),
            "max_err_eps": group["max_err_eps"].max(),
            "ratio": group["ratio"].max() if "ratio" in group else math.nan,
            "conformance_reason": reason,
            "variant": _first(group, "variant"),
            "device_name": _first(group, "device_name"),
            "math_mode": "/".join(sorted(set(group["math_mode"].dropna().astype(str)))) or None
            if "math_mode" in group else None,
            "versions": group["versions"].iloc[-1] if "versions" in group else None,
        })
    return pd.DataFrame(rows)


#: A conforming backend whose error is more than this many times the most accurate conforming one's
#: (in the same machine, device, dtype, math mode and op) is flagged in the report.
FAR_WORSE = 3.0


def accuracy_outliers(checks: pd.DataFrame) -> pd.DataFrame:
    """Conforming backends far less accurate than the best conforming backend of their group.

    Accuracy is the ``ratio`` of a check (error ÷ a faithful same-precision
    implementation's error); the best of a group counts as at least 1, so a
    backend as accurate as the faithful implementation is never flagged.
    """
    columns = ["machine", "device", "dtype", "math_mode", "op", "backend", "ratio", "best", "best_ratio"]
    if checks.empty or "ratio" not in checks or checks["ratio"].isna().all():
        return pd.DataFrame(columns=columns)
    ok = checks[checks["conformance_passed"].astype(bool) & checks["ratio"].notna()]
    rows = []
    for (machine, device, dtype, mode, op), group in ok.groupby(
            ["machine", "devkey", "dtype", ok["math_mode"].fillna(""), "op"], sort=True):
        best = group.loc[group["ratio"].idxmin()]
        for _, r in group.iterrows():
            if r["ratio"] > FAR_WORSE * max(best["ratio"], 1.0):
                rows.append({"machine": machine, "device": device, "dtype": dtype, "math_mode": mode, "op": op,
                             "backend": r["backend"], "ratio": r["ratio"], "best": best["backend"],
                             "best_ratio": best["ratio"]})
    return pd.DataFrame(rows, columns=columns)


# --- asv ------------------------------------------------------------------------------------

def benchmark_meta(machine_dir: Path) -> dict:
    """``benchmarks.json`` of the results root above ``machine_dir`` (empty when there is none)."""
    path = machine_dir.parent / "benchmarks.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {name: meta for name, meta in data.items() if isinstance(meta, dict)}


def asv_points(machine_dir: Path, skipped: list | None = None) -> list[dict]:
    """Every measured point of every result file of one machine: one dict per (benchmark, parameter point).
    A file that is not an asv results file of API version 2 is left out, with the reason in ``skipped``."""
    skipped = [] if skipped is None else skipped
    try:
        meta = benchmark_meta(machine_dir)
    except (OSError, ValueError) as error:
        skipped.append((machine_dir.parent / "benchmarks.json", f"not asv's benchmark list ({error}): "
                                                                "parameter names guessed"))
        meta = {}
    points = []
    for path in sorted(machine_dir.glob("*.json")):
        if path.name in ("machine.json", "benchmarks.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            skipped.append((path, f"not JSON ({error}): a truncated or foreign file"))
            continue
        if not isinstance(data, dict) or "result_columns" not in data:
            skipped.append((path, "not an asv results file of API version 2 (no result_columns)"))
            continue
        machine = data.get("params", {}).get("machine", machine_dir.name)
        for name, row in data["results"].items():
            record = dict(zip(data["result_columns"], row))
            params = record.get("params") or []
            values = record.get("result")
            if not params:
                values = values if isinstance(values, list) else [values]
            names = meta.get(name, {}).get("param_names") or _default_names(len(params))
            suite, _, method = name.rpartition(".")
            for combo, value in zip(itertools.product(*params), values or []):
                points.append({
                    "machine": machine, "commit": data.get("commit_hash"), "date": data.get("date"),
                    "env": data.get("env_name"), "suite": suite or name, "method": method,
                    "type": meta.get(name, {}).get("type") or _type_of(method),
                    "value": _number(value),
                    "params": {PARAM_ALIASES.get(n, n): _literal(v) for n, v in zip(names, combo)},
                })
    return points


def _default_names(n: int) -> list[str]:
    return list(DEFAULT_PARAM_NAMES) if n == len(DEFAULT_PARAM_NAMES) else [f"param{i}" for i in range(n)]


def _type_of(method: str) -> str:
    for prefix, kind in (("time_", "time"), ("peakmem_", "peakmemory"), ("mem_", "memory"), ("track_", "track")):
        if method.startswith(prefix):
            return kind
    return "track"


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _metric(point, kinds) -> tuple[str, str | None]:
    """``(metric column, kind of pass or None for every kind)`` of one asv point."""
    method, kind = point["method"], point["type"]
    if kind == "time":
        return "time_s", method.removeprefix("time_") or "forward"
    if kind == "peakmemory":
        return "peak_host_memory", method.removeprefix("peakmem_") or None
    metric = method.removeprefix("track_")
    for k in sorted(kinds, key=len, reverse=True):
        if metric.endswith("_" + k):
            metric, kind_of = metric[: -len(k) - 1], k
            break
    else:  # a track without a pass in its name measures the forward pass (benchmarks/common.py)
        kind_of = "forward" if "forward" in kinds else None
    if "memory" in metric:
        return "peak_device_memory", kind_of
    return "track_" + metric, kind_of


def measurements(points: list[dict]) -> list[dict]:
    """asv points pivoted to one dict per (machine, suite, parameter point, kind of pass), latest commit first."""
    latest = {}
    for p in sorted(points, key=lambda p: p["date"] or 0):
        key = (p["machine"], p["suite"], p["method"], tuple(sorted(p["params"].items(), key=str)))
        latest[key] = p
    groups: dict = {}
    for (machine, suite, _, params), p in latest.items():
        groups.setdefault((machine, suite, params), []).append(p)
    rows = []
    for (machine, suite, params), group in groups.items():
        kinds = sorted({p["method"].removeprefix("time_") for p in group if p["type"] == "time"})
        by_kind = {k: {} for k in kinds or [""]}
        for p in group:
            metric, kind = _metric(p, kinds)
            for k in (list(by_kind) if kind is None else [kind]):
                by_kind.setdefault(k, {})[metric] = p["value"]
        newest = max(group, key=lambda p: p["date"] or 0)
        for kind, metrics in by_kind.items():
            rows.append({"machine": machine, "benchmark": suite, "kind": kind, "commit": newest["commit"],
                         "date": newest["date"], **dict(params), **metrics})
    return rows


def _ran(rows: list[dict]) -> list[dict]:
    """Rows of the (machine, benchmark, backend, device, dtype, kind) that measured something at all.

    A suite's grid is the same on every machine, so a backend or device that is
    not there (no GPU, framework not installed) leaves only NaN: that is not
    a workload, while a NaN beside real measurements is a skipped shape.
    """
    def key(row):
        return tuple(str(row.get(k)) for k in ("machine", "benchmark", "op", "backend", "device", "dtype", "kind"))

    measured = {key(r) for r in rows if any(_is_metric(k) and v == v for k, v in r.items())}
    return [r for r in rows if key(r) in measured]


def _is_metric(column: str) -> bool:
    return column in ("time_s", "peak_host_memory", "peak_device_memory") or column.startswith("track_")


def op_of(row: dict) -> str:
    """The catalog op a benchmark measures: its ``op`` parameter, else its class name (``GRUResetAfter``)."""
    if isinstance(row.get("op"), str):
        return row["op"]
    cls = row["benchmark"].split(".")[-1]
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).lower()
    name = re.sub(r"^(time|bench|benchmark)_|_(time|bench|benchmark|suite)$", "", name)
    squashed = {op.replace("_", ""): op for op in catalog.ops()}
    return squashed.get(name.replace("_", ""), name)


# --- the tidy table ----------------------------------------------------------------------

def tidy(points: list[dict], checks: pd.DataFrame, machines: dict, conformance_dir=None) -> pd.DataFrame:
    """The tidy table (:data:`COLUMNS`); a missing check names the command that makes it, into ``conformance_dir``."""
    rows = measurements(points)
    peaks_measured = {(r["machine"], str(r.get("device")), r.get("dtype")): r.get("track_gflops")
                      for r in rows if r["benchmark"].startswith(PEAK_BENCHMARK)}
    rows = [r for r in rows if not r["benchmark"].startswith(PEAK_BENCHMARK)]
    rows = [_enrich(row, checks, machines, peaks_measured, conformance_dir) for row in _ran(rows)]
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame:
            frame[column] = math.nan
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def throughput_unit(op: str) -> str:
    """The unit of an op's throughput, as the asv suite names it: tokens/s (T·B time steps) for the recurrent
    ops, words/s for the embedding ops."""
    entry = catalog.ops().get(op)
    return "words/s" if entry is not None and entry.family == "embedding" else "tokens/s"


#: the benchmark that measures a device's matmul rate (benchmarks/bench_peak.py): the roofline's peak
PEAK_BENCHMARK = "bench_peak."


def _enrich(row: dict, checks: pd.DataFrame, machines: dict, peaks_measured: dict, conformance_dir=None) -> dict:
    row["op"] = op_of(row)
    entry = catalog.ops().get(row["op"])
    backend, dtype, device = row.get("backend"), row.get("dtype"), str(row.get("device", "cpu"))
    row["device"] = device
    row["implementation"] = row.get("implementation") or IMPLEMENTATIONS.get(backend, backend)
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
    shape = _shape(entry, row)
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
    measured = peaks_measured.get((row["machine"], device, dtype))
    peak_flops, peak_bw, row["peak_source"] = peaks.peak(device, row["device_name"], dtype, row["math_mode"],
                                                         info.get("num_cpu"), info.get("arch"),
                                                         measured if measured == measured else None)
    row["peak_gflops"] = peak_flops
    row["roofline_fraction"] = peaks.roofline_fraction(row["gflops"], flops, nbytes, peak_flops, peak_bw)
    return row


def _shape(entry, row) -> dict | None:
    """The catalog shape of a benchmark row, as the suite builds it (benchmarks/common.py): sizes that
    are not parameters come from the op's last catalog shape without flags, and ``I = H``."""
    if entry is None:
        return None
    flags = ("ragged", "reverse", "tied")
    plain = [s for s in entry.shapes if not any(s.get(f) for f in flags)] or entry.shapes
    base = {k: v for k, v in plain[-1].items() if k not in flags}  # (sizes off the axes too, e.g. CBOW's M)
    shape = {k: row[k] if k in SHAPE_KEYS and row.get(k) is not None else v for k, v in base.items()}
    if "I" in shape and row.get("I") is None and row.get("H") is not None:
        shape["I"] = row["H"]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in shape.values()):
        return None
    return shape


def _check(checks: pd.DataFrame, machine, backend, device, dtype, op) -> dict:
    """Conformance of a (backend, device, dtype, op): this machine's checks, else any machine's, with a note."""
    if checks.empty:
        return {}
    same = checks[(checks["backend"] == backend) & (checks["devkey"] == _devkey(device))
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
        same = checks[(checks["machine"] == machine) & (checks["devkey"] == _devkey(device))]
        names = same["device_name"].dropna()
        if len(names):
            return names.iloc[0]
    # else the machine record: its CPU, or the GPUs `seqbench bench` found there (nvidia-smi's names)
    return machines.get(machine, {}).get("cpu" if _devkey(device) == "cpu" else "gpu")


def _devkey(device) -> str:
    """What joins benchmarks to conformance rows: the device kind (``cuda:1`` is ``cuda``), keeping a math
    mode (``cuda:tf32`` is judged by its own TF32 rows, not by IEEE float32's)."""
    kind, _, rest = str(device).partition(":")
    return f"{kind}:{rest}" if rest and not rest.isdigit() else kind


def _first(group, column):
    if column not in group:
        return None
    values = group[column].dropna()
    return values.iloc[0] if len(values) else None
