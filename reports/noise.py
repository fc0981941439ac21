"""How sure a difference between two timed rows of the tidy table is, and how noisy one row is.

A row's timing data are asv's (:mod:`.load`): ``samples`` (seconds, or None
where asv kept none), the 99% confidence interval ``ci_99_a``..``ci_99_b`` of
the median ``time_s``, the quartiles ``q_25``/``q_75`` and the number of
samples ``repeat``. :func:`significant` is asv's own test
(``asv._stats.is_different``: Mann–Whitney U on the samples where there are
enough of them, else non-overlapping confidence intervals), made to say None
where neither can decide.
"""

from __future__ import annotations

import math
import numbers

from asv._stats import is_different

#: asv's significance level: a difference is significant at p below this
P_THRESHOLD = 0.002


def samples(row) -> list[float] | None:
    """The finite samples of ``row`` (None where it has none)."""
    values = row.get("samples")
    if not isinstance(values, (list, tuple)):
        return None
    finite = [float(v) for v in values if isinstance(v, numbers.Real) and math.isfinite(v)]
    return finite or None


def testable(a, b) -> bool:
    """Whether the Mann–Whitney test on the samples of ``a`` and ``b`` can reach :data:`P_THRESHOLD` at all: its
    smallest p-value, 1 / C(na + nb, min(na, nb)), is below it (6 samples each and more)."""
    sa, sb = samples(a), samples(b)
    return sa is not None and sb is not None and 1 / math.comb(len(sa) + len(sb), min(len(sa), len(sb))) < P_THRESHOLD


def _interval(row) -> dict | None:
    """``row``'s confidence interval as asv's stats (None where either bound is missing or infinite)."""
    bounds = {k: row.get(k) for k in ("ci_99_a", "ci_99_b")}
    if all(isinstance(v, numbers.Real) and math.isfinite(v) for v in bounds.values()):
        return bounds
    return None


def significant(a, b) -> bool | None:
    """Whether the times of rows ``a`` and ``b`` (dicts or table rows) differ significantly, by asv's test.

    True: they differ (Mann–Whitney p < :data:`P_THRESHOLD` on the samples, or, with too few samples, disjoint 99%
    confidence intervals); False: no significant difference; None: untestable (too few samples for the test
    and no finite interval on one side, e.g. a single sample).
    """
    ci_a, ci_b = _interval(a), _interval(b)
    if not testable(a, b) and (ci_a is None or ci_b is None):
        return None
    return bool(is_different(samples(a), samples(b), ci_a, ci_b, P_THRESHOLD))


def spread(row) -> float:
    """``row``'s relative noise: the interquartile range of its samples over their median, (q_75 - q_25) / time_s
    (NaN where it is unknown: fewer than two samples, or no quartiles)."""
    q25, q75, median, count = (_number(row.get(k)) for k in ("q_25", "q_75", "time_s", "repeat"))
    return (q75 - q25) / median if count >= 2 and median > 0 else math.nan


def _number(value) -> float:
    return float(value) if isinstance(value, numbers.Real) else math.nan
