"""The report's tables: per-workload answers, what was dropped and why, conformance, accuracy outliers,
equation variants and roofline peaks, as pandas frames of display strings; and how numbers are written in them."""

from __future__ import annotations

import math

import pandas as pd

from seqbench.catalog.axes import SHAPE_KEYS
from seqbench.precision import tolerance

from . import beside, peaks
from .benchmark_rows import throughput_unit


def machines_table(results) -> pd.DataFrame:
    rows = {}
    for frame in (results.benchmarks, results.checks):
        for _, r in frame.iterrows() if len(frame) else []:
            key = (r["machine"], str(r["device"]).split(":")[0])
            entry = rows.setdefault(key, {"backends": set(), "versions": set()})
            entry["backends"].add(r["backend"])
            entry.setdefault("device name", r.get("device_name"))
            if isinstance(r.get("versions"), str):
                entry["versions"].add(r["versions"])
    return pd.DataFrame([{"machine": m, "device": d, "device name": e.get("device name") or "?",
                          "backends": ", ".join(sorted(e["backends"])),
                          "versions": "; ".join(sorted(e["versions"])) or "?"} for (m, d), e in sorted(rows.items())])


def glance_table(recs: pd.DataFrame) -> pd.DataFrame:
    """Per (machine, device, op, dtype, pass): how many measured shapes each kernel family wins (by which path), the
    winners' worst error, the verdicts, the speed-up over the runner-up, the device's other math modes and what was
    dropped (speed against the winner and worst error over the workloads)."""
    rows = []
    others, dropped = beside.details(recs, "other_detail"), beside.details(recs, "dropped_detail")
    for key, group in recs.groupby(["machine", "device", "op", "dtype", "kind"], sort=True):
        n, at, off = len(group), others["row"].isin(group.index), dropped["row"].isin(group.index)
        rows.append({**dict(zip(["machine", "device", "op", "dtype", "pass"], key)),
                     "wins (of measured shapes)": beside.wins(group),
                     "verdicts": beside.verdicts(group),
                     "speed-up over runner-up": speedup_range(group["speedup"]),
                     "other math modes": "; ".join(beside.summed(g, True, n) for _, g in others[at].groupby(
                         ["backend", "device"], sort=True)) or "—",
                     "dropped": "; ".join(beside.summed(g, of=n) for _, g in dropped[off].groupby("backend", sort=True))
                     or "—"})
    return pd.DataFrame(rows)


def speedup_range(values: pd.Series) -> str:
    """The speed-ups of a group as ``×low – ×high`` (one figure when they agree)."""
    values = values.dropna()
    if values.empty:
        return "—"
    low, high = values.min(), values.max()
    return f"×{low:.2f}" if abs(high - low) < 5e-3 else f"×{low:.2f} – ×{high:.2f}"


def shapes(frame: pd.DataFrame) -> list[str]:
    """Each row's shape as ``T=64 H=32 B=8`` (the shape keys it has a value for)."""
    keys = [k for k in SHAPE_KEYS if k in frame]
    return [" ".join(f"{k}={int(r[k])}" for k in keys if r[k] == r[k]) for _, r in frame.iterrows()]


