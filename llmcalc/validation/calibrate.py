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
# A fitted efficiency (a fraction of the dense peak) below this is reported as implausible, not refused: large
# published runs sit at 0.2-0.6 MFU, and a well-sized small job well above 0.05 (SRC_MFU_RANGE).
PLAUSIBLE_FLOOR = 0.05
SRC_MFU_RANGE = ("Narayanan et al. 2021 Table 1: 44-52% on A100; Megatron-Core r0.8 H100 table up to 49%; "
                 "Llama 3 405B 38-43%; PaLM 46%")
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
    warnings: tuple[str, ...] = ()


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
    # A measurement faster than every kernel at 100% of the dense peak (communication and bubble still counted)
    # cannot be fitted by any efficiency: that is an input error, not a profile.
    from dataclasses import replace as _replace

    ceiling = TrainingEfficiency(1.0, 1.0, 1.0, 1.0, 0.0, origin="ceiling", flat=1.0)
    for m in measurements:
        floor = m.predict(_replace(ceiling))
        if m.step_time_s < floor * (1 - 1e-9):
            raise LlmcalcError(f"{m.label}: measured {m.step_time_s:g} s is faster than the same layout at 100% of "
                               f"the dense peak ({floor:.4g} s): check the step time, batch, sequence length, GPU "
                               "count and --hardware")
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
    worst = max(rows, key=lambda row: abs(row[3]))
    if at_bound and abs(worst[3]) > 0.05:
        raise LlmcalcError(f"the measurements cannot be matched: {', '.join(at_bound)} ran into the end of its range "
                           f"and {worst[0]} is still {worst[3]:+.0%} off (measured {worst[1]:.4g} s, predicted "
                           f"{worst[2]:.4g} s): check that measurement's inputs")
    warnings = []
    if at_bound:
        warnings.append(f"at a bound: {', '.join(at_bound)} (the data push it outside its range: check the "
                        "measurements and layouts)")
        te = replace(te, source=te.source + "; " + warnings[-1])
    low = [f"{n} {getattr(te, n):.3g}" for n in names if n != "half_width" and getattr(te, n) < PLAUSIBLE_FLOOR]
    if low:  # a fit can match any slow time by a tiny efficiency: say that the time holds something else
        warnings.append(f"implausibly low: {', '.join(low)} of peak, where published training runs reach 0.2-0.6 MFU "
                        f"({SRC_MFU_RANGE}): the measured time likely holds something this model does not (data "
                        "loading, host stalls, checkpointing, another job) or is in the wrong unit")
    return Fit(te, names, rows, float(np.sqrt(np.mean(r**2))), it, tuple(warnings))


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


# ---------------------------------------------------------------- measurements from a small YAML file

LAYOUT_KEYS = ("tp", "pp", "dp", "ep", "cp", "zero", "sp", "interleave")
ROW_KEYS = {"model", "gpus", "global_batch", "micro_batch", "seq", "recompute", "attention", "tp_comm_overlap",
            "step_time", "tokens_per_s", "label", *LAYOUT_KEYS}


