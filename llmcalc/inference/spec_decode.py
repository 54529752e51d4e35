"""Speculative decoding (Leviathan, Kalman and Matias 2023, "Fast Inference from Transformers via
Speculative Decoding").

A draft model proposes γ tokens; the target checks them in one forward pass and accepts each with
probability α (the acceptance rate, §3.1). Then (§3.2, eq. 1) the expected number of tokens
produced per target step is ``(1 − α^(γ+1)) / (1 − α)``, and (§3.3, Theorem 3.8) with c the cost of
one draft step relative to one target step, the expected wall-time improvement is
``(1 − α^(γ+1)) / ((1 − α)(γc + 1))``. At α = 1 both limits are γ + 1 and (γ + 1)/(γc + 1).

Arguments broadcast as numpy arrays (α sweeps).
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_count, check_number
from ..core.results import Result, derive

SRC_EQ1 = "Leviathan et al. 2023, §3.2 eq. 1 (expected tokens per target step)"
SRC_T38 = "Leviathan et al. 2023, §3.3 Theorem 3.8 (expected improvement in wall time)"
SRC_OPT = "Leviathan et al. 2023, §3.3 (optimal γ maximises Theorem 3.8's factor)"


def _check(alpha, gamma, cost_ratio=0.0, target_step_s=None):
    check_number(alpha, "--alpha", low=0, low_ok=True, high=1)
    check_count(gamma, "--gamma")
    check_number(cost_ratio, "--cost-ratio", low=0, low_ok=True, high=1e6)  # bounded: γ·c stays finite for γ <= 2**53
    check_number(target_step_s, "target_step_s")


def expected_tokens(alpha, gamma):
    """(1 − α^(γ+1)) / (1 − α), with the α → 1 limit γ + 1."""
    _check(alpha, gamma)
    a = np.asarray(alpha, dtype=float)
    safe = np.where(a < 1, a, 0.5)
    out = np.where(a < 1, (1 - safe ** (np.asarray(gamma) + 1)) / (1 - safe), np.asarray(gamma) + 1.0)
    return out if out.ndim else float(out)


def speedup(alpha, gamma, cost_ratio):
    """Theorem 3.8: expected tokens per target step / (γc + 1)."""
    _check(alpha, gamma, cost_ratio)
    out = expected_tokens(alpha, gamma) / (np.asarray(gamma) * np.asarray(cost_ratio, dtype=float) + 1)
    return out if np.ndim(out) else float(out)


def optimal_gamma(alpha: float, cost_ratio: float, max_gamma: int = 32) -> int:
    """The γ in 1..max_gamma with the largest Theorem 3.8 speed-up."""
    g = np.arange(1, max_gamma + 1)
    return int(g[np.argmax(speedup(alpha, g, cost_ratio))])


def speculative(alpha: float, gamma: int, cost_ratio: float, target_step_s: float | None = None) -> Result:
    """Expected tokens per target step, speed-up, optimal γ; with ``target_step_s`` the new TPOT."""
    _check(alpha, gamma, cost_ratio, target_step_s)
    a_lt1 = alpha < 1
    tok = (derive("expected_tokens", "(1 - alpha**(gamma + 1))/(1 - alpha)", "token", SRC_EQ1,
                  label="expected tokens per target step", alpha=alpha, gamma=gamma) if a_lt1 else
           derive("expected_tokens", "gamma + 1", "token", SRC_EQ1 + " (limit α → 1)",
                  label="expected tokens per target step", gamma=gamma))
    figs = [tok, derive("speedup", "tokens/(gamma*c + 1)", "ratio", SRC_T38,
                        label="expected speed-up over plain decoding", tokens=tok.value, gamma=gamma, c=cost_ratio)]
    g_opt = optimal_gamma(alpha, cost_ratio)
    figs.append(derive("optimal_gamma", "g", "token", SRC_OPT, label="best γ (1..32) for this α and c", g=g_opt))
    data = {"alpha": alpha, "gamma": gamma, "cost_ratio": cost_ratio, "expected_tokens": tok.value,
            "speedup": figs[1].value, "optimal_gamma": g_opt,
            "speedup_at_optimal_gamma": speedup(alpha, g_opt, cost_ratio)}
    if target_step_s is not None:
        figs.append(derive("tpot_s", "t_target*(gamma*c + 1)/tokens", "s", SRC_T38,
                           label="time per output token with speculation", t_target=target_step_s, gamma=gamma,
                           c=cost_ratio, tokens=tok.value))
        data["tpot_s"] = figs[-1].value
    notes = ["α is the expected acceptance rate (Leviathan §3.1), assumed i.i.d. per token",
             "c = cost of one draft step / cost of one target step; the target's verification step is assumed "
             "to cost the same as one decode step (memory-bound decode)"]
    # Leviathan §3.3 Corollary 3.9: some γ beats plain decoding iff α > c (each extra draft token adds α^k <= α to the
    # tokens and c to the cost). Below it the "best γ" was printed as if speculation paid.
    data["speculation_pays"] = bool(alpha > cost_ratio)
    if not data["speculation_pays"]:
        notes.insert(0, f"WARNING: α {alpha:g} <= c {cost_ratio:g}: no γ beats plain decoding (Leviathan §3.3, "
                        "Corollary 3.9: speculation pays only if α > c); the best γ shown is the least slow")
    return Result(f"Speculative decoding: α {alpha:g}, γ {gamma}, c {cost_ratio:g}", tuple(figs), tuple(notes), data)