def recommendations_table(recs: pd.DataFrame) -> pd.DataFrame:
    """Every measured workload: the winner (family and path), verdict, speed, accuracy, runner-up, the device's other
    math modes and what was dropped, in short."""
    keys = [k for k in SHAPE_KEYS if k in recs]
    return pd.DataFrame({
        "machine": recs["machine"], "device": recs["device"], "op": recs["op"], "variant": recs["variant"],
        "dtype": recs["dtype"], "pass": recs["kind"],
        "shape": [" ".join(f"{k}={int(r[k])}" for k in keys if r[k] == r[k]) for _, r in recs.iterrows()],
        "fastest": [beside.path(f, w, p) if isinstance(w, str) else "none qualifies"
                    for f, w, p in zip(recs["family"], recs["winner"], recs["paths"])],
        "verdict": [beside.verdict(r) for _, r in recs.iterrows()],
        "time": recs["time_s"].map(fmt_time),
        "throughput": [f"{fmt_si(v)} {throughput_unit(op)}" if v == v else "—"
                       for v, op in zip(recs["throughput"], recs["op"])],
        "GFLOP/s": recs["gflops"].map(lambda v: fmt(v, "{:.3g}")),
        "roofline": [peaks.describe(f, src) for f, src in zip(recs["roofline_fraction"], recs["peak_source"])],
        "error (eps)": recs["max_err_eps"].map(lambda v: fmt(v, "{:.3g}")),
        "x faithful": recs["ratio"].map(lambda v: fmt(v, "{:.2g}")),
        "peak memory": recs["peak_memory"].map(fmt_bytes),
        "other paths (time ÷ winner's)": recs["paths"].map(
            lambda p: ", ".join(f"{b} ×{r:.3g}" for b, r in sorted(p.items(), key=lambda kv: kv[1])) or "—"),
        "runner-up": [beside.path(f, b) for f, b in zip(recs["runner_up_family"], recs["runner_up"])],
        "speed-up": recs["speedup"].map(lambda v: fmt(v, "×{:.2f}")),
        "other math modes": recs["other_detail"].map(lambda ds: "; ".join(beside.one(d, True) for d in ds) or "—"),
        "dropped": recs["dropped_detail"].map(lambda ds: "; ".join(beside.one(d) for d in ds) or "—"),
    })


def dropped_table(recs: pd.DataFrame, checks: pd.DataFrame, rule) -> pd.DataFrame:
    """Every (machine, backend, device, dtype, op) that does not qualify under ``rule`` (a
    :class:`.select.Rule`): over the workloads where it was measured beside a winner, its speed against the winner
    and its worst error, and the rule it failed in full; those checked but never benchmarked from ``checks``."""
    rows = {}
    for column in ("dropped_detail", "other_detail"):
        found = beside.details(recs, column)
        found = found[found["fails"] != ""]
        for key, group in found.groupby(["machine", "backend", "device", "dtype", "op"], sort=True):
            rows[key] = {"implementation": group["implementation"].iloc[0], "workloads": len(group),
                         "speed vs the winner": beside.speed_range(group["speed_vs_winner"]),
                         "worst error": beside.error(group["max_err_eps"].max(), group["ratio"].max(),
                                                     group["eps_unit"].iloc[0]),
                         "why": "; ".join(dict.fromkeys(group["fails"]))}
    for _, r in checks.iterrows() if len(checks) else []:
        key = (r["machine"], r["backend"], r["devkey"], r["dtype"], r["op"])
        fails = rule.judge(r)
        if fails and key not in rows:
            rows[key] = {"implementation": None, "workloads": 0, "speed vs the winner": "not benchmarked",
                         "worst error": beside.error(r["max_err_eps"], r.get("ratio", math.nan), tolerance.precision(
                             r["dtype"], str(r.get("math_mode") or "ieee"))), "why": fails}
    return pd.DataFrame([{"machine": m, "device": d, "dtype": t, "op": o,
                          "backend": f"{b} ({e['implementation']})" if e["implementation"] else b,
                          **{k: v for k, v in e.items() if k != "implementation"}}
                         for (m, b, d, t, o), e in sorted(rows.items())])


def flagged_table(flagged: pd.DataFrame) -> pd.DataFrame:
    """The measurements :func:`.plausibility.flag` does not believe, with why."""
    return pd.DataFrame({
        "machine": flagged["machine"], "device": flagged["device"], "backend": flagged["backend"],
        "op": flagged["op"], "dtype": flagged["dtype"], "pass": flagged["kind"], "shape": shapes(flagged),
        "why": flagged["reason"],
    })