def measurement_from(row: dict, hw, where: str, options: bool = False) -> Measurement:
    """One measured layout from a mapping (a YAML row or CLI flags); errors name ``where`` and the key, or with
    ``options`` (the command line) the option the user typed: ``--step-time``, not ``step_time``."""
    from ..core import units
    from ..core.catalogue import load_model
    from ..training.layout import Layout, check_layout

    def opt(k: str) -> str:
        return "--" + k.replace("_", "-") if options else k

    at = f"{where}: " if where else ""
    unknown = sorted(set(row) - ROW_KEYS)
    if unknown:
        from ..core.errors import close_matches

        hints = "; ".join(f"{k}: did you mean {', '.join(close_matches(k, ROW_KEYS)) or '?'}" for k in unknown)
        raise LlmcalcError(f"{at}unknown key(s) {', '.join(unknown)} ({hints}); allowed: "
                           f"{', '.join(sorted(ROW_KEYS))}")
    for k in ("model", "global_batch"):
        if row.get(k) is None:
            raise LlmcalcError(f"{at}needs {opt(k)}")
    if (row.get("step_time") is None) == (row.get("tokens_per_s") is None):
        raise LlmcalcError(f"{at}give exactly one of {opt('step_time')} (e.g. '2.1 s') or {opt('tokens_per_s')} "
                           "(e.g. 81000)")
    m = load_model(str(row["model"]))

    def integer(k, default):
        v = row.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "zero" else 1):
            raise LlmcalcError(f"{at}{opt(k)} must be a whole number >= {0 if k == 'zero' else 1}, got {v!r}")
        return v

    tp, pp, cp = integer("tp", 1), integer("pp", 1), integer("cp", 1)
    gpus = row.get("gpus")
    dp = row.get("dp")
    if dp is None:
        if gpus is None:
            dp = 1
        else:
            g = integer("gpus", 1)
            if g % (tp * pp * cp):
                raise LlmcalcError(f"{at}gpus {g} is not divisible by tp·pp·cp = {tp * pp * cp}")
            dp = g // (tp * pp * cp)
    lay = Layout(tp=tp, pp=pp, dp=integer("dp", dp) if "dp" in row else dp, ep=integer("ep", 1), cp=cp,
                 zero=integer("zero", 0), sp=bool(row.get("sp", tp > 1)), interleave=integer("interleave", 1))
    if gpus is not None and lay.gpus != gpus:
        raise LlmcalcError(f"{at}gpus {gpus} != tp·pp·dp·cp = {lay.gpus}")
    gb, mb, seq = integer("global_batch", None), integer("micro_batch", 1), integer("seq", 2048)
    check_layout(m, lay, micro_batch=mb, seq=seq, global_batch=gb)
    try:
        if row.get("step_time") is not None:
            v = row["step_time"]
            if isinstance(v, bool):
                raise LlmcalcError(f"{opt('step_time')} must be a time such as 2.1 or '2.1 s', got {v!r}")
            try:
                t = float(v)
            except (TypeError, ValueError):
                t = units.parse(str(v), units.SECONDS)
        else:
            v = row["tokens_per_s"]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise LlmcalcError(f"{opt('tokens_per_s')} must be a number, got {v!r}")
            from ..core.checks import check_number

            check_number(float(v), opt("tokens_per_s"))  # 0 tokens/s is no step time (was a ZeroDivisionError)
            t = gb * seq / float(v)
    except LlmcalcError as e:
        raise LlmcalcError(f"{at}{e}") from None
    from ..core.checks import check_number

    check_number(t, f"{at}{opt('step_time')}" if row.get("step_time") is not None
                 else f"{at}step time from {opt('tokens_per_s')}")
    att = str(row.get("attention", "flash")).lower()
    rc = str(row.get("recompute", "none")).lower()
    return Measurement(m, hw, lay, gb, t, micro_batch=mb, seq=seq, recompute=rc, attention=att,
                       tp_comm_overlap=bool(row.get("tp_comm_overlap", False)),
                       label=str(row.get("label") or f"{m.name} tp{tp} pp{pp} dp{lay.dp} gb{gb}"))


def read_measurements(path: str, hw=None) -> tuple[object, list[Measurement], tuple[str, ...] | None]:
    """(hardware, measurements, parameters to fit or None) from a calibration YAML::

        hardware: h100-sxm
        fit: [matmul]                 # optional
        measurements:
          - {model: llama-3.1-8b, gpus: 8, global_batch: 64, seq: 4096, step_time: 3.1 s}
    """

    from ..core.catalogue import load_hardware, load_user_yaml

    doc = load_user_yaml(path, "--measurements")
    if not isinstance(doc, dict) or not isinstance(doc.get("measurements"), list) or not doc["measurements"]:
        raise LlmcalcError(f"--measurements {path}: expected 'measurements:' with a list of measured layouts")
    if hw is None:
        if "hardware" not in doc:
            raise LlmcalcError(f"--measurements {path}: needs 'hardware:' (or pass --hardware)")
        hw = load_hardware(str(doc["hardware"]))
    fit_names = doc.get("fit")
    if fit_names is not None and (not isinstance(fit_names, list) or not all(isinstance(x, str) for x in fit_names)):
        raise LlmcalcError(f"--measurements {path}: 'fit' must be a list such as [matmul, attention_flash]")
    rows = []
    for i, row in enumerate(doc["measurements"]):
        if not isinstance(row, dict):
            raise LlmcalcError(f"--measurements {path}: measurement {i + 1} must be a mapping of keys")
        rows.append(measurement_from(row, hw, f"{path}: measurement {i + 1}"))
    return hw, rows, None if fit_names is None else tuple(fit_names)
