"""Conformance rows (JSON lines the conformance suite writes) -> pandas: the raw rows, one verdict per
(machine, backend, device, dtype, op), and the conforming backends far less accurate than the best.

A check is keyed by its device kind (:func:`devkey`), which is how benchmark rows join it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from seqbench.precision import tolerance
from seqbench.results import records as results

CHECK_KEYS = ["machine", "backend", "devkey", "dtype", "op"]
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
    frame["devkey"] = frame["device"].map(devkey)
    return frame


def load_unchecked(paths, skipped: list) -> list[dict]:
    """The cases conformance runs left without a verdict (``<machine>.unchecked.json``): not reached by an
    interrupted run, or stopped by a ``--timeout`` (each case's ``reason``)."""
    cases = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
            found = [dict(c, machine=c.get("machine") or Path(path).name.removesuffix(".unchecked.json"),
                          reason=c.get("reason") or results.NOT_REACHED) for c in data["cases"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            skipped.append((path, f"not a list of unchecked cases ({type(error).__name__}: {error})"))
            continue
        cases += found
    return cases


def summarize_conformance(conformance: pd.DataFrame, unchecked: list = ()) -> pd.DataFrame:
    """One row per (machine, backend, device, dtype, op): passed only if every check passed, and none of its
    cases is listed as not checked (``unchecked``: an interrupted run, a ``--timeout``)."""
    missing, why = {}, {}
    for case in unchecked:
        if case.get("kind") in ("forward", "vjp"):
            key = (case["machine"], case["backend"], devkey(case["device"]), case["dtype"], case["op"])
            missing[key] = missing.get(key, 0) + 1
            why.setdefault(key, case["reason"])
    rows = []
    if conformance.empty:
        return pd.DataFrame(columns=CHECK_KEYS + ["conformance_passed", "checks", "failed", "max_err_eps", "ratio",
                                                   "conformance_reason", "device_name", "math_mode", "versions"])
    for key, group in conformance.groupby(CHECK_KEYS, dropna=False):
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
            reason = (f"conformance incomplete: {missing[key]} of its cases were not checked ({why[key]}; seqbench "
                      f"check --op {op} --backend {backend} --device {device} --dtype {dtype} checks them)")
        rows.append({
            **dict(zip(CHECK_KEYS, key)),
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


def conforms(row) -> bool | None:
    """A tidy row's conformance verdict: True, False, or None when it was never checked."""
    passed = row.get("conformance_passed")
    return None if passed is None or passed != passed else bool(passed)


def in_dtype_eps(row) -> float:
    """A tidy row's ``max_err_eps`` in eps of its dtype (it is in eps of its math mode's precision)."""
    unit = tolerance.precision(str(row["dtype"]), str(row.get("math_mode") or "ieee"))
    store = tolerance.storage(unit)
    if unit == store or unit not in tolerance.EPS or store not in tolerance.EPS:
        return row["max_err_eps"]
    return row["max_err_eps"] * tolerance.EPS[unit] / tolerance.EPS[store]


def devkey(device) -> str:
    """What joins benchmarks to conformance rows: the device kind (``cuda:1`` is ``cuda``), keeping a math
    mode (``cuda:tf32`` is judged by its own TF32 rows, not by IEEE float32's)."""
    kind, _, rest = str(device).partition(":")
    return f"{kind}:{rest}" if rest and not rest.isdigit() else kind


def _first(group, column):
    if column not in group:
        return None
    values = group[column].dropna()
    return values.iloc[0] if len(values) else None
