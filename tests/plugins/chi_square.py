"""Pearson's χ² goodness of fit of drawn word ids against a distribution (the samplers' tests)."""

import numpy as np
from scipy import stats


def chi_square_p_value(samples: np.ndarray, dist: np.ndarray) -> float:
    """The p-value of Pearson's χ² test of ``samples`` against ``dist`` (zero-probability words must not occur)."""
    observed = np.bincount(samples.ravel(), minlength=len(dist))
    support = dist > 0
    assert observed[~support].sum() == 0, "a word of probability 0 was drawn"
    expected = samples.size * dist[support]
    assert expected.min() >= 5, "too few samples for the χ² approximation"
    return float(stats.chisquare(observed[support], expected).pvalue)