def conformance_table(checks: pd.DataFrame) -> pd.DataFrame:
    ratios = checks["ratio"] if "ratio" in checks else pd.Series(math.nan, index=checks.index)
    cell = checks.assign(column=checks["backend"] + "/" + checks["devkey"] + "/" + checks["dtype"],
                         text=[f"{'ok' if ok else 'FAIL'} {err:.3g}" + (f" x{ratio:.2g}" if ratio == ratio else "")
                               for ok, err, ratio in zip(checks["conformance_passed"], checks["max_err_eps"], ratios)])
    grid = cell.pivot_table(index=["machine", "op"], columns="column", values="text", aggfunc="first").fillna("—")
    grid.columns.name = None  # else a header cell titled "column"
    return grid.reset_index()


DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")


def conformance_summary(conformance: pd.DataFrame) -> pd.DataFrame:
    """Backend/device × dtype: checks passed of those run, and the worst error ÷ a faithful implementation's.

    The README's conformance table is this, for the committed CPU results (``tests/test_readme.py``).
    """
    frame = conformance.assign(column=conformance["dtype"].where(
        conformance.get("eps_unit", conformance["dtype"]) != "tf32", "float32 (tf32)"))
    rows = []
    for (backend, device), group in frame.groupby(["backend", "device"], sort=True):
        row = {"backend": backend, "device": device}
        for column, cells in sorted(group.groupby("column"), key=lambda kv: _dtype_rank(kv[0])):
            passed, ratio = int(cells["passed"].sum()), cells["ratio"].max() if "ratio" in cells else math.nan
            state = "ok" if passed == len(cells) else "FAIL"
            row[column] = f"{state} {passed}/{len(cells)}" + (f", ≤ {ratio:.2g}x" if ratio == ratio else "")
        rows.append(row)
    columns = ["backend", "device"] + sorted({c for r in rows for c in r} - {"backend", "device"},
                                             key=lambda c: (_dtype_rank(c), c))  # float32 before float32 (tf32)
    return pd.DataFrame(rows, columns=columns).fillna("–")


def _dtype_rank(column: str) -> int:
    name = column.split()[0]
    return DTYPE_ORDER.index(name) if name in DTYPE_ORDER else len(DTYPE_ORDER)


def outliers_table(outliers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "machine": outliers["machine"], "device": outliers["device"], "dtype": outliers["dtype"],
        "math mode": outliers["math_mode"], "op": outliers["op"], "backend": outliers["backend"],
        "x faithful": outliers["ratio"].map(lambda v: f"{v:.2g}"),
        "most accurate": [f"{b} (x{r:.2g})" for b, r in zip(outliers["best"], outliers["best_ratio"])],
    })


def variants_table(checks: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (op, variant), group in checks.groupby(["op", checks["variant"].fillna("")], sort=True):
        ok = group[group["conformance_passed"].astype(bool)]
        bad = group[~group["conformance_passed"].astype(bool)]
        rows.append({"op": op, "equation variant": variant or "—",
                     "computed by (conforms)": ", ".join(sorted(set(ok["backend"]))) or "—",
                     "fails": ", ".join(sorted(set(bad["backend"]))) or "—"})
    return pd.DataFrame(rows)


def peaks_table() -> pd.DataFrame:
    return pd.DataFrame([{"device": p.name, "match": " + ".join(n), "FP64 GFLOP/s": p.fp64, "FP32": p.fp32,
                          "TF32": p.tf32, "FP16/BF16": p.fp16, "GB/s": p.bandwidth, "source": p.source}
                         for n, p in peaks.GPUS])


# --- formatting ---------------------------------------------------------------------------------

def fmt(value, pattern: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else pattern.format(value)


def fmt_time(seconds) -> str:
    return _scaled(seconds, ((" s", 1), (" ms", 1e-3), (" µs", 1e-6), (" ns", 1e-9)))


def fmt_si(value) -> str:
    return _scaled(value, (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1)))


def fmt_bytes(value) -> str:
    return _scaled(value, ((" MiB", 2**20),))


def _scaled(value, units) -> str:
    """``value`` in the first of ``units`` (suffix, scale; largest first) it reaches, else in the last; "—" if none."""
    if value is None or value != value:
        return "—"
    suffix, scale = next((unit for unit in units if value >= unit[1]), units[-1])
    return f"{value / scale:.3g}{suffix}"
