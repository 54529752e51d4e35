"""Response lengths of an RL batch: a distribution with a tail, its expected longest sample, and a compact
set of weighted "cohorts" that stand in for the N samples of one batch.

Three ways to give the distribution (lengths in tokens, optionally capped at the generation limit):

- ``lognormal(mean, cv)``: σ² = ln(1 + cv²), μ = ln(mean) − σ²/2, so E[X] = mean and sd/mean = cv
  (the lognormal moment identities; Johnson, Kotz & Balakrishnan, *Continuous Univariate Distributions*
  vol. 1, ch. 14). The cap clips X to min(X, cap): responses that hit the limit are truncated.
- ``from_percentiles(p50, p90, p99)``: a lognormal through them: μ = ln p50, σ by least squares on
  the two z-scores (z90 = 1.2816, z99 = 2.3263): σ = Σ z·(ln p − μ) / Σ z².
- ``table(lengths)``: the empirical distribution of a small table (quantiles by linear interpolation).

The expected longest of N samples uses Blom's plotting position (Blom 1958, *Statistical Estimates and
Transformed Beta-Variables*): E[X_(i:N)] ≈ F⁻¹((i − 0.375)/(N + 0.25)), so E[max] ≈ F⁻¹((N − 0.375)/(N + 0.25)).

Cohorts: the N expected order statistics E[X_(i:N)] grouped by rank. The longest samples stay single
(ranks N, N−1, then groups of 2, 4, 8, …) so the tail that decides a synchronous step is resolved
sample by sample; the bulk is grouped in at most ``max(1, N // 64)`` samples per cohort.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from ..core.checks import check_count, check_number
from ..core.errors import LlmcalcError

SRC_BLOM = "Blom 1958: E[X_(i:N)] ≈ F⁻¹((i − 0.375)/(N + 0.25)); the longest of N at i = N"
SRC_LOGNORMAL = "lognormal with mean m and cv: σ² = ln(1 + cv²), μ = ln m − σ²/2 (moment identities)"
Z90, Z99 = NormalDist().inv_cdf(0.90), NormalDist().inv_cdf(0.99)
_ND = NormalDist()


@dataclass(frozen=True)
class LengthDist:
    """A response-length distribution (tokens). ``kind`` lognormal: ``mu``/``sigma``; table: ``values``."""

    kind: str
    mu: float = 0.0
    sigma: float = 0.0
    values: tuple[float, ...] = ()
    cap: float | None = None
    describe_as: str = ""

    def quantile(self, p) -> np.ndarray:
        """F⁻¹(p), clipped to [1, cap]."""
        p = np.asarray(p, dtype=float)
        if self.kind == "table":
            q = np.quantile(np.asarray(self.values, dtype=float), p)
        elif self.sigma == 0:
            q = np.full(p.shape, math.exp(self.mu))
        else:
            z = np.vectorize(_ND.inv_cdf, otypes=[float])(np.clip(p, 1e-12, 1 - 1e-12))
            q = np.exp(self.mu + self.sigma * z)
        q = np.maximum(q, 1.0)
        return np.minimum(q, self.cap) if self.cap else q

    def mean(self) -> float:
        """E[min(max(X, 1), cap)], the mean of what ``quantile`` draws (a response has at least one token); lognormal
        closed form e^{μ+σ²/2}·Φ((ln c − μ − σ²)/σ) + c·(1 − Φ((ln c − μ)/σ)) plus the floor's
        E[(1 − X)⁺] = Φ(−μ/σ) − e^{μ+σ²/2}·Φ((−μ − σ²)/σ) (partial expectations of the lognormal). Without the floor
        cv 1e30 gave "mean 0 tokens" beside "expected longest 1"."""
        if self.kind == "table":
            v = np.asarray(self.values, dtype=float)
            return float(np.mean(np.minimum(v, self.cap) if self.cap else v))
        m, s = self.mu, self.sigma
        full = math.exp(m + s * s / 2)
        if s == 0:
            return min(max(full, 1.0), self.cap) if self.cap else max(full, 1.0)
        floor = max(_ND.cdf(-m / s) - full * _ND.cdf((-m - s * s) / s), 0.0)
        if not self.cap:
            return full + floor
        lc = math.log(self.cap)
        return full * _ND.cdf((lc - m - s * s) / s) + self.cap * (1 - _ND.cdf((lc - m) / s)) + floor

    def expected_max(self, n) -> float:
        """Blom: E[max of n] ≈ F⁻¹((n − 0.375)/(n + 0.25))."""
        return float(self.quantile((n - 0.375) / (n + 0.25)))

    def cohorts(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(lengths, counts) of weighted cohorts standing in for the n expected order statistics, longest first
        (cached per distribution and n: a face asks for the same batch many times; copies are returned)."""
        lengths, counts = _cohorts(self, int(n))
        return lengths.copy(), counts.copy()

    def _cohorts(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        sizes, left, s, cap = [], n, 1, max(1, n // 64)
        while left > 0:  # 1, 1, 2, 4, … from the top, then groups of at most n // 64
            take = min(s, left)
            sizes.append(take)
            left -= take
            if len(sizes) > 1:
                s = min(2 * s, cap)
        ranks_hi = n - np.concatenate([[0], np.cumsum(sizes)[:-1]])  # highest rank in each cohort
        ps = []
        for hi, size in zip(ranks_hi, sizes, strict=True):
            ranks = np.arange(hi - size + 1, hi + 1, dtype=float)
            if size > 64:
                ranks = np.linspace(ranks[0], ranks[-1], 64)
            ps.append((ranks - 0.375) / (n + 0.25))
        # one quantile call over every cohort's positions (elementwise: each cohort's values as alone; issue #13)
        q = self.quantile(np.concatenate(ps))
        lengths = [float(np.mean(x)) for x in np.split(q, np.cumsum([len(p) for p in ps])[:-1])]
        return np.asarray(lengths), np.asarray(sizes, dtype=float)

    def tail_weight(self) -> float:
        """E[max of 1024] / mean: how far the tail reaches (1 for equal lengths)."""
        return self.expected_max(1024) / self.mean()


@lru_cache(maxsize=64)
def _cohorts(dist: LengthDist, n: int) -> tuple[np.ndarray, np.ndarray]:
    return dist._cohorts(n)


def lognormal(mean: float, cv: float, cap: float | None = None) -> LengthDist:
    check_number(mean, "--response-len mean (tokens)")
    check_number(cv, "--response-len cv", low=0, low_ok=True)
    if cap is not None:
        check_number(cap, "--max-response (tokens)", low=1, low_ok=True)
    s2 = math.log(1 + cv * cv)
    return LengthDist("lognormal", mu=math.log(mean) - s2 / 2, sigma=math.sqrt(s2), cap=cap,
                      describe_as=f"lognormal, mean {mean:g}, cv {cv:g}" + (f", capped at {cap:g}" if cap else ""))


def from_percentiles(p50: float, p90: float, p99: float, cap: float | None = None) -> LengthDist:
    for name, v in (("p50", p50), ("p90", p90), ("p99", p99)):
        check_number(v, f"--response-len {name} (tokens)")
    if not p50 <= p90 <= p99:
        raise LlmcalcError(f"--response-len percentiles must rise: p50 {p50:g} <= p90 {p90:g} <= p99 {p99:g}")
    mu = math.log(p50)
    sigma = (Z90 * (math.log(p90) - mu) + Z99 * (math.log(p99) - mu)) / (Z90 ** 2 + Z99 ** 2)
    return LengthDist("lognormal", mu=mu, sigma=sigma, cap=cap,
                      describe_as=f"lognormal through p50 {p50:g}, p90 {p90:g}, p99 {p99:g} (least squares on z)"
                      + (f", capped at {cap:g}" if cap else ""))


def table(values, cap: float | None = None) -> LengthDist:
    vals = [float(v) for v in values]
    if not vals:
        raise LlmcalcError("--response-len table needs at least one length")
    check_count(vals, "--response-len (tokens)")
    return LengthDist("table", values=tuple(vals), cap=cap,
                      describe_as=f"table of {len(vals)} lengths (empirical quantiles)")


def _number(x: str) -> float:
    """One value of --response-len: a plain float ('0.8', 'nan' for check_number to name), else a count with a
    k/M suffix as every other token option reads it ('2k' was refused here while --gpus 2k and --prompt-len 2k
    were read)."""
    from ..core.units import parse_count

    try:
        return float(x)
    except ValueError:
        return parse_count(x)


def parse_response_len(text: str, cap: float | None = None) -> LengthDist:
    """'4096,0.8' (mean, cv) | '2000,6000,16000' or '2k,6k,16k' (p50, p90, p99) | 'table:1000,2000,…' (lengths)."""
    t = text.strip()
    try:
        if t.startswith("table:"):
            return table([_number(x) for x in t[6:].split(",") if x.strip()], cap)
        parts = [_number(x) for x in t.split(",")]
    except ValueError:  # UnitError (parse_count's) is one
        raise LlmcalcError(f"--response-len expects 'mean,cv', 'p50,p90,p99' or 'table:l1,l2,…' (tokens), "
                           f"got {text!r}") from None
    if len(parts) == 2:
        return lognormal(parts[0], parts[1], cap)
    if len(parts) == 3:
        return from_percentiles(*parts, cap=cap)
    if len(parts) == 1:
        return lognormal(parts[0], 0.0, cap)
    raise LlmcalcError(f"--response-len expects 'mean,cv', 'p50,p90,p99' or 'table:l1,l2,…', got {text!r}")
