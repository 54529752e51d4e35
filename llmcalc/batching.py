"""Continuous batching in steady state (Yu et al. 2022, Orca §3; Kwon et al. 2023, vLLM).

Model. Requests arrive at rate λ, each with ``prompt`` P and ``output`` O tokens. N requests are in
flight. The engine runs decode steps over all N (one token each, time t_d(N) at the mean context
P + O/2) and spends a fraction u = λ·t_p of its time prefilling new arrivals (t_p: one prompt's
prefill). A request therefore takes

    T = t_p + (O − 1)·t_d(N) / (1 − u)

and Little's law (Little 1961: mean number in system = arrival rate × mean time in system) closes
the loop: N = λ·T. With u = N·t_p/T this is a quadratic in T,
``T² − T·(t_p(1 + N) + (O − 1)·t_d) + N·t_p² = 0``, whose larger root we take (it gives T = t_p
when O = 1). Given λ instead of N we solve the fixed point N = λ·T(N): λ(N) = N/T(N) is
evaluated on a fine grid of N and inverted by interpolation (it rises with N). The KV cache caps N:
every running sequence is charged its final length P + O (worst case), so N ≤ max batch at P + O.
"""

from __future__ import annotations

import numpy as np

from .checks import check_count, check_number
from .errors import LlmcalcError
from .inference import Deployment, step
from .results import Result, derive

SRC_LITTLE = "Little's law (Little 1961): concurrency = arrival rate x time in system"
SRC_CB = "continuous batching (Orca, Yu et al. 2022 §3): prefill interleaved with decode steps"


def request_time(t_prefill, t_decode, output, concurrency):
    """Steady-state time in system T(N): larger root of T² − T(t_p(1+N) + (O−1)t_d) + N·t_p² = 0."""
    tp_, n = np.asarray(t_prefill, dtype=float), np.asarray(concurrency, dtype=float)
    s = tp_ * (1 + n) + (np.asarray(output, dtype=float) - 1) * np.asarray(t_decode, dtype=float)
    return (s + np.sqrt(np.maximum(s * s - 4 * n * tp_ * tp_, 0.0))) / 2


def kv_cap(dep: Deployment, prompt: int, output: int, reserve: float = 0.1) -> int:
    """Largest number of sequences whose KV at their final length fits beside the weights on each GPU."""
    from .kv import fit

    f = fit(dep.model, dep.hw, dep.weights, dep.group_size, dep.kv_dtype, dep.tp, reserve=reserve,
            context=prompt + output)
    return int(f.data["max_batch"]) if f.data["fits"] else 0


def curve(dep: Deployment, prompt: int, output: int, concurrency) -> dict:
    """Per-replica steady state at each concurrency N (array): T, λ, TTFT, effective TPOT, utilisation."""
    n = np.asarray(concurrency, dtype=float)
    t_p = float(step(dep, 1, prompt, prompt, prefill=True)["step_s"])
    # below one sequence in flight the engine still runs batch-1 steps
    t_d = step(dep, np.maximum(n, 1.0), 1, prompt + output / 2, prefill=False)["step_s"]
    t = request_time(t_p, t_d, output, n)
    lam = n / t
    u = lam * t_p
    return {"concurrency": n, "t_prefill_s": t_p, "t_decode_s": t_d, "request_s": t, "qps": lam,
            "prefill_share": u, "tpot_s": t_d / (1 - u), "ttft_s": t_p + t_d}


def check_workload(qps, prompt, output, reserve) -> None:
    check_number(qps, "--qps")
    check_count(prompt, "--prompt")
    check_count(output, "--output")
    check_number(reserve, "--reserve", low=0, low_ok=True, high=1, high_ok=False)


def rate_curve(dep: Deployment, prompt: int, output: int, cap: int) -> tuple[np.ndarray, dict]:
    """The steady state on a fine grid of concurrencies 1e-4 … cap (λ(N) rises with N)."""
    grid = np.unique(np.concatenate([np.geomspace(1e-4, cap, 600), np.arange(1, min(cap, 4096) + 1)]))
    return grid, curve(dep, prompt, output, grid)


