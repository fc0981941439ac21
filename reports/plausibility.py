"""Measurements the report does not believe: flagged with the reason, and kept out of the recommendations.

Three checks on the tidy table (:mod:`.load`), each flagging every row it
involves (which of two contradicting rows is wrong cannot be told):

* a forward_backward pass faster than the forward pass of the same benchmark
  point (machine, backend, device, dtype, op, shape): it includes that pass;
* time falling as the work grows: along one shape axis, the other axes fixed,
  a point with more FLOPs (the catalog's model) faster than the next smaller
  one measured;
* the device's matmul rate, measured at the start and at the end of the sweep
  (``bench_peak``, ``bench_zz_peak_end``), moved by more than :data:`DRIFT`:
  every row of that (machine, device, dtype) sweep is flagged.

"Faster beyond the noise" (:func:`beyond_noise`): by more than :data:`FLAT`,
and significantly by asv's test (:func:`.noise.significant`); where that
cannot decide (too few samples and no confidence interval, e.g. one sample
each), by more than :data:`MARGIN`.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from seqbench import catalog
from seqbench.catalog.axes import SHAPE_KEYS

from . import benchmark_rows, noise
from .tables import fmt_time

#: a larger point this much faster or less is a plateau (a latency-bound workload), never flagged
FLAT = 0.05
#: without a test that can decide, a time must be this much below the other's to be flagged
MARGIN = 0.25
#: the largest relative change of the matmul rate over a sweep, (end - start) / start, not flagged
DRIFT = 0.20
#: the columns that say which measurement a flagged row is, kept in :func:`flag`'s frame
IDS = ("machine", "device", "backend", "op", "kind", "dtype", *SHAPE_KEYS, "benchmark")


def beyond_noise(slow, fast) -> str:
    """How row ``fast`` is faster than row ``slow`` beyond the noise ("" where it is not): their times and the
    evidence, asv's test or the margin."""
    t_slow, t_fast = slow["time_s"], fast["time_s"]
    if not t_fast < t_slow * (1 - FLAT):
        return ""
    verdict = noise.significant(slow, fast)
    if verdict is False or (verdict is None and not t_fast < t_slow * (1 - MARGIN)):
        return ""
    how = "significant by asv's test" if verdict else f"no test possible; over {MARGIN:.0%} faster"
    return f"{fmt_time(t_fast)} against {fmt_time(t_slow)}, {how}"


def flag(table: pd.DataFrame) -> pd.DataFrame:
    """The flagged rows of ``table`` (its index, which must be unique): the columns of :data:`IDS` it has and
    ``reason`` (a row's reasons joined by "; "). Empty when nothing is flagged."""
    reasons = defaultdict(list)
    if len(table):
        for check in (_backward_faster, _time_falls, _peak_drift):
            for index, reason in check(table):
                if reason not in reasons[index]:
                    reasons[index].append(reason)
    flagged = table.loc[[i for i in table.index if i in reasons], [c for c in IDS if c in table]].copy()
    flagged["reason"] = ["; ".join(reasons[i]) for i in flagged.index]
    return flagged


def usable(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the rows of table not flagged, the flagged ones as flag() gives them)``: what recommendations use."""
    flagged = flag(table)
    return table.drop(index=flagged.index), flagged


def _timed(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["time_s"] > 0]


def _point_keys(table: pd.DataFrame, but: str = "") -> list[str]:
    """The columns that make a benchmark point (less ``but``), less the pass."""
    return [c for c in ("machine", "benchmark", "backend", "device", "dtype", "op", *SHAPE_KEYS)
            if c in table and c != but]


def _backward_faster(table: pd.DataFrame):
    """``(index, reason)`` of both rows where forward_backward beats the forward pass of its point."""
    timed = _timed(table)
    for _, point in timed.groupby(_point_keys(timed), dropna=False, sort=False):
        passes = {row["kind"]: (i, row) for i, row in point.iterrows()}
        if "forward" in passes and "forward_backward" in passes:
            (i, forward), (j, both) = passes["forward"], passes["forward_backward"]
            how = beyond_noise(forward, both)
            if how:
                reason = f"forward_backward faster than its forward pass ({how})"
                yield i, reason
                yield j, reason


def _time_falls(table: pd.DataFrame):
    """``(index, reason)`` of both rows of each step along a shape axis where more work took less time."""
    timed = _timed(table)
    for axis in (k for k in SHAPE_KEYS if k in timed):
        along = timed[timed[axis].notna()]
        for _, line in along.groupby([*_point_keys(along, but=axis), "kind"], dropna=False, sort=False):
            steps = list(line.sort_values(axis).iterrows())
            for (i, small), (j, large) in zip(steps, steps[1:]):
                if not _work(large) > _work(small):
                    continue
                how = beyond_noise(small, large)
                if how:
                    reason = f"{axis}={large[axis]:g} faster than {axis}={small[axis]:g} though more work ({how})"
                    yield i, reason
                    yield j, reason


def _work(row) -> float:
    """FLOPs of ``row``'s pass by the catalog's model (NaN for an op not in the catalog)."""
    entry = catalog.ops().get(row["op"])
    sizes = {k: int(row[k]) for k in SHAPE_KEYS if k in row and row[k] == row[k]}
    shape = benchmark_rows.shape_of(entry, sizes)
    return float("nan") if shape is None else entry.flops(shape)


def _peak_drift(table: pd.DataFrame):
    """``(index, reason)`` of every row whose sweep saw the device's matmul rate move by more than :data:`DRIFT`."""
    if "peak_start_gflops" not in table or "peak_end_gflops" not in table:
        return
    start, end = table["peak_start_gflops"], table["peak_end_gflops"]
    change = (end - start) / start
    for i in table.index[change.abs() > DRIFT]:
        yield i, (f"the device's matmul rate moved from {start[i]:.4g} to {end[i]:.4g} GFLOP/s ({change[i]:+.0%}) "
                  "between the start and the end of its sweep")
