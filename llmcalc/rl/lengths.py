"""Response lengths of an RL batch: a distribution with a tail, its expected longest sample, and a compact
set of weighted "cohorts" that stand in for the N samples of one batch.

Three ways to give the distribution (lengths in tokens, optionally capped at the generation limit):

- ``lognormal(mean, cv)``: σ² = ln(1 + cv²), μ = ln(mean) − σ²/2, so E[X] = mean and sd/mean = cv
  (the lognormal moment identities; Johnson, Kotz & Balakrishnan, *Continuous Univariate Distributions*
  vol. 1, ch. 14). The cap clips X to min(X, cap): responses that hit the limit are truncated.
- ``from_percentiles(p50, p90, p99)``: a lognormal through them: μ = ln p50, σ by least squares on
  the two z-scores (z90 = 1.2816, z99 = 2.3263): σ = Σ z·(ln p − μ) / Σ z².
- ``table(lengths)``: the empirical distribution of a small table (quantiles by linear interpolation).

Expected order statistics, computed, not approximated: X = F⁻¹(Φ(Z)) with Z standard normal (for the lognormal
X = e^{μ+σZ}), and the i-th smallest of N has Φ(Z_(i:N)) ~ Beta(i, N − i + 1) (David & Nagaraja, *Order
Statistics*, 3rd ed., §2.1-2.2), so
E[X_(i:N)] = ∫ F⁻¹(Φ(z)) · Φ(z)^{i−1} Φ(−z)^{N−i} φ(z) dz / B(i, N − i + 1), and the longest is i = N.
The integral is taken on a grid around Blom's position Φ⁻¹((i − 0.375)/(N + 0.25)) (Blom 1958, used only to place
the grid). Blom's position itself gives E[Z_(i:N)] for a normal; through e^{σz} it gave exp(E[ln X_(i:N)]), the
geometric mean (Jensen): the median, not the mean, at N = 1 (0.71 × mean at cv 1, 0.32 × at cv 3), the longest of
8,192 at cv 1 5% short, and the batch's tokens short by up to 1/√(1 + cv²) at small N.

Cohorts: the N expected order statistics grouped by rank. The longest samples stay single (ranks N, N−1, then
groups of 2, 4, 8, …) so the tail that decides a synchronous step is resolved sample by sample; the bulk is
grouped in at most ``max(1, N // 64)`` samples per cohort. A cohort of at most ``EXACT_SIZE`` ranks, or within the
top or bottom ``EXACT_TOP`` ranks, takes the mean of its ranks' expected order statistics (above); any other, in
the bulk, the mean of F⁻¹ over its quantile band N·∫ F⁻¹(p) dp over [(a − 1)/N, b/N] (midpoint rule on
64 sub-bands), to which a band of ranks' expected order statistics sum up to its edges (Σ_i E[X_(i:N)] = N·E[X]
over all ranks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from ..core.checks import check_count, check_number
from ..core.errors import LlmcalcError

SRC_ORDER = ("E[X_(N:N)] = ∫ F⁻¹(Φ(z))·N·Φ(z)^{N−1}·φ(z) dz: Φ(Z_(N:N)) ~ Beta(N, 1) (David & Nagaraja, Order "
             "Statistics §2.1), by quadrature")
# Which cohorts take their exact expected order statistics: those of at most EXACT_SIZE ranks (every cohort of a
# batch under 64·(EXACT_SIZE + 1) samples) and those within the top or bottom EXACT_TOP ranks (the tail that decides a
# drain, and the shortest); the other bulk cohorts take quantile-band means. Exact cohorts for every rank of a
# 4,096-sample batch took 4 s with one math.erfc per grid point; log_phi and this rule keep any batch near 30 ms.
EXACT_SIZE = 8
EXACT_TOP = 128
_GRID = 401  # quadrature points per rank: within 1.1e-4 of a 2,001-point grid over cv 0.1-3, n 1-1e5, caps, tables
SRC_LOGNORMAL = "lognormal with mean m and cv: σ² = ln(1 + cv²), μ = ln m − σ²/2 (moment identities)"
Z90, Z99 = NormalDist().inv_cdf(0.90), NormalDist().inv_cdf(0.99)
_ND = NormalDist()
_LOG_2PI_HALF = 0.5 * math.log(2 * math.pi)
_LP_H, _LP_Z = 1 / 64, 37.0  # table step and half-range of ln Φ; past -37 erfc leaves the normal doubles


@lru_cache(maxsize=1)
def _log_phi_table() -> tuple[np.ndarray, np.ndarray]:
    """ln Φ(z) and its slope φ(z)/Φ(z) on z = -37 … 37 in steps of 1/64 (math.erfc, once per process)."""
    z = np.arange(-_LP_Z, _LP_Z + _LP_H / 2, _LP_H)
    f = np.array([math.log(0.5 * math.erfc(-x / math.sqrt(2))) for x in z.tolist()])
    return f, np.exp(-z * z / 2 - _LOG_2PI_HALF - f)


def log_phi(z) -> np.ndarray:
    """ln Φ(z) for an array, without a Python call per element: cubic Hermite interpolation of the table (value and
    slope at each knot; error ≤ h⁴/384·max|(ln Φ)⁗| ≈ 1e-10 at h = 1/64); below -37 the asymptotic series
    ln Φ(z) = -z²/2 - ln(-z) - ½ln 2π + ln(1 - z⁻² + 3z⁻⁴ - 15z⁻⁶ + 105z⁻⁸) (Abramowitz & Stegun 26.2.12), past 37
    ln Φ = -Φ(-z), which is 0 in doubles. numpy has no erfc, and one math.erfc per grid point (np.vectorize) cost
    4 s for a 4,096-sample batch's order statistics."""
    f, m = _log_phi_table()
    z = np.asarray(z, dtype=float)
    t = (np.clip(z, -_LP_Z, _LP_Z) + _LP_Z) / _LP_H
    k = np.minimum(t.astype(np.int64), len(f) - 2)
    u = t - k
    u2, u3 = u * u, u * u * u
    out = ((2 * u3 - 3 * u2 + 1) * f[k] + (u3 - 2 * u2 + u) * _LP_H * m[k] + (3 * u2 - 2 * u3) * f[k + 1]
           + (u3 - u2) * _LP_H * m[k + 1])
    low = z < -_LP_Z
    if np.any(low):
        x = z[low]
        r = 1 / (x * x)
        out[low] = -x * x / 2 - np.log(-x) - _LOG_2PI_HALF + np.log1p(r * (-1 + r * (3 + r * (-15 + 105 * r))))
    out[z > _LP_Z] = 0.0
    return out


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
            # ``quantile`` draws F⁻¹ linear between the sorted values at p = k/(m − 1), then clipped at the cap: its
            # mean is each segment's mean of min(line, cap) (the arithmetic mean of the values was another
            # distribution's: table:1000,2000,4000,16000 said mean 5,750 while the cohorts held 4,833 a sample)
            v = np.sort(np.asarray(self.values, dtype=float))
            c = self.cap
            if len(v) == 1:
                return float(min(v[0], c) if c else v[0])
            a, b = v[:-1], v[1:]
            if not c:
                return float(np.mean((a + b) / 2))
            f = np.clip((c - a) / np.where(b > a, b - a, 1.0), 0.0, 1.0)  # share of each segment below the cap
            seg = np.where(b <= c, (a + b) / 2, np.where(a >= c, c, f * (a + c) / 2 + (1 - f) * c))
            return float(np.mean(seg))
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
        """E[max of n] (SRC_ORDER)."""
        return float(self.order_stats([n], n)[0])

    def order_stats(self, ranks, n: int) -> np.ndarray:
        """E[X_(i:n)] for each rank i (1 = shortest), clipped to [1, cap] as ``quantile`` draws: the integral of
        the module docstring on a grid per rank, from 12 of Z_(i:n)'s standard deviations below Blom's position to
        12 above plus σ (e^{σz} tilts the density up by σ·Var Z_(i:n) ≤ σ), in log space so that a huge σ does not
        overflow. The density's constant 1/B(i, n − i + 1) is replaced by the grid's own normalisation."""
        i = np.asarray(ranks, dtype=float)[:, None]
        p = (i - 0.375) / (n + 0.25)
        c = np.vectorize(_ND.inv_cdf, otypes=[float])(p)
        # sd of Z_(i:n) by the delta method: sd(U_(i:n)) / φ(c), sd(U) = √(p(1 − p)/(n + 2)) (the Beta's)
        s = np.sqrt(p * (1 - p) / (n + 2)) / np.exp(-c * c / 2) * math.sqrt(2 * math.pi)
        tilt = self.sigma if self.kind == "lognormal" else 0.0
        z = c - 12 * s + (24 * s + tilt) * np.linspace(0.0, 1.0, _GRID)
        # Φ underflowing to 0 far out: log 0 = −inf, weight 0; where the power is 0 (Φ⁰ = 1) np.where takes 0 and
        # the discarded 0·(−inf) is not an error
        log_lo = log_phi(z)  # ln Φ(z)
        log_hi = log_phi(-z)  # ln Φ(−z)
        with np.errstate(divide="ignore", invalid="ignore"):
            logw = -z * z / 2 + np.where(i > 1, (i - 1) * log_lo, 0.0) + np.where(i < n, (n - i) * log_hi, 0.0)
        if self.kind == "lognormal":
            logx = self.mu + self.sigma * z
        else:
            logx = np.log(np.quantile(np.asarray(self.values, dtype=float), np.exp(log_lo)))
        logx = np.maximum(logx, 0.0)  # at least one token
        if self.cap:
            logx = np.minimum(logx, math.log(self.cap))
        top = logw.max(axis=1, keepdims=True)
        w = np.exp(logw - top)
        e = np.trapezoid(np.exp(logx + logw - top), z, axis=1) / np.trapezoid(w, z, axis=1)
        # a weighted mean of values in [1, cap] lies there; the quotient's last bit could step past the cap
        return np.clip(e, 1.0, self.cap or np.inf)

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
        is_exact = [exact_cohort(n, hi, size) for hi, size in zip(ranks_hi, sizes, strict=True)]
        exact = [np.arange(hi - size + 1, hi + 1) for hi, size, x in zip(ranks_hi, sizes, is_exact, strict=True) if x]
        # one order_stats call over every exact cohort's ranks, one quantile call over every band's midpoints
        e = self.order_stats(np.concatenate(exact), n) if exact else np.zeros(0)
        mids = [((hi - size) + (np.arange(64) + 0.5) * size / 64) / n
                for hi, size, x in zip(ranks_hi, sizes, is_exact, strict=True) if not x]
        q = self.quantile(np.concatenate(mids)) if mids else np.zeros(0)
        e_parts = iter(np.split(e, np.cumsum([len(r) for r in exact])[:-1]) if exact else [])
        q_parts = iter(np.split(q, len(mids)) if mids else [])
        lengths = [float(np.mean(next(e_parts) if x else next(q_parts))) for x in is_exact]
        return np.asarray(lengths), np.asarray(sizes, dtype=float)

    def tail_weight(self) -> float:
        """E[max of 1024] / mean: how far the tail reaches (1 for equal lengths)."""
        return self.expected_max(1024) / self.mean()


def exact_cohort(n: int, hi: int, size: int) -> bool:
    """Whether the cohort of ranks hi − size + 1 … hi of n takes exact expected order statistics (else a band mean):
    small cohorts, and the top and bottom EXACT_TOP ranks, where a band's mean of F⁻¹ strays most from its ranks'."""
    return size <= EXACT_SIZE or hi - size >= n - EXACT_TOP or hi <= EXACT_TOP


@lru_cache(maxsize=64)
def _cohorts(dist: LengthDist, n: int) -> tuple[np.ndarray, np.ndarray]:
    return dist._cohorts(n)


def lognormal(mean: float, cv: float, cap: float | None = None) -> LengthDist:
    check_number(mean, "--response-len mean (tokens)")
    check_number(cv, "--response-len cv", low=0, low_ok=True)
    if cap is not None:
        check_number(cap, "--max-response (tokens)", low=1, low_ok=True)
    # ln(1 + cv²) = 2·ln cv + ln(1 + cv⁻²): the same number, without cv² overflowing (cv > 1.3e154 gave σ = inf,
    # μ = −inf and a NaN traceback)
    s2 = 2 * math.log(cv) + math.log1p(1 / (cv * cv)) if cv > 1 else math.log1p(cv * cv)
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
