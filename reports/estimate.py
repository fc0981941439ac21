"""Times at shapes that were not measured: interpolation between measured neighbours, and how good it is.

A backend's time at an unmeasured shape ``s`` is interpolated in log–log
space between the measured shapes that bracket ``s`` on each axis, on the
same machine, device, dtype, op and pass (multilinear in ``log size``, on
``log time``)::

    log t(s) = Σ_corners w(corner) · log t(corner),
    w(corner) = Π_axes (1 − u_a  if corner_a = lo_a  else  u_a),
    u_a = (log s_a − log lo_a) / (log hi_a − log lo_a)

Every corner must have been measured; an axis where ``s`` is on the grid
takes that value alone. Outside the measured range (``s_a`` below the
smallest or above the largest measured value) nothing is estimated unless
asked: ``extrapolate=True`` extends the line through the two nearest values,
and the estimate says so.

:func:`holdout` measures the estimator on measured results: each measured
point is predicted from its neighbours along each axis, as if it had not been
measured (the geometric mean over the axes on which it has a measured
neighbour on both sides), and compared with its measurement. :func:`summary`
gives the median and 90th-percentile time error and how often the predicted
fastest backend is the measured one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pandas as pd

from . import noise

#: what a point's time rests on
MEASURED, INTERPOLATED, EXTRAPOLATED = "measured", "interpolated", "extrapolated"


@dataclass(frozen=True)
class Estimate:
    time_s: float
    how: str  # INTERPOLATED or EXTRAPOLATED
    corners: tuple  # the measured shapes it rests on


def interpolate(times: dict, at: tuple, skip: frozenset = frozenset(), extrapolate: bool = False) -> Estimate | None:
    """The time at shape ``at`` from ``times`` (shape tuple -> seconds, one order of axes), or None when the
    neighbours it needs were not measured. Axes in ``skip`` (indices) are bracketed as if ``at``'s own value
    on them had not been measured (:func:`holdout`)."""
    how, brackets = INTERPOLATED, []
    for axis, value in enumerate(at):
        known = sorted({shape[axis] for shape in times} - ({value} if axis in skip else set()))
        below, above = [v for v in known if v < value], [v for v in known if v > value]
        if value in known:
            brackets.append((value,))
        elif below and above:
            brackets.append((below[-1], above[0]))
        elif extrapolate and len(known) >= 2:
            brackets.append(tuple(known[-2:]) if below else tuple(known[:2]))
            how = EXTRAPOLATED
        else:
            return None
    log_time = 0.0
    corners = tuple(itertools.product(*brackets))
    for corner in corners:
        if not times.get(corner, 0) > 0:
            return None
        weight = 1.0
        for value, bracket, wanted in zip(corner, brackets, at):
            if len(bracket) == 2:
                u = math.log(wanted / bracket[0]) / math.log(bracket[1] / bracket[0])
                weight *= u if value == bracket[1] else 1 - u
        log_time += weight * math.log(times[corner])
    return Estimate(math.exp(log_time), how, corners)


def left_out(times: dict, shape: tuple) -> float | None:
    """``shape``'s time predicted without its measurement: the geometric mean of the interpolations along each
    axis on which it has measured neighbours on both sides (None when it has none)."""
    rest = {s: t for s, t in times.items() if s != shape}
    found = [e.time_s for axis in range(len(shape))
             if (e := interpolate(rest, shape, skip=frozenset({axis}))) is not None and len(e.corners) == 2]
    return math.exp(sum(map(math.log, found)) / len(found)) if found else None


#: a held-out point's identity: the workload (the shape follows) and the backend
HELD = ["machine", "device", "dtype", "op", "kind"]


def holdout(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per measured (workload, shape, backend) that has neighbours: ``measured_s``, ``predicted_s``, its
    family, and its measurement's row index (for the significance of wins)."""
    rows = []
    timed = table[table["time_s"] > 0]
    for key, group in timed.groupby(HELD + ["backend"], dropna=False, sort=True):
        times = {tuple(r[k] for k in keys): r["time_s"] for _, r in group.iterrows()}
        index = {tuple(r[k] for k in keys): i for i, r in group.iterrows()}
        for shape, measured in times.items():
            predicted = left_out(times, shape)
            if predicted is not None:
                rows.append({**dict(zip(HELD + ["backend"], key)), **dict(zip(keys, shape)),
                             "measured_s": measured, "predicted_s": predicted, "row": index[shape],
                             "family": group.loc[index[shape], "family"]})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame, keys: list[str]) -> dict:
    """The estimator's hold-one-out figures over ``table``: points, median and 90th-percentile relative time
    error, and at the shapes where backends of two or more families were predicted (conforming or not: the estimator
    ranks times, whatever the accuracy rule), how often the predicted
    fastest family (:class:`~seqbench.backends.protocol.Traits`: the paths of one kernel family are one answer)
    is the measured fastest (all of them, and those where the measured win is significant)."""
    held = holdout(table, keys)
    if held.empty:
        return {"points": 0}
    error = (held["predicted_s"] / held["measured_s"] - 1).abs()
    agree = shapes = agree_sig = shapes_sig = 0
    for _, group in held.groupby(HELD + keys, dropna=False):
        if group["family"].nunique() < 2:
            continue
        by_time = group.sort_values("measured_s")
        same = group.loc[group["predicted_s"].idxmin(), "family"] == by_time["family"].iloc[0]
        shapes, agree = shapes + 1, agree + same
        first, second = (table.loc[i] for i in by_time["row"].iloc[:2])
        if noise.significant(first, second):
            shapes_sig, agree_sig = shapes_sig + 1, agree_sig + same
    return {"points": len(held), "median_error": float(error.median()), "p90_error": float(error.quantile(0.9)),
            "winner_shapes": shapes, "winner_agree": agree,
            "significant_shapes": shapes_sig, "significant_agree": agree_sig}
