"""Speculative decoding against Leviathan et al. 2023 and an independent simulation of the acceptance process."""

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.errors import LlmcalcError
from llmcalc.inference.spec_decode import expected_tokens, optimal_gamma, speculative, speedup


def simulate_tokens(alpha: float, gamma: int, trials: int, rng) -> float:
    """Independent reference: each of γ drafts is accepted with prob. α until the first rejection; the target step
    always adds one token (the correction, or the bonus token when all γ are accepted) — Leviathan §2.3, Alg. 1."""
    accepted = np.zeros(trials, dtype=int)
    alive = np.ones(trials, dtype=bool)
    for _ in range(gamma):
        ok = rng.random(trials) < alpha
        alive &= ok
        accepted += alive
    return float(np.mean(accepted + 1))


@pytest.mark.parametrize("alpha,gamma", [(0.6, 3), (0.8, 5), (0.9, 7), (0.5, 1)])
def test_eq1_matches_simulation(alpha, gamma):
    rng = np.random.default_rng(1)
    assert expected_tokens(alpha, gamma) == pytest.approx(simulate_tokens(alpha, gamma, 200_000, rng), rel=0.01)


def test_limits():
    # α = 0: every draft rejected, one token per step; α -> 1: γ + 1 tokens (Leviathan §3.2)
    assert expected_tokens(0.0, 4) == 1
    assert expected_tokens(1.0, 4) == 5
    assert expected_tokens(0.999999, 4) == pytest.approx(5, rel=1e-5)
    assert speedup(0.0, 4, 0.1) == pytest.approx(1 / 1.4)


def test_corollary_gamma_one():
    # Leviathan §3.3 Corollary 3.9: with γ = 1 the improvement is (1 + α)/(1 + c)
    for a, c in [(0.6, 0.1), (0.8, 0.05), (0.3, 0.5)]:
        assert speedup(a, 1, c) == pytest.approx((1 + a) / (1 + c))


def test_theorem_3_8_form():
    a, g, c = 0.8, 5, 0.05
    assert speedup(a, g, c) == pytest.approx((1 - a ** (g + 1)) / ((1 - a) * (g * c + 1)))


def test_optimal_gamma_and_vectorised():
    a, c = 0.8, 0.05
    g = optimal_gamma(a, c)
    grid = speedup(a, np.arange(1, 33), c)
    assert grid[g - 1] == grid.max()
    assert speedup(np.array([0.5, 0.9]), 3, 0.1).shape == (2,)


def test_result_and_errors():
    r = speculative(0.8, 5, 0.05, target_step_s=0.02)
    assert r.data["tpot_s"] == pytest.approx(0.02 * (5 * 0.05 + 1) / r.data["expected_tokens"])
    with pytest.raises(LlmcalcError, match="--alpha"):
        expected_tokens(1.2, 3)
    with pytest.raises(LlmcalcError, match="--gamma"):
        speedup(0.5, 0, 0.1)


def test_cli():
    res = CliRunner().invoke(app, ["speculative", "--alpha", "0.8", "--gamma", "5", "--cost-ratio", "0.05", "--json"])
    assert res.exit_code == 0, res.output
    assert '"speedup"' in res.output


@pytest.mark.parametrize("args,needles", [
    (["--alpha", "nan"], ["--alpha", "got nan"]),
    (["--alpha", "1.5"], ["--alpha", "got 1.5"]),
    (["--alpha", "0.8", "--gamma", "0"], ["--gamma", "got 0"]),
    (["--alpha", "0.8", "--cost-ratio", "inf"], ["--cost-ratio", "got inf"]),
])
def test_cli_rejects_bad_numbers_in_one_line(args, needles):
    res = CliRunner().invoke(app, ["speculative", *args])
    assert res.exit_code == 2, res.output
    out = res.output.strip()
    assert "Traceback" not in out and "\n" not in out
    for n in needles:
        assert n in out
