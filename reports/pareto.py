"""Speed against accuracy: each backend (in each math mode of its device) as one point per op, and the points no
other beats on both (the Pareto frontier).

A point's speed is the geometric mean, over the workloads (pass and shape) where it was measured, of the fastest
qualifying backend's time (:func:`.select.recommendations`, under the accuracy rule) ÷ its time: 1 where it is
the winner, above 1 where it is faster (a backend that does not qualify, or another math mode), below 1 where it is
slower. Where nothing qualifies at a workload, the fastest measured backend there stands in. A point's error is its
worst conformance error on that op, device and dtype, in eps of the dtype (``max_err_eps``, NaN when unchecked; an
error measured in eps of a math mode's precision, TF32's, is converted to eps of the dtype, so that the points of
one figure share a scale).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import select
from .conformance_rows import conforms, in_dtype_eps

#: what the names of the speed-against-accuracy figures start with (the report gives them their own section)
NAME = "speed_vs_error"
#: what one figure holds (its panels are ops) and what one point is
FIGURE = ["machine", "device_kind", "dtype"]
POINT = [*FIGURE, "op", "backend", "device"]
COLUMNS = [*POINT, "speed", "workloads", "max_err_eps", "conforms", "qualifies", "frontier"]


def points(table: pd.DataFrame, rule: select.Rule = select.Rule()) -> pd.DataFrame:
    """One row per (machine, device kind, dtype, op, backend, device with its math mode): ``speed`` against the
    fastest qualifying backend (geometric mean), the ``workloads`` it rests on, ``max_err_eps``, whether it
    ``conforms`` (the strict verdict) and ``qualifies`` under ``rule`` (at every workload), and whether it is on the
    ``frontier`` of its (machine, device kind, dtype, op)."""
    timed = table[table["time_s"] > 0] if len(table) else table
    if timed.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = select.shape_keys(timed)
    workload = ["machine", "device_kind", "op", "dtype", "kind", *keys]
    recs = select.recommendations(timed, rule)
    if recs.empty:  # every row flagged as implausible
        return pd.DataFrame(columns=COLUMNS)
    winners = recs.assign(device_kind=recs["device"].map(_kind))[[*workload, "time_s"]]
    rows = select.prepare(timed)[0].merge(winners.rename(columns={"time_s": "winner_s"}), on=workload, how="left")
    reference = rows["winner_s"].fillna(rows.groupby(workload, dropna=False)["time_s"].transform("min"))
    rows = rows.assign(device=rows["device"].astype(str), log_speed=np.log(reference / rows["time_s"]),
                       max_err_eps=[in_dtype_eps(r) for _, r in rows.iterrows()],
                       conforms=[conforms(r) is True for _, r in rows.iterrows()],
                       qualifies=[not rule.judge(r) for _, r in rows.iterrows()])
    out = rows.groupby(POINT, dropna=False, sort=True).agg(
        log_speed=("log_speed", "mean"), workloads=("log_speed", "size"), max_err_eps=("max_err_eps", "max"),
        conforms=("conforms", "all"), qualifies=("qualifies", "all")).reset_index()
    out = out.assign(speed=np.exp(out.pop("log_speed")))
    out["frontier"] = False
    for _, group in out.groupby([*FIGURE, "op"], sort=False):
        out.loc[frontier(group), "frontier"] = True
    return out[COLUMNS]


def frontier(group: pd.DataFrame) -> list:
    """The index of the points of ``group`` that no other point beats on both error (lower) and speed (higher),
    lowest error first; points without a finite error are never on it."""
    known = group[group["max_err_eps"].map(lambda e: isinstance(e, (int, float)) and math.isfinite(e))]
    best, kept = -math.inf, []
    for i, r in known.sort_values(["max_err_eps", "speed"], ascending=[True, False]).iterrows():
        if r["speed"] > best:
            kept.append(i)
            best = r["speed"]
    return kept


def _kind(device) -> str:
    return str(device).split(":")[0]
