"""Whether two measured times differ beyond their noise: asv's own test on the samples asv kept."""

from __future__ import annotations

import math

from asv import _stats  # asv's statistics (what `asv compare` uses)


def significant(a, b) -> bool | None:
    """Whether rows ``a`` and ``b`` (``samples``, ``ci_99_a``, ``ci_99_b``) differ significantly by asv's test
    (Mann–Whitney U on the samples when there are enough, else non-overlapping 99% confidence intervals);
    None when neither samples nor finite intervals exist to test."""
    def stats(row):
        low, high = row.get("ci_99_a"), row.get("ci_99_b")
        ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high))
        return {"ci_99_a": low, "ci_99_b": high} if ok else None

    def samples(row):
        values = row.get("samples")
        return list(values) if isinstance(values, (list, tuple)) and len(values) > 1 else None

    if (samples(a) is None or samples(b) is None) and (stats(a) is None or stats(b) is None):
        return None
    return _stats.is_different(samples(a), samples(b), stats(a) or {}, stats(b) or {})
