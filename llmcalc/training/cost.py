"""Training compute, time and cost: total FLOPs, GPU-hours, wall-clock days, dollars, and the inverse forms.

Two FLOP counts are kept apart, as the papers do:

- model FLOPs: what the model needs (forward + backward = 6·N per token, or the exact matmul count);
  MFU is measured against them;
- hardware FLOPs: what the GPUs execute, adding any activation recomputation (8·N per token with full
  recompute, Narayanan et al. 2021 §5.1); HFU is measured against them.

The time is either model FLOPs / (n · MFU · peak) or, when the achieved rate X is given (as Narayanan
et al. report it, counting recompute), hardware FLOPs / (n · X), i.e. their eq. 4: 8TP/(nX).
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_fraction, check_number, check_price
from ..core.errors import LlmcalcError
from ..core.results import Figure, Result, derive
from ..core.specs import Hardware, Model

SRC_6ND = "6·N FLOPs per token: forward 2N + backward 4N (Kaplan et al. 2020 §2.1; Brown et al. 2020 App. D)"
SRC_8ND = "8·N per token with full recompute: one more forward (Narayanan et al. 2021 §5.1, eq. 4: 8TP/(nX))"
SRC_TIME = "time = FLOPs / (GPUs · achieved FLOP/s per GPU) (Narayanan et al. 2021 §5.1, eq. 4)"
SRC_MFU = "MFU = model FLOPs / (time · GPUs · peak); HFU counts recompute (Chowdhery et al. 2022 App. B)"
SRC_COST = "GPU-hours x price per GPU-hour"
DAY_S = 86400.0


# The least rate a time is computed for: below it FLOPs/(GPUs·rate) overflows float64 (--mfu 5e-324, issue #13).
# With FLOPs <= 6·2**53·2**53 (counts are bounded at the edge) and a peak >= 1e12 FLOP/s every time stays finite.
MIN_ACHIEVED_FLOPS_PER_S = 1e6  # = 1e-6 TFLOP/s


def _arr(x, option: str, *, allow_zero: bool = False, high=None):
    """A finite number (or array) > 0 (>= 0 with ``allow_zero``, <= ``high`` if given), else a clear error."""
    if x is None:
        return None
    check_number(x, option, low_ok=allow_zero, high=high)  # on the raw value: True is not 1 GPU
    if high is None:  # counts, FLOPs, days: past 1e30 products overflow float64 (issue #13)
        check_number(x, option, low_ok=allow_zero, high=1e30)
    v = x if isinstance(x, (int, float)) and not isinstance(x, bool) else np.asarray(x, dtype=float)
    return check_number(v, option, low_ok=allow_zero, high=high)


def per_token_flops(model: Model | None, params=None, *, factor=None, recompute: str = "none",
                    exact_seq: int | None = None) -> tuple[list[Figure], str]:
    """Model and hardware FLOPs per training token, with a sentence saying which count is used."""
    if exact_seq is not None:
        if model is None:
            raise LlmcalcError("--exact needs a MODEL (the exact count walks its matmuls), not just --params")
        if params is not None:  # the exact count walks the model's own matmuls: --params would be ignored
            raise LlmcalcError("--exact counts the MODEL's own matmuls, so --params would be ignored; give one of "
                               "the two")
        from ..model.flops import forward_flops

        r = forward_flops(model, 1, exact_seq, recompute=recompute)
        d = r.data
        model_pt = derive("model_flops_per_token", "train_step/L", "FLOP", "llmcalc.model.flops: exact matmul count "
                          "(forward + backward = 3 x forward)", label="model FLOPs per token (exact)",
                          train_step=d["train_step_flops"], L=exact_seq)
        hw_pt = derive("hardware_flops_per_token", "hardware/L", "FLOP", r["hardware"].source,
                       label=f"hardware FLOPs per token (exact, recompute {recompute})",
                       hardware=d["hardware_flops"], L=exact_seq)
        how = (f"exact matmul count per token at sequence {exact_seq} (attention over the full L x L, "
               f"recompute {recompute}), times tokens")
        return [model_pt, hw_pt], how
    given = params is not None
    if params is None:
        if model is None:
            raise LlmcalcError("give a MODEL or --params N")
        from ..model.params import param_breakdown

        params = param_breakdown(model).data["active"]
    hw_factor = factor if factor is not None else (8 if recompute == "full" else 6)
    if hw_factor not in (6, 8):
        raise LlmcalcError(f"--flops-per-token-factor must be 6 (no recompute) or 8 (full recompute), got {factor}")
    # 8·N is full recompute's one extra forward (Narayanan et al. 2021 §5.1); 6·N has none. A factor that contradicts
    # --recompute was followed silently (6 with full printed 6·N hardware FLOPs): refuse it. Factor 8 with the default
    # recompute "none" stays the documented way to say full recompute.
    if (factor == 6 and recompute == "full") or (factor == 8 and recompute == "selective"):
        raise LlmcalcError(f"--flops-per-token-factor {factor} contradicts --recompute {recompute}: full recompute "
                           "executes 8·N FLOPs per token, none or selective 6·N; give one of the two")
    n = Figure("params", params, "param", source="given (--params)" if given else
               "llmcalc.model.params (active parameters per token)", label="N: parameters per token (active)")
    model_pt = derive("model_flops_per_token", "6*N", "FLOP", SRC_6ND, label="model FLOPs per token (6·N)",
                      N=params)
    hw_pt = derive("hardware_flops_per_token", "factor*N", "FLOP", SRC_8ND if hw_factor == 8 else SRC_6ND,
                   label=f"hardware FLOPs per token ({hw_factor}·N)", factor=hw_factor, N=params)
    how = (f"6·N·T model FLOPs (attention ignored); hardware FLOPs {hw_factor}·N·T"
           + (" (full recompute adds one forward)" if hw_factor == 8 else ""))
    return [n, model_pt, hw_pt], how


def training_cost(model: Model | None = None, tokens=None, hardware: Hardware | None = None, gpus=None, *,
                  params=None, mfu=0.4, achieved_flops_per_s=None, flops_per_token_factor=None,
                  recompute: str = "none", exact_seq: int | None = None, price_usd_per_hour=None,
                  days=None, step_time_s=None, batch_tokens=None, dtype: str = "bf16") -> Result:
    """Training FLOPs, time and cost for ``tokens`` on ``gpus`` accelerators, plus the inverse forms.

    - forward: give ``gpus`` (and ``mfu`` with ``hardware``, or ``achieved_flops_per_s``) -> days, GPU-hours, cost;
    - ``days``: the GPUs needed to finish in that many days;
    - ``step_time_s`` and ``batch_tokens``: the MFU and HFU a measured step time implies.
    All numeric arguments may be numpy arrays.
    """
    if tokens is None:
        raise LlmcalcError("--tokens is required (e.g. 300B, 15.6T, 2e12)")
    T = _arr(tokens, "--tokens")
    per_tok, how = per_token_flops(model, _arr(params, "--params"), factor=flops_per_token_factor,
                                   recompute=recompute, exact_seq=exact_seq)
    by = {f.key: f for f in per_tok}
    figures = list(per_tok)
    model_total = derive("model_flops", "per_token*T", "FLOP", by["model_flops_per_token"].source,
                         label="training FLOPs (model)", per_token=by["model_flops_per_token"].value, T=T)
    hw_total = derive("hardware_flops", "per_token*T", "FLOP", by["hardware_flops_per_token"].source,
                      label="training FLOPs executed (hardware)", per_token=by["hardware_flops_per_token"].value,
                      T=T)
    figures += [model_total, hw_total]
    data: dict = {"tokens": T, "model_flops": model_total.value, "hardware_flops": hw_total.value,
                  "flops_basis": how}
    peak = hardware.peak(dtype) if hardware is not None else None
    notes = [f"FLOPs: {how}"]

    # Only time and GPU counts need a rate per GPU, but every rate given is checked even where unused
    # (--mfu 1.5 without --gpus was accepted silently).
    _arr(mfu, "--mfu (fraction of the dense peak)", high=1)
    measured = _measured_rate(step_time_s, batch_tokens, gpus, peak, by, achieved_flops_per_s)
    if measured is not None:  # days and cost follow the measured step time, not an assumed MFU beside it
        rate, rate_notes = measured
        achieved_flops_per_s = rate.value
    elif gpus is not None or days is not None or achieved_flops_per_s is not None or peak is not None:
        rate, rate_notes = _rate_per_gpu(peak, mfu, achieved_flops_per_s, hardware, dtype)
    if gpus is not None or days is not None:
        figures.append(rate)
        notes += rate_notes
        if achieved_flops_per_s is not None and measured is None:
            notes.insert(0, _achieved_basis(by["hardware_flops_per_token"], flops_per_token_factor, recompute,
                                            exact_seq))
    # A rate given as achieved FLOP/s (hardware FLOPs, as Narayanan et al. measure X) divides hardware FLOPs;
    # an MFU divides model FLOPs.
    work = hw_total if achieved_flops_per_s is not None else model_total

    price = check_price(price_usd_per_hour)
    price = price if price is not None else (hardware.price_usd_per_hour
                                                                       if hardware is not None else None)
    if gpus is not None:
        n = _arr(gpus, "--gpus")
        t = derive("time", "flops/(gpus*rate)", "s", SRC_TIME, label="wall-clock time", flops=work.value, gpus=n,
                   rate=rate.value)
        days_f = derive("days", "flops/(gpus*rate)/day", "days", SRC_TIME, label="wall-clock days", flops=work.value,
                        gpus=n, rate=rate.value, day=DAY_S)
        gh = derive("gpu_hours", "gpus*time/3600", "GPU-h", SRC_COST, label="GPU-hours", gpus=n, time=t.value)
        figures += [days_f, gh]  # the time in seconds stays in data["time_s"]: one row, in days, reads best
        data.update(gpus=n, time_s=t.value, days=days_f.value, gpu_hours=gh.value)
        if price is not None:
            cost = derive("cost", "gpu_hours*price", "USD", SRC_COST + (" (hardware catalogue price, volatile)"
                          if price_usd_per_hour is None else " (--price)"), label="cost", gpu_hours=gh.value,
                          price=price)
            figures.append(cost)
            data.update(cost_usd=cost.value, price_usd_per_hour=price)
        else:
            notes.append("no price: the hardware entry has none; pass --price USD per GPU-hour")
        if peak is not None:
            figures += _utilisation(model_total.value, hw_total.value, t.value * n, peak, "")
    if hardware is not None and gpus is not None:
        figures += _memory_floor(model, params, hardware, _arr(gpus, "--gpus"), data, notes)
        dom = hardware.span_limit
        if dom is not None and np.any(np.asarray(gpus) > dom):  # `step` and `plan` refuse such a job
            notes.insert(0, f"{hardware.display_name} records no scale-out link: a job of more than {dom} devices "
                            "is assumed to connect somehow; `step` and `plan` cannot time it (give the hardware "
                            "YAML a scale_out link)")
    if days is not None:
        d = _arr(days, "--days")
        need = derive("gpus_needed", "ceil(flops/(days*day*rate))", "GPU", SRC_TIME,
                      label="GPUs needed to finish in time", flops=work.value, days=d, day=DAY_S, rate=rate.value)
        figures.append(need)
        data.update(target_days=d, gpus_needed=need.value)
    if step_time_s is not None or batch_tokens is not None:
        figures += _from_step_time(step_time_s, batch_tokens, gpus, peak, by, data)
    if gpus is None and days is None and step_time_s is None:
        notes.append("give --gpus N for time and cost, or --days D for the GPUs needed")
    subject = model.display_name if model is not None else f"{_fmt_n(params)} params"
    if model is not None and params is not None:  # the title named the model while every figure used --params
        subject += f" with N = {_fmt_n(params)} (--params)"
    title = f"Training {subject} on {_fmt_n(tokens)} tokens" + (f" ({hardware.display_name})" if hardware else "")
    if data.get("fits") is False:
        title = f"DOES NOT FIT: {data['memory_verdict']} — {title}"
    data.update({k: _jsonable_num(v) for k, v in data.items()})
    return Result(title, tuple(figures), tuple(notes), data)


def _memory_floor(model, params, hardware, n, data: dict, notes: list) -> list[Figure]:
    """The least memory any layout needs: 18 B/param of model states (Megatron-Core bf16 Adam) fully sharded over
    every GPU (ZeRO-3), activations not counted. More than the usable memory means no layout of these GPUs fits."""
    from ..core.checks import MEMORY_RESERVE, SOURCE_RESERVE
    from ..training.memory import DEFAULT_OPTIMIZER, optimizer_bytes

    if params is not None:  # --params overrides the model's count, as the N line above shows (it was ignored here)
        total = params
    else:
        from ..model.params import param_breakdown

        total = param_breakdown(model).data["total"]
    b = optimizer_bytes(DEFAULT_OPTIMIZER).total
    need = derive("memory/states_floor", "b*P/gpus", "B", "model states fully sharded over all GPUs (ZeRO-3), "
                  "Megatron-Core bf16 Adam 18 B/param; activations not counted: a lower bound",
                  label="memory per GPU, at least (model states, fully sharded)", b=b, P=total, gpus=n)
    usable = derive("memory/usable", "capacity*(1 - reserve)", "B", SOURCE_RESERVE,
                    label=f"usable per GPU ({MEMORY_RESERVE:.0%} reserved)", capacity=hardware.memory_bytes,
                    reserve=MEMORY_RESERVE)
    fits = np.asarray(need.value) <= usable.value
    fits = bool(fits) if fits.ndim == 0 else fits
    from ..core.units import fmt

    data.update(fits=fits, memory_floor_bytes=need.value, memory_usable_bytes=usable.value,
                memory_verdict="per GPU count" if not isinstance(fits, bool) else
                f"model states alone need {fmt(need.value, 'B')} per GPU even fully sharded over {_plain(n)} GPUs, "
                f"of {fmt(usable.value, 'B')} usable")
    notes.append("memory: only a floor is checked here (states sharded over every GPU, no activations); "
                 "`llmcalc memory` / `llmcalc step` check a real layout")
    return [need, usable]


def _measured_rate(step_time_s, batch_tokens, gpus, peak, by: dict, achieved) -> tuple[Figure, list[str]] | None:
    """The hardware FLOP/s per GPU a measured step time implies, which then times the whole run: time = T/X_step ·
    step time. Before, days and cost used the assumed MFU (0.4) while the same page printed the achieved MFU (0.3%
    for a 2 h step), two answers to one question. None where the step time does not set the rate (left to the
    checks of ``_from_step_time``: missing inputs, more than the peak)."""
    if step_time_s is None or batch_tokens is None or gpus is None or peak is None:
        return None
    if achieved is not None:
        raise LlmcalcError("give either --achieved-tflops or --step-time with --batch-tokens, not both: each sets the "
                           "rate per GPU")
    s, x, n = _arr(step_time_s, "--step-time"), _arr(batch_tokens, "--batch-tokens"), _arr(gpus, "--gpus")
    hw_pt = by["hardware_flops_per_token"]
    rate = derive("rate_per_gpu", "per_token*X/(step_time*gpus)", "FLOP/s", SRC_TIME + "; measured (--step-time, "
                  "--batch-tokens)", label="achieved FLOP/s per GPU (from the step time)", per_token=hw_pt.value, X=x,
                  step_time=s, gpus=n)
    if np.any(np.asarray(rate.value) > peak):
        return None  # _from_step_time says which inputs imply more than the peak
    return rate, ["time follows the measured step time: tokens / --batch-tokens steps of --step-time each (the rate "
                  "per GPU it implies, against hardware FLOPs)"]


def _rate_per_gpu(peak, mfu, achieved, hardware, dtype) -> tuple[Figure, list[str]]:
    if achieved is not None:
        x = _arr(achieved, "--achieved-tflops")
        if np.any(np.asarray(x) < MIN_ACHIEVED_FLOPS_PER_S):  # 5e-324 TFLOP/s: a time that overflows float64
            raise LlmcalcError(f"--achieved-tflops expects a rate in [{MIN_ACHIEVED_FLOPS_PER_S / 1e12:g}, dense "
                               f"peak] TFLOP/s, got {float(np.min(x)) / 1e12:g}")
        if peak is not None and np.any(np.asarray(x) > peak):
            raise LlmcalcError(f"--achieved-tflops {float(np.max(x)) / 1e12:g} exceeds the dense {dtype} peak of "
                               f"{hardware.display_name} ({peak / 1e12:g} TFLOP/s): check the rate, --hardware or "
                               "--dtype")
        return (Figure("rate_per_gpu", x, "FLOP/s", source="given (--achieved-tflops): FLOPs the GPUs execute per "
                       "second", label="achieved FLOP/s per GPU (X)"),
                ["time uses the achieved rate X against hardware FLOPs (Narayanan et al. 2021 eq. 4: "
                 "8TP/(nX) with recompute, 6TP/(nX) without)"])
    if peak is None:
        raise LlmcalcError("give --hardware (for its peak FLOP/s and --mfu) or --achieved-tflops X")
    check_fraction(mfu, "--mfu (fraction of the dense peak)")
    u = _arr(mfu, "--mfu (fraction of the dense peak)", high=1)
    return (derive("rate_per_gpu", "mfu*peak", "FLOP/s", f"{hardware.display_name} dense {dtype} peak "
                   "(hardware catalogue) x assumed MFU", label="model FLOP/s per GPU (MFU x peak)", mfu=u,
                   peak=peak),
            [f"time uses model FLOPs at MFU {_fmt_n(mfu)} of the dense {dtype} peak; published large runs reach "
             "0.35-0.55 (PaLM 46%, Megatron 2022 51%)"])


def _achieved_basis(hw_per_token: Figure, factor, recompute: str, exact_seq) -> str:
    """Say plainly which FLOPs an achieved rate X divides: X must be measured the same way."""
    basis = f"X is compared with hardware FLOPs = {hw_per_token.name.split('(')[-1].rstrip(')')} per token"
    if factor is None and recompute == "none" and exact_seq is None:
        return (basis + " (no recompute). If X counts recompute, as Narayanan et al. 2021's 140 TFLOP/s does, add "
                "--recompute full (8·N·T): GPT-3 on 1024 GPUs then takes their 34 days, not 25.4")
    return basis


def _utilisation(model_flops, hw_flops, gpu_seconds, peak, suffix: str) -> list[Figure]:
    what = "achieved " if suffix else ""  # measured from a step time, beside the assumed MFU of the forward form
    mfu = derive(f"mfu{suffix}", "model_flops/(gpu_seconds*peak)", "%", SRC_MFU, label=f"{what}MFU (model FLOPs)",
                 model_flops=model_flops, gpu_seconds=gpu_seconds, peak=peak)
    hfu = derive(f"hfu{suffix}", "hardware_flops/(gpu_seconds*peak)", "%", SRC_MFU,
                 label=f"{what}HFU (hardware FLOPs, incl. recompute)", hardware_flops=hw_flops,
                 gpu_seconds=gpu_seconds, peak=peak)
    return [mfu, hfu]


def _from_step_time(step_time_s, batch_tokens, gpus, peak, by: dict, data: dict) -> list[Figure]:
    if step_time_s is None or batch_tokens is None or gpus is None or peak is None:
        raise LlmcalcError("achieved MFU needs all of --step-time, --batch-tokens, --gpus and --hardware")
    s, x, n = _arr(step_time_s, "--step-time"), _arr(batch_tokens, "--batch-tokens"), _arr(gpus, "--gpus")
    step_model = derive("step/model_flops", "per_token*X", "FLOP", by["model_flops_per_token"].source,
                        label="model FLOPs per step", per_token=by["model_flops_per_token"].value, X=x)
    step_hw = derive("step/hardware_flops", "per_token*X", "FLOP", by["hardware_flops_per_token"].source,
                     label="hardware FLOPs per step", per_token=by["hardware_flops_per_token"].value, X=x)
    rate = derive("step/achieved_per_gpu", "hardware/(time*gpus)", "FLOP/s", SRC_TIME,
                  label="achieved FLOP/s per GPU (hardware)", hardware=step_hw.value, time=s, gpus=n)
    util = _utilisation(step_model.value, step_hw.value, s * n, peak, "_achieved")
    worst = float(np.max(np.maximum(util[0].value, util[1].value)))
    if worst > 1:  # more FLOPs per second than the dense peak: the inputs cannot all be right
        raise LlmcalcError(
            f"--step-time {_plain(step_time_s)} s with --batch-tokens {_plain(batch_tokens)} on --gpus {_plain(gpus)} "
            f"implies {worst:.1%} of the dense peak (MFU/HFU above 100%): check the step time, tokens per step, GPU "
            "count, --hardware or --dtype")
    data.update(step_time_s=s, batch_tokens=x, achieved_mfu=util[0].value, achieved_hfu=util[1].value,
                achieved_flops_per_s_per_gpu=rate.value)
    return [step_model, step_hw, rate, *util]


def _plain(x) -> str:
    if isinstance(x, np.ndarray):
        return f"[{x.size} values]"
    return f"{float(x):g}"


def _fmt_n(x) -> str:
    if x is None:
        return "?"
    if isinstance(x, np.ndarray):
        return f"[{x.size} values]"
    from ..core.units import fmt

    return fmt(x, "").strip() if x < 1e3 else fmt(x, "param").removesuffix(" param")


def _jsonable_num(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v
