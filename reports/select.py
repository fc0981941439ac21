"""Backend selection: per workload, the fastest backend among those that conform.

A workload is (machine, device, op, dtype, kind of pass, shape). Backends
are ranked by measured time at that shape; one that fails conformance, was
never checked for this (op, device, dtype), or has no time at the shape is
dropped, with the reason. A requested shape that was not measured is
answered from the nearest measured shape (distance in log2 of each size),
and the answer says so; times at the requested size are then estimated by
scaling with the op's FLOP model (which keeps the ranking).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from seqbench import catalog
from seqbench.catalog.axes import SHAPE_KEYS

#: What identifies a workload in the tidy table (the shape keys follow).
WORKLOAD = ["machine", "device", "op", "dtype", "kind"]
CANDIDATE_COLUMNS = ["backend", "implementation", "variant", "math_mode", "time_s", "throughput", "gflops",
                     "roofline_fraction", "peak_source", "peak_memory", "max_err_eps", "ratio"]


@dataclass
class Candidate:
    backend: str
    implementation: str
    variant: str | None
    math_mode: str | None
    time_s: float
    throughput: float
    gflops: float
    roofline_fraction: float
    peak_source: str | None  # what the roofline's peak is: measured, datasheet or estimate
    peak_memory: float
    max_err_eps: float
    ratio: float  # error ÷ a faithful same-precision implementation's (seqbench.precision.tolerance)
    estimated_time_s: float = math.nan  # at the requested shape, when it was not measured


@dataclass
class Selection:
    machine: str
    device: str
    device_name: str | None
    op: str
    dtype: str
    kind: str
    requested: dict
    measured: dict
    note: str = ""
    winner: Candidate | None = None
    runner_up: Candidate | None = None
    speedup: float = math.nan  # runner-up time / winner time
    dropped: dict = field(default_factory=dict)  # backend -> why

    def to_dict(self) -> dict:
        return _clean(asdict(self))


def shape_keys(table: pd.DataFrame) -> list[str]:
    """The shape keys measured in ``table`` (columns with at least one value)."""
    return [k for k in SHAPE_KEYS if k in table and table[k].notna().any()]


def rank(rows: pd.DataFrame) -> tuple[list[Candidate], dict]:
    """Conforming candidates fastest first, and why each other backend was dropped."""
    candidates, dropped = [], {}
    for _, row in rows.sort_values("time_s", na_position="last").iterrows():
        backend = row["backend"]
        if backend in dropped or any(c.backend == backend for c in candidates):
            continue
        passed = row["conformance_passed"]
        if passed is None or (isinstance(passed, float) and math.isnan(passed)):
            dropped[backend] = row["conformance_reason"] or "no conformance results"
        elif not bool(passed):
            dropped[backend] = row["conformance_reason"] or "fails conformance"
        elif not row["time_s"] > 0:
            dropped[backend] = "no time at this shape (benchmark skipped: unsupported here, or it failed)"
        else:
            candidates.append(Candidate(**{c: _scalar(row.get(c)) for c in CANDIDATE_COLUMNS}))
    return candidates, dropped


def recommendations(table: pd.DataFrame) -> pd.DataFrame:
    """One row per measured workload: winner, runner-up, speed-up, accuracy, memory, what was dropped."""
    keys = WORKLOAD + shape_keys(table)
    rows = []
    if table.empty:
        return pd.DataFrame()
    for key, group in table.groupby(keys, dropna=False, sort=True):
        candidates, dropped = rank(group)
        winner = candidates[0] if candidates else None
        runner = candidates[1] if len(candidates) > 1 else None
        rows.append({
            **dict(zip(keys, key)),
            "device_name": group["device_name"].dropna().iloc[0] if group["device_name"].notna().any() else None,
            "variant": winner.variant if winner else group["variant"].iloc[0],
            "winner": winner.backend if winner else None,
            "time_s": winner.time_s if winner else math.nan,
            "throughput": winner.throughput if winner else math.nan,
            "gflops": winner.gflops if winner else math.nan,
            "roofline_fraction": winner.roofline_fraction if winner else math.nan,
            "peak_source": winner.peak_source if winner else None,
            "max_err_eps": winner.max_err_eps if winner else math.nan,
            "ratio": winner.ratio if winner else math.nan,
            "peak_memory": winner.peak_memory if winner else math.nan,
            "runner_up": runner.backend if runner else None,
            "speedup": runner.time_s / winner.time_s if runner else math.nan,
            "dropped": dropped,
        })
    return pd.DataFrame(rows)


def select(table: pd.DataFrame, op: str, device: str, dtype: str | None = None, kind: str = "forward",
           machine: str | None = None, **shape) -> list[Selection]:
    """The answer for one workload on every machine that has ``device``; raises ValueError with what there is."""
    if table.empty:
        raise ValueError("no benchmark results found (run `seqbench bench` or `seqbench run` first)")
    known = set(catalog.ops()) | set(table["op"].dropna())
    if op not in known:
        catalog.get(op)  # the catalog's error lists the op names
    rows = table[table["op"] == op]
    if rows.empty:
        raise ValueError(f"no benchmark results for op {op!r}; measured ops: {sorted(set(table['op'].dropna()))}")
    if dtype is None:  # float32 when measured, else the one dtype there is
        dtypes = sorted(set(rows["dtype"].dropna()))
        dtype = "float32" if "float32" in dtypes or len(dtypes) != 1 else dtypes[0]
    for column, value in (("device", device), ("dtype", dtype), ("kind", kind), ("machine", machine)):
        if value is None:
            continue
        if column == "device":
            match = rows["device"].astype(str).str.split(":").str[0] == str(value).split(":")[0]
        else:
            match = rows[column] == value
        if not match.any():
            there = sorted(set(rows[column].astype(str)))
            raise ValueError(f"no {op} results with {column} {value!r}; there are: {there}")
        rows = rows[match]
    keys = shape_keys(rows)
    for k, v in shape.items():
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"shape size {k} must be a positive number, got {v!r}")
    unknown = sorted(set(shape) - set(SHAPE_KEYS))
    if unknown:
        raise ValueError(f"unknown shape keys {unknown}; use {list(SHAPE_KEYS)}")
    answers = []
    for (mach, dev), group in rows.groupby(["machine", "device"], sort=True):
        measured, note = nearest(group, keys, shape)
        at = group
        for k, v in measured.items():
            at = at[at[k] == v]
        candidates, dropped = rank(at)
        entry = catalog.ops().get(op)
        scale = _flop_ratio(entry, shape, measured) if note else math.nan
        for c in candidates:
            c.estimated_time_s = c.time_s * scale
        answers.append(Selection(
            machine=mach, device=dev, device_name=_first(group, "device_name"), op=op, dtype=dtype, kind=kind,
            requested={k: v for k, v in shape.items() if v is not None}, measured=measured, note=note,
            winner=candidates[0] if candidates else None,
            runner_up=candidates[1] if len(candidates) > 1 else None,
            speedup=candidates[1].time_s / candidates[0].time_s if len(candidates) > 1 else math.nan,
            dropped=dropped,
        ))
    return answers


def nearest(rows: pd.DataFrame, keys: list[str], requested: dict) -> tuple[dict, str]:
    """The measured shape closest to ``requested`` (sum of |log2| ratios) and a note when it is not exact."""
    shapes = rows[rows["time_s"] > 0][keys].drop_duplicates()
    if shapes.empty:
        shapes = rows[keys].drop_duplicates()
    asked = {k: v for k, v in requested.items() if v is not None and k in keys}

    def distance(shape):
        return sum(abs(math.log2(shape[k] / v)) for k, v in asked.items() if v > 0 and shape[k] > 0)

    scored = sorted(((distance(s), -sum(s[k] for k in keys), s) for _, s in shapes.iterrows()), key=lambda t: t[:2])
    best = {k: _size(scored[0][2][k]) for k in keys}
    ignored = sorted(k for k, v in requested.items() if v is not None and k not in keys)
    notes = []
    if any(best[k] != v for k, v in asked.items()):
        wanted = ", ".join(f"{k}={v}" for k, v in asked.items())
        got = ", ".join(f"{k}={best[k]}" for k in asked)
        notes.append(f"not measured at {wanted}; answered from the nearest measured shape {got} "
                     "(times at the requested shape estimated by scaling with the op's FLOP model)")
        outside = []
        for k, v in asked.items():
            low, high = _size(shapes[k].min()), _size(shapes[k].max())
            if v > high:
                outside.append(f"{k}={v} is {v / high:.3g}x the largest measured {k}={high}")
            elif v < low:
                outside.append(f"{k}={v} is {low / v:.3g}x below the smallest measured {k}={low}")
        if outside:
            notes.append("outside the measured grid, so the estimate extrapolates: " + "; ".join(outside))
    if ignored:
        notes.append(f"{', '.join(ignored)} not a benchmark parameter here; ignored")
    unset = [k for k in keys if k not in asked]
    if unset and len(rows[unset].drop_duplicates()) > 1:
        notes.append(f"{', '.join(unset)} not given: took the largest measured "
                     + ", ".join(f"{k}={best[k]}" for k in unset))
    return best, "; ".join(notes)


def _flop_ratio(entry, requested: dict, measured: dict) -> float:
    if entry is None:
        return math.nan
    try:
        target = {**measured, **{k: v for k, v in requested.items() if v is not None}}
        base = dict(measured)
        for s in (target, base):
            s.setdefault("I", s.get("H"))
            s.setdefault("L", 2)
        return entry.flops(target) / entry.flops(base)
    except (KeyError, TypeError, ZeroDivisionError):
        return math.nan


def _first(group, column):
    values = group[column].dropna() if column in group else []
    return values.iloc[0] if len(values) else None


def _scalar(value):
    return value.item() if hasattr(value, "item") else value


def _size(value):
    """A shape size as an int (pandas stores sizes as floats in columns that have gaps)."""
    value = _scalar(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _clean(value):
    """JSON-ready: NaN -> None, integral float sizes -> int."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
