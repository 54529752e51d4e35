"""Fit the training efficiency terms to measured step times (``llmcalc calibrate``).

A user gives one or more measured layouts (step time, or tokens/s); we predict each with
:func:`llmcalc.training.step.training_step` and adjust the chosen terms of
:class:`~llmcalc.core.efficiency.TrainingEfficiency` to minimise the sum of squared LOG residuals
ln(predicted/measured) (relative errors weigh alike for a 1 s and a 100 s step). Gauss-Newton with a
numerical Jacobian and box bounds (fractions in (0, 1]); with one parameter and one measurement the
fit is exact. The residual of every measurement is reported, and the result is written as a profile YAML
that every command reads with ``--profile FILE``.

The same routine calibrated the shipped defaults (benchmarks/report_training.py says which published rows
were fitted and which were held out).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..core.efficiency import TrainingEfficiency
from ..core.errors import LlmcalcError

FITTABLE = ("matmul", "attention_flash", "attention_unfused", "moe", "half_width")
BOUNDS = {"matmul": (1e-3, 1.0), "attention_flash": (1e-3, 1.0), "attention_unfused": (1e-3, 1.0),
          "moe": (1e-3, 1.0), "half_width": (0.0, 1e5)}


@dataclass(frozen=True)
class Measurement:
    """One measured training layout: what ``llmcalc step`` takes, plus the measured step time."""

    model: object
    hardware: object
    layout: object
    global_batch: int
    step_time_s: float
    micro_batch: int = 1
    seq: int = 2048
    recompute: str = "none"
    attention: str = "flash"
    tp_comm_overlap: bool = False
    label: str = ""
    extra: dict = field(default_factory=dict)

    def predict(self, te: TrainingEfficiency) -> float:
        from ..training.step import training_step

        r = training_step(self.model, self.hardware, self.layout, global_batch=self.global_batch,
                          micro_batch=self.micro_batch, seq=self.seq, gpus=self.layout.gpus, recompute=self.recompute,
                          efficiency=te, attention=self.attention, tp_comm_overlap=self.tp_comm_overlap,
                          check_memory=False, **self.extra)
        return float(r.data["step_time_s"])


@dataclass(frozen=True)
class Fit:
    efficiency: TrainingEfficiency
    parameters: tuple[str, ...]
    rows: list  # (label, measured s, predicted s, residual = predicted/measured - 1)
    rms_log_residual: float
    iterations: int


def _with(te: TrainingEfficiency, names, x) -> TrainingEfficiency:
    return replace(te, **{n: float(v) for n, v in zip(names, x, strict=True)})


def fit(measurements: list[Measurement], base: TrainingEfficiency, parameters=("matmul",), *,
        origin: str = "calibrated", max_iter: int = 50) -> Fit:
    """Least-squares fit of ``parameters`` (names in :data:`FITTABLE`) to the measurements' step times."""
    names = tuple(parameters)
    bad = [n for n in names if n not in FITTABLE]
    if bad:
        raise LlmcalcError(f"--fit accepts {', '.join(FITTABLE)}; got {', '.join(bad)}")
    if not measurements:
        raise LlmcalcError("calibrate needs at least one measured layout")
    if len(names) > len(measurements):
        raise LlmcalcError(f"{len(names)} parameters ({', '.join(names)}) cannot be fitted to "
                           f"{len(measurements)} measurement(s): give at least as many measured layouts")
    if base.flat is not None:
        raise LlmcalcError("calibrate fits the per-kernel terms; do not combine it with --compute-efficiency")
    lo = np.array([BOUNDS[n][0] for n in names])
    hi = np.array([BOUNDS[n][1] for n in names])
    measured = np.array([m.step_time_s for m in measurements], float)

    def resid(x):
        te = _with(base, names, x)
        return np.log(np.array([m.predict(te) for m in measurements]) / measured)

    x = np.clip(np.array([getattr(base, n) for n in names], float), lo, hi)
    r = resid(x)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        J = np.empty((len(r), len(x)))
        for j in range(len(x)):
            h = max(1e-6, 1e-4 * abs(x[j]))
            xp = x.copy()
            xp[j] = xp[j] + h if xp[j] + h <= hi[j] else xp[j] - h
            J[:, j] = (resid(xp) - r) / (xp[j] - x[j])
        step, *_ = np.linalg.lstsq(J, -r, rcond=None)
        lam, improved = 1.0, False
        while lam > 1e-4:  # backtracking keeps each accepted step a decrease of the squared residual
            xn = np.clip(x + lam * step, lo, hi)
            rn = resid(xn)
            if rn @ rn < r @ r - 1e-15:
                x, r, improved = xn, rn, True
                break
            lam /= 2
        if not improved or np.max(np.abs(lam * step) / np.maximum(np.abs(x), 1e-9)) < 1e-7:
            break
    te = _with(base, names, x)
    te = replace(te, origin=origin, source=f"least-squares fit of {', '.join(names)} to {len(measurements)} "
                                           f"measured step time(s); rms log residual {np.sqrt(np.mean(r**2)):.3g}")
    rows = [(m.label or f"measurement {i + 1}", m.step_time_s, m.step_time_s * float(np.exp(ri)),
             float(np.exp(ri) - 1)) for i, (m, ri) in enumerate(zip(measurements, r, strict=True))]
    at_bound = [n for n, v, a, b in zip(names, x, lo, hi, strict=True) if v <= a * 1.0001 or v >= b * 0.9999]
    if at_bound:
        te = replace(te, source=te.source + f"; at a bound: {', '.join(at_bound)} (the data push it outside its "
                                            "range: check the measurements and layouts)")
    return Fit(te, names, rows, float(np.sqrt(np.mean(r**2))), it)


def profile_yaml(f: Fit, hardware_name: str) -> str:
    """The profile file ``--profile`` reads: the fitted set, and the residuals it was fitted with."""
    import yaml

    te = f.efficiency
    doc = {"hardware": hardware_name,
           "efficiency": {"matmul": round(te.matmul, 5), "attention_flash": round(te.attention_flash, 5),
                          "attention_unfused": round(te.attention_unfused, 5), "moe": round(te.moe, 5),
                          "half_width": round(te.half_width, 3)},
           "fit": {"parameters": list(f.parameters), "rms_log_residual": round(f.rms_log_residual, 6),
                   "measurements": [{"label": lab, "measured_s": float(f"{ms:.6g}"), "predicted_s": float(f"{ps:.6g}"),
                                     "residual": round(res, 6)} for lab, ms, ps, res in f.rows]}}
    return "# llmcalc calibration profile (llmcalc calibrate); use it with --profile FILE\n" + yaml.safe_dump(
        doc, sort_keys=False)
