"""Independent references for the RL wing (llmcalc.rl), written here without the code under test for the quantity
checked: Monte-Carlo draws of response lengths, a discrete-event simulation of continuous batching, and an event
simulation of AReaL's staleness-bounded loop. Only inputs (a distribution's μ and σ, the engine's step-time law
``DecodeCost.step_s`` taken as a given function) come from llmcalc; every expected number is computed here.
"""

import math

import numpy as np
import pytest

from llmcalc.rl.lengths import lognormal

# ---------------------------------------------------------------- 1. lengths: the longest of N, order statistics

NS = [1, 2, 10, 100, 1000, 10_000, 100_000]
CVS = [0.0, 0.5, 1.0, 2.0, 3.0]


def _normal_maxima(n: int, rng) -> np.ndarray:
    """Maxima of n standard normals, drawn directly (as many batches as ~2·10⁷ draws allow, at least 400)."""
    reps = int(min(200_000, max(400, 2e7 // n)))
    out = np.empty(reps)
    chunk = max(1, int(4e6 // n))
    for a in range(0, reps, chunk):
        b = min(reps, a + chunk)
        out[a:b] = rng.standard_normal((b - a, n)).max(axis=1)
    return out


@pytest.fixture(scope="module")
def maxima():
    rng = np.random.default_rng(20261130)
    return {n: _normal_maxima(n, rng) for n in NS}


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("cv", CVS)
def test_expected_longest_of_n_matches_monte_carlo(maxima, n, cv):
    """max of n lognormals = e^{μ + σ·max of n normals} (e^x rises), so one set of normal maxima serves every cv.
    Tolerance: 4 standard errors of the Monte-Carlo mean, and 0.2% for the quadrature.
    The old Blom formula F⁻¹((n − 0.375)/(n + 0.25)) failed this at every cv > 0: at n = 1 it returned the median
    e^μ = mean/√(1 + cv²) (0.71 × the mean at cv 1, 0.32 × at cv 3) and at n = 10⁵, cv 3, 0.885 × E[max]."""
    d = lognormal(1000, cv)
    x = np.exp(d.mu + d.sigma * maxima[n])
    x = np.maximum(x, 1.0)  # a response has at least one token (as LengthDist draws)
    se = x.std() / math.sqrt(len(x))
    assert abs(d.expected_max(n) - x.mean()) <= 4 * se + 2e-3 * x.mean(), (d.expected_max(n), x.mean(), se)


@pytest.mark.parametrize("n", [1, 10, 1000, 100_000])
@pytest.mark.parametrize("cv, cap", [(1.0, 3000.0), (3.0, 3000.0), (3.0, 20000.0), (0.5, 1500.0)])
def test_expected_longest_clipped_at_max_response(maxima, n, cv, cap):
    """--max-response clips each response at the cap: max of min(X_i, cap) = min(max X_i, cap)."""
    d = lognormal(1000, cv, cap=cap)
    x = np.minimum(np.maximum(np.exp(d.mu + d.sigma * maxima[n]), 1.0), cap)
    se = x.std() / math.sqrt(len(x))
    assert abs(d.expected_max(n) - x.mean()) <= 4 * se + 2e-3 * x.mean()
    assert d.expected_max(n) <= cap


@pytest.mark.parametrize("n, cv, cap", [(1, 1.0, None), (8, 2.0, None), (16, 1.0, 4000.0), (100, 3.0, None),
                                        (300, 1.0, 30000.0)])
def test_cohorts_are_the_batch_order_statistics(n, cv, cap):
    """The cohorts stand for one batch sorted: each cohort's length is the mean over its ranks of the expected
    order statistics. Reference: sort many drawn batches, average each rank, group the ranks as the cohorts'
    counts say (longest first). And the batch's tokens are n·E[X]: the old Blom cohorts gave n·e^μ at n = 1."""
    d = lognormal(1000, cv, cap=cap)
    lengths, counts = d.cohorts(n)
    rng = np.random.default_rng(7)
    reps = int(min(100_000, 2e7 // n))
    x = np.exp(d.mu + d.sigma * rng.standard_normal((reps, n)))
    x = np.maximum(x, 1.0)
    if cap:
        x = np.minimum(x, cap)
    desc = -np.sort(-x, axis=1)  # longest first, as the cohorts
    edges = np.concatenate([[0], np.cumsum(counts).astype(int)])
    for j in range(len(counts)):
        block = desc[:, edges[j]:edges[j + 1]].mean(axis=1)
        se = block.std() / math.sqrt(reps)
        assert abs(lengths[j] - block.mean()) <= 4 * se + 2e-3 * block.mean(), (j, lengths[j], block.mean(), se)
    tokens = x.sum(axis=1)
    assert abs(np.dot(lengths, counts) - tokens.mean()) <= 4 * tokens.std() / math.sqrt(reps) + 1e-3 * tokens.mean()


@pytest.mark.parametrize("n", [4096, 1 << 20])
def test_large_batch_cohorts_keep_the_mean_and_the_longest(n):
    """Large n: the bulk's cohorts (quantile bands) and the tail's (exact order statistics) together keep n·E[X] to
    0.1%, E[X] from the lognormal's closed form e^{μ+σ²/2} (cap far out); the longest is the expected maximum."""
    d = lognormal(2000, 1.0, cap=1e7)
    lengths, counts = d.cohorts(n)
    assert counts.sum() == n
    assert np.dot(lengths, counts) / n == pytest.approx(2000, rel=1e-3)
    assert lengths[0] == pytest.approx(d.expected_max(n), rel=1e-12)
    assert np.all(np.diff(lengths) <= 1e-9 * lengths[0])  # longest first
