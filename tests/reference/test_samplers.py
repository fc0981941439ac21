"""The negative sampler checked statistically: chi-square goodness of fit against ``P_n``.

Each test draws ``n`` noise words at a fixed seed and computes Pearson's
``χ² = Σ_w (observed_w - n P_n(w))² / (n P_n(w))`` over the words with
``P_n(w) > 0`` (``V' - 1`` degrees of freedom; every expected count is ≥ 5,
so the χ² approximation holds). A correct sampler is rejected at
``p < ALPHA = 1e-3``: that is the false-alarm rate of one test at an
arbitrary seed, at most 3e-3 for the three seeds below together. With the
seeds fixed the outcome is deterministic: these seeds pass, and a change of
the sampler that breaks the distribution fails them (``test_wrong_power_is_rejected``
shows the test has the power to see a wrong exponent).
"""

import numpy as np
import pytest
from chi_square import chi_square_p_value

from seqbench.reference import noise_distribution, sample_negatives

ALPHA = 1e-3
N_SAMPLES = 20000
SEEDS = (0, 1, 2)
# Zipf-like unigram counts with a never-seen word (index 7): P_n must give it 0.
COUNTS = np.array([500, 250, 160, 120, 100, 80, 70, 0, 60, 50, 45, 40, 35, 30, 28, 25, 22, 20, 18, 15])


@pytest.mark.parametrize("seed", SEEDS)
def test_samples_follow_the_noise_distribution(seed):
    dist = noise_distribution(COUNTS)
    samples = sample_negatives(dist, (N_SAMPLES // 10, 10), np.random.default_rng(seed))  # (B, K)
    assert chi_square_p_value(samples, dist) > ALPHA


@pytest.mark.parametrize("seed", SEEDS)
def test_wrong_power_is_rejected(seed):
    """Samples from the unigram distribution (power 1) are told apart from P_n (power 3/4)."""
    unigram = sample_negatives(noise_distribution(COUNTS, power=1.0), N_SAMPLES, np.random.default_rng(seed))
    assert chi_square_p_value(unigram, noise_distribution(COUNTS)) < ALPHA


def test_power_three_quarters_flattens_the_unigram_distribution():
    """Rare words gain probability and frequent ones lose it, the point of the 3/4 power."""
    unigram, noise = noise_distribution(COUNTS, power=1.0), noise_distribution(COUNTS)
    assert noise[0] < unigram[0] and noise[-1] > unigram[-1]
    np.testing.assert_allclose(noise.sum(), 1, rtol=1e-15)