def concurrency_for_rate(grid: np.ndarray, c: dict, qps: float) -> float:
    """Invert λ(N) = N/T(N) by interpolation: the N in flight at arrival rate ``qps`` (the cap when overloaded)."""
    lam = np.maximum.accumulate(c["qps"])
    return float(np.interp(qps, lam, grid)) if qps <= lam[-1] else float(grid[-1])


def continuous_batching(dep: Deployment, qps: float, prompt: int, output: int, reserve: float = 0.1) -> Result:
    """Steady state of one replica serving ``qps`` requests/s of ``prompt`` + ``output`` tokens."""
    check_workload(qps, prompt, output, reserve)
    cap = kv_cap(dep, prompt, output, reserve)
    if cap < 1:
        raise LlmcalcError(f"{dep.model.display_name} does not fit on {dep.tp} x {dep.hw.display_name} with one "
                           f"sequence of {prompt + output} tokens; raise --tp or quantise")
    grid, c = rate_curve(dep, prompt, output, cap)
    i_max = int(np.argmax(c["qps"]))  # the highest rate: N/T at the best concurrency (the cap, λ rises with N)
    qps_max = float(c["qps"][i_max])
    n = concurrency_for_rate(grid, c, qps)
    at = curve(dep, prompt, output, n)
    figs = [derive("t_prefill_s", "t_p", "s", "prefill step of one prompt (roofline)", label="prefill of one prompt",
                   t_p=at["t_prefill_s"]),
            derive("t_decode_s", "t_d", "s", "decode step over N sequences at context P + O/2 (roofline)",
                   label="decode step at this concurrency", t_d=at["t_decode_s"]),
            derive("concurrency", "N", "seq", SRC_LITTLE + "; solves N = qps·T(N)", label="requests in flight",
                   N=n),
            derive("request_s", "t_p + (O - 1)*t_d/(1 - qps*t_p)", "s", SRC_CB + "; " + SRC_LITTLE,
                   label="request latency", t_p=at["t_prefill_s"], O=output, t_d=at["t_decode_s"],
                   qps=min(qps, qps_max)),
            derive("tpot_s", "t_d/(1 - qps*t_p)", "s", SRC_CB, label="time per output token (prefill-stretched)",
                   t_d=at["t_decode_s"], qps=min(qps, qps_max), t_p=at["t_prefill_s"]),
            derive("qps_max", "N_max/T_max", "req/s",
                   SRC_LITTLE + "; T_max = T(N_max), the request time with N_max sequences in flight",
                   label=f"highest sustainable rate (KV cap {cap} sequences)", N_max=float(grid[i_max]),
                   T_max=float(c["request_s"][i_max])),
            derive("tokens_per_s", "min(qps, qps_max)*O", "token/s", "definition", label="output tokens/s",
                   qps=qps, qps_max=qps_max, O=output)]
    overloaded = qps > qps_max
    notes = [dep.eff.describe(), "KV cap charges every running sequence its final length P + O",
             "decode steps evaluated at the mean context P + O/2; queueing delay before admission ignored"]
    if overloaded:
        notes.append(f"OVERLOADED: {qps:g} req/s exceeds the {qps_max:.3g} req/s this replica sustains; "
                     "figures shown at the KV cap")
    data = {"model": dep.model.name, "hardware": dep.hw.name, "tp": dep.tp, "qps": qps, "prompt": prompt,
            "output": output, "concurrency": n, "request_s": figs[3].value, "tpot_s": figs[4].value,
            "ttft_s": float(at["ttft_s"]), "qps_max": qps_max, "kv_cap": cap, "overloaded": overloaded,
            "tokens_per_s": figs[6].value}
    return Result(f"Continuous batching: {dep.model.display_name} on {dep.tp} x {dep.hw.display_name} at "
                  f"{qps:g} req/s", tuple(figs), tuple(notes), data)
