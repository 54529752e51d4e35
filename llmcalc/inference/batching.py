"""Continuous batching in steady state (Yu et al. 2022, Orca §3; Kwon et al. 2023, vLLM).

Model, one class. Requests arrive at rate λ, each with ``prompt`` P and ``output`` O tokens. N requests
are in flight. The engine runs decode steps over all N (one token each, time t_d(N) at the mean context
P + O/2) and spends a fraction u = λ·t_p of its time prefilling new arrivals (t_p: one prompt's
prefill). A request therefore takes

    T = t_p + (O − 1)·t_d(N) / (1 − u)

and Little's law (Little 1961: mean number in system = arrival rate × mean time in system) closes
the loop: N = λ·T. With u = N·t_p/T this is a quadratic in T,
``T² − T·(t_p(1 + N) + (O − 1)·t_d) + N·t_p² = 0``, whose larger root we take (it gives T = t_p
when O = 1). Given λ instead of N we solve the fixed point N = λ·T(N): λ(N) = N/T(N) is
evaluated on a fine grid of N and inverted by interpolation (it rises with N). The KV cache caps N:
every running sequence is charged its final length P + O (worst case), so N ≤ max batch at P + O.

Model, a request mix (``prompt`` and ``output`` sequences, one entry per class i, arrival shares w_i
summing to 1). Assumptions, and nothing more:

* arrivals are Poisson at total rate λ; each arrival is class i with probability w_i, so class i
  arrives at λ_i = w_i·λ. Only means enter (a mean-value model: no queueing variance, no wait for
  admission);
* the decode step runs over all N in flight at one mean context: class i's share of the in-flight
  sequences is s_i = w_i·O_i / Σ_j w_j·O_j (Little's law per class, N_i = λ_i·T_i, with T_i taken
  proportional to its O_i decode steps: the prefill term is left out of these weights), and a
  class-i sequence is on average at P_i + O_i/2, so t_d(N) is evaluated at Σ s_i·(P_i + O_i/2);
* prefill takes the fraction u = Σ λ_i·t_p,i of the engine's time, stretching every decode step
  by 1/(1 − u), so class i spends T_i = t_p,i + (O_i − 1)·t_d(N)/(1 − u) in the system;
* Little's law closes the loop: N = Σ λ_i·T_i = λ·T̄ with T̄ = Σ w_i·T_i = t̄_p + (Ō − 1)·t_d/(1 − u),
  t̄_p = Σ w_i·t_p,i, Ō = Σ w_i·O_i and u = λ·t̄_p: the one-class equations with t_p → t̄_p and
  O → Ō, solved the same way;
* the KV cap charges each running sequence its class's final length P_i + O_i, averaged over the
  in-flight sequences: N ≤ free KV bytes // Σ s_i·kv(P_i + O_i).

One class (w = 1) gives exactly the one-class model above.
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_count, check_number
from ..core.errors import LlmcalcError
from ..core.pointmemo import distinct
from ..core.results import Result, derive
from .latency import Deployment, step

SRC_LITTLE = "Little's law (Little 1961): concurrency = arrival rate x time in system"
SRC_CB = "continuous batching (Orca, Yu et al. 2022 §3): prefill interleaved with decode steps"
SRC_QUEUE = ("prefill as an M/D/1 queue (Poisson arrivals, deterministic service t_p, load ρ = λ·t_p): mean wait "
             "ρ·t_p/(2(1 − ρ)) (Pollaczek-Khinchine formula, E[S²] = t_p²); p99 from the heavy-traffic exponential "
             "tail P(W > t) ≈ ρ·exp(−ρ·t/W̄) (Kingman 1962), an approximation")
SRC_MG1 = ("prefill of a request mix as an M/G/1 queue: mean wait λ·E[S²]/(2(1 − ρ)) (Pollaczek-Khinchine formula, "
           "Kleinrock 1975, Queueing Systems vol. 1, ch. 5, M/G/1), tail as SRC_QUEUE")


def wait_quantile(mean, rho, q):
    """q-quantile of the wait from the tail P(W > t) ≈ ρ·exp(−ρ·t/W̄) (SRC_QUEUE): W̄/ρ·ln(ρ/(1 − q)) when
    ρ > 1 − q, else 0 (fewer than 1 − q of the arrivals wait at all)."""
    rho = np.asarray(rho, dtype=float)
    tail = 1 - q
    return np.where(rho > tail, mean / np.maximum(rho, 1e-300) * np.log(np.maximum(rho, tail) / tail), 0.0)


def queue_wait(t_prefill, rho, t_prefill_sq=None):
    """(mean, p99) wait of an arrival before its prefill starts: M/D/1 (see SRC_QUEUE). ρ must be < 1.

    With a request mix the prefill time S varies by class: give its mean ``t_prefill`` = E[S] and
    ``t_prefill_sq`` = E[S²]; the mean is then the M/G/1 Pollaczek-Khinchine formula W = λ·E[S²]/(2(1 − ρ))
    = ρ·(E[S²]/E[S])/(2(1 − ρ)) (SRC_MG1), which is ρ·t_p/(2(1 − ρ)) when every S = t_p."""
    mean = queue_wait_mean(t_prefill, rho, t_prefill_sq)
    return mean, wait_quantile(mean, rho, 0.99)


def queue_wait_mean(t_prefill, rho, t_prefill_sq=None):
    """The mean of :func:`queue_wait` alone (a planner reading no p99 skips its tail)."""
    rho = np.asarray(rho, dtype=float)
    s = t_prefill if t_prefill_sq is None else t_prefill_sq / t_prefill  # E[S²]/E[S]
    return rho * s / (2 * (1 - rho))


def queue_figures(t_p: float, t_d: float, rho: float) -> list:
    """The wait before prefill (M/D/1 mean, p50, p99) and TTFT with it, as figures; one place for batching and serve.
    ρ = λ·t_p is the prefill load of one replica (< 1)."""
    wq, w99 = queue_wait(t_p, rho)
    w50 = wait_quantile(wq, rho, 0.5)

    def q_fig(key, q):
        tail = 1 - q
        if rho > tail:
            return derive(key, "W/rho*log_rho_over_tail", "s", SRC_QUEUE,
                          label=f"wait before prefill (p{q * 100:g}, heavy-traffic approximation)", W=float(wq),
                          rho=rho, log_rho_over_tail=float(np.log(rho / tail)))
        return derive(key, "0", "s", SRC_QUEUE + f"; ρ <= {tail:g}: P(W > 0) < {tail:.0%}",
                      label=f"wait before prefill (p{q * 100:g})")

    return [derive("queue_wait_s", "rho*t_p/(2*(1 - rho))", "s", SRC_QUEUE,
                   label="wait before prefill (mean, M/D/1)", rho=rho, t_p=t_p),
            q_fig("queue_wait_p50_s", 0.5),
            q_fig("queue_wait_p99_s", 0.99),
            derive("ttft_mean_s", "t_p + t_d + W", "s", SRC_QUEUE, label="TTFT with queueing (mean)",
                   t_p=t_p, t_d=float(t_d), W=float(wq)),
            derive("ttft_p50_s", "t_p + t_d + W50", "s", SRC_QUEUE, label="TTFT with queueing (p50)",
                   t_p=t_p, t_d=float(t_d), W50=float(w50)),
            derive("ttft_p99_s", "t_p + t_d + W99", "s", SRC_QUEUE, label="TTFT with queueing (p99)",
                   t_p=t_p, t_d=float(t_d), W99=float(w99))]


def request_time(t_prefill, t_decode, output, concurrency, t_busy=None):
    """Steady-state time in system T(N): larger root of T² − T(t_p(1+N) + (O−1)t_d) + N·t_p² = 0.

    ``t_busy``: the engine time one prefill takes from the decode steps when it differs from the prefill's
    latency t_p (a pipeline: one stage's share, t_p/pp; a decode-only pool: 0). Then u = λ·t_busy and
    T = t_p + (O − 1)·t_d/(1 − u) with N = λ·T gives T² − T(t_p + N·t_busy + (O−1)t_d) + N·t_p·t_busy = 0."""
    tp_, n = np.asarray(t_prefill, dtype=float), np.asarray(concurrency, dtype=float)
    if t_busy is None:
        s = tp_ * (1 + n) + (np.asarray(output, dtype=float) - 1) * np.asarray(t_decode, dtype=float)
        return (s + np.sqrt(np.maximum(s * s - 4 * n * tp_ * tp_, 0.0))) / 2
    tb = np.asarray(t_busy, dtype=float)
    s = tp_ + n * tb + (np.asarray(output, dtype=float) - 1) * np.asarray(t_decode, dtype=float)
    return (s + np.sqrt(np.maximum(s * s - 4 * n * tp_ * tb, 0.0))) / 2


def steady_state(t_prefill, t_decode, output, concurrency, t_busy=None) -> dict:
    """T(N) (request_time), λ = N/T (Little's law), prefill share u = λ·t_busy and the prefill-stretched TPOT
    t_d/(1 − u) at each concurrency N: the one place these are computed (curve, serve and plan-serve).
    ``t_busy`` defaults to ``t_prefill`` (see request_time)."""
    n = np.asarray(concurrency, dtype=float)
    t = request_time(t_prefill, t_decode, output, n, t_busy)
    lam = n / t
    u = lam * (t_prefill if t_busy is None else t_busy)
    return {"request_s": t, "qps": lam, "prefill_share": u, "tpot_s": t_decode / np.maximum(1 - u, 1e-12)}


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
    return {"concurrency": n, "t_prefill_s": t_p, "t_decode_s": t_d, **steady_state(t_p, t_d, output, n),
            "ttft_s": t_p + t_d}


def check_output(output) -> None:
    """Output lengths of a continuous-batching workload: at least 2 tokens. With O = 1 there is no decode step:
    the larger root gives T = N·t_p, so u = λ·t_p = 1 and TPOT = t_d/(1 − u) has no finite value (it printed
    inf, or a negative number of days after rounding; issue #13)."""
    check_count(output, "--output")
    if np.any(np.asarray(output, dtype=float) < 2):
        raise LlmcalcError("--output expects at least 2 tokens here: continuous batching times the decode steps "
                           "between output tokens (TPOT), and one output token has none; for prefill-only work "
                           "use `llmcalc infer --output 1` (TTFT)")


def check_workload(qps, prompt, output, reserve) -> None:
    check_number(qps, "--qps")
    check_count(prompt, "--prompt")
    check_output(output)
    check_number(reserve, "--reserve", low=0, low_ok=True, high=1, high_ok=False)


def rate_curve(dep: Deployment, prompt: int, output: int, cap: int) -> tuple[np.ndarray, dict]:
    """The steady state on a fine grid of concurrencies 1e-4 … cap (λ(N) rises with N)."""
    grid = distinct(np.concatenate([np.geomspace(1e-4, cap, 600), np.arange(1, min(cap, 4096) + 1)]))
    return grid, curve(dep, prompt, output, grid)


def concurrency_for_rate(grid: np.ndarray, c: dict, qps: float) -> float:
    """Invert λ(N) = N/T(N) by interpolation: the N in flight at arrival rate ``qps`` (the cap when overloaded)."""
    lam = np.maximum.accumulate(c["qps"])
    return float(np.interp(qps, lam, grid)) if qps <= lam[-1] else float(grid[-1])


# ---------------------------------------------------------------- a request mix (classes of prompt/output lengths)


def _as_list(x) -> list:
    return list(np.ravel(np.asarray(x, dtype=object))) if np.ndim(x) else [x]


def check_mix(qps, prompt, output, weights, reserve) -> tuple[list[int], list[int], list[float]]:
    """Validate a workload whose ``prompt``/``output`` may be sequences (classes); returns P_i, O_i, w_i."""
    check_number(qps, "--qps")
    prompts, outputs = _as_list(prompt), _as_list(output)
    check_count(prompts, "--prompt")
    check_output(outputs)
    k = len(prompts)
    if len(outputs) != k:
        raise LlmcalcError(f"--prompt and --output need one value per request class: --prompt has {k} "
                           f"value{'s' * (k != 1)}, --output has {len(outputs)}")
    if weights is None:
        shares = [1.0 / k] * k
    else:
        shares = [float(x) for x in _as_list(weights)] if _numeric(weights) else None
        if shares is None:
            raise LlmcalcError(f"--mix expects numbers (shares of arrivals), got {weights!r}")
        check_number(shares, "--mix", high=1)
        if len(shares) != k:
            raise LlmcalcError(f"--mix needs one share per request class: {k} class{'es' * (k != 1)} "
                               f"(--prompt/--output), {len(shares)} share{'s' * (len(shares) != 1)}")
        if abs(sum(shares) - 1.0) > 1e-9:
            raise LlmcalcError(f"--mix shares of arrivals must sum to 1, got {sum(shares):.10g} "
                               f"({' + '.join(f'{s:g}' for s in shares)})")
    check_number(reserve, "--reserve", low=0, low_ok=True, high=1, high_ok=False)
    return [int(p) for p in prompts], [int(o) for o in outputs], shares


def _numeric(x) -> bool:
    try:
        np.asarray(_as_list(x), dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def _mean(shares, values) -> float:
    """Σ w_i·x_i, summed left to right (as the formula text w_1*x_1 + w_2*x_2 evaluates)."""
    return sum(w * x for w, x in zip(shares, values, strict=True))


def mix_state(dep: Deployment, prompts, outputs, shares) -> dict:
    """What does not depend on N: per-class prefill t_p,i, in-flight shares s_i, means t̄_p, Ō and the context."""
    t_p = [float(step(dep, 1, p, p, prefill=True)["step_s"]) for p in prompts]
    wo = [w * o for w, o in zip(shares, outputs, strict=True)]
    s = [x / sum(wo) for x in wo]  # in-flight share ∝ λ_i·O_i (Little's law per class, T_i ∝ O_i)
    return {"t_p": t_p, "inflight": s, "t_p_mean": _mean(shares, t_p), "output_mean": _mean(shares, outputs),
            "context": _mean(s, [p + o / 2 for p, o in zip(prompts, outputs, strict=True)])}


def mix_curve(dep: Deployment, ms: dict, concurrency) -> dict:
    """The steady state at concurrency N (array): the one-class equations with t_p → t̄_p and O → Ō."""
    n = np.asarray(concurrency, dtype=float)
    t_d = step(dep, np.maximum(n, 1.0), 1, ms["context"], prefill=False)["step_s"]
    t = request_time(ms["t_p_mean"], t_d, ms["output_mean"], n)
    return {"concurrency": n, "t_decode_s": t_d, "request_s": t, "qps": n / t}


def mix_kv_cap(dep: Deployment, prompts, outputs, inflight, reserve: float) -> tuple[int, float, float, list]:
    """(cap, free KV bytes per GPU, mean KV bytes per in-flight sequence, each class's KV bytes at P_i + O_i)."""
    from .kv import fit, kv_bytes_per_request_per_gpu

    f = fit(dep.model, dep.hw, dep.weights, dep.group_size, dep.kv_dtype, dep.tp, reserve=reserve,
            context=max(p + o for p, o in zip(prompts, outputs, strict=True)))
    per_class = [float(kv_bytes_per_request_per_gpu(dep.model, p + o, dep.kv_dtype, dep.tp))
                 for p, o in zip(prompts, outputs, strict=True)]
    per_seq, free = _mean(inflight, per_class), float(f.data["free_bytes_per_gpu"])
    return (int(free // per_seq) if f.data["fits"] else 0), free, per_seq, per_class


def _wsum(weight: str, term: str, k: int) -> str:
    """'w_1*x_1 + w_2*x_2' from weight 'w' and term 'x_{i}': a weighted sum shown term by term."""
    return " + ".join(f"{weight}_{i}*{term.format(i=i)}" for i in range(1, k + 1))


def _indexed(name: str, values) -> dict:
    return {f"{name}_{i}": v for i, v in enumerate(values, start=1)}


def _class_figures(i: int, p: int, o: int, w: float, t_p: float, t_d: float, u: float, rate: float) -> list:
    """Class i's prefill, TTFT, TPOT, time in system, concurrency (Little's law) and output tokens/s."""
    lab = f"class {i} (P {p}, O {o}, {w:.3g} of arrivals): "
    k = f"class_{i}/"
    t = derive(k + "request_s", "t_p + (O - 1)*t_d/(1 - u)", "s", SRC_CB, label=lab + "time in system T_i",
               t_p=t_p, O=o, t_d=t_d, u=u)
    return [derive(k + "t_prefill_s", "t_p", "s", "prefill step of one prompt (roofline)", label=lab + "prefill",
                   t_p=t_p),
            derive(k + "ttft_s", "t_p + t_d", "s", SRC_CB, label=lab + "TTFT", t_p=t_p, t_d=t_d),
            derive(k + "tpot_s", "t_d/(1 - u)", "s", SRC_CB, label=lab + "TPOT (prefill-stretched)", t_d=t_d, u=u),
            t,
            derive(k + "concurrency", "w*qps*T", "seq", SRC_LITTLE + " per class", label=lab + "in flight",
                   w=w, qps=rate, T=t.value),
            derive(k + "tokens_per_s", "w*qps*O", "token/s", "definition", label=lab + "output tokens/s",
                   w=w, qps=rate, O=o)]


def continuous_batching(dep: Deployment, qps: float, prompt, output, reserve: float = 0.1,
                        weights=None) -> Result:
    """Steady state of one replica serving ``qps`` requests/s of ``prompt`` + ``output`` tokens.

    ``prompt`` and ``output`` may be equal-length sequences (request classes) with ``weights`` their
    shares of arrivals (default equal; they must sum to 1); see the module docstring for the model.
    """
    prompts, outputs, shares = check_mix(qps, prompt, output, weights, reserve)
    k = len(prompts)
    ms = mix_state(dep, prompts, outputs, shares)
    cap, free, per_seq, kv_class = mix_kv_cap(dep, prompts, outputs, ms["inflight"], reserve)
    if cap < 1:
        longest = max(p + o for p, o in zip(prompts, outputs, strict=True))
        raise LlmcalcError(f"{dep.model.display_name} does not fit on {dep.tp} x {dep.hw.display_name} with one "
                           f"sequence of {longest} tokens; raise --tp or quantise")
    grid = distinct(np.concatenate([np.geomspace(1e-4, cap, 600), np.arange(1, min(cap, 4096) + 1)]))
    c = mix_curve(dep, ms, grid)
    i_max = int(np.argmax(c["qps"]))  # the highest rate: N/T at the best concurrency (the cap, λ rises with N)
    qps_max = float(c["qps"][i_max])
    n = concurrency_for_rate(grid, c, qps)
    t_d = mix_curve(dep, ms, n)["t_decode_s"]
    rate = min(qps, qps_max)
    # Utilisation qps/qps_max >= 1: arrivals outpace what the replica can admit, the queue grows without bound and
    # so do the wait and TTFT (a queue is stable only at load < 1; Kleinrock, Queueing Systems I, 1975).
    overloaded = qps >= qps_max
    w, lengths = _indexed("w", shares), {**_indexed("O", outputs), **_indexed("P", prompts)}
    if k == 1:
        p, o = prompts[0], outputs[0]
        head = [derive("t_prefill_s", "t_p", "s", "prefill step of one prompt (roofline)",
                       label="prefill of one prompt", t_p=ms["t_p_mean"]),
                derive("decode_context", "P + O/2", "token", "mean context of a sequence in flight",
                       label="decode context (mean)", P=p, O=o)]
        t_p, out, src_d = head[0].value, o, "decode step over N sequences at context P + O/2 (roofline)"
    else:
        head = [derive("t_prefill_s", _wsum("w", "t_p_{i}", k), "s", "prefill step of one prompt (roofline), "
                       "mean over arrivals", label="prefill of one prompt (mean over arrivals)",
                       **w, **_indexed("t_p", ms["t_p"])),
                derive("output_mean", _wsum("w", "O_{i}", k), "token", "definition",
                       label="output tokens per request (mean over arrivals)", **w, **_indexed("O", outputs)),
                derive("decode_context", f"({_wsum('w', 'O_{i}*(P_{i} + O_{i}/2)', k)})/({_wsum('w', 'O_{i}', k)})",
                       "token", "in-flight share of class i ∝ λ_i·O_i (Little's law per class); a class-i "
                       "sequence is on average at P_i + O_i/2", label="decode context (mean over in-flight)",
                       **w, **lengths)]
        t_p, out = head[0].value, head[1].value
        src_d = "decode step over N sequences at the mean in-flight context (roofline)"
    figs = [*head,
            derive("t_decode_s", "t_d", "s", src_d, label="decode step at this concurrency", t_d=t_d),
            derive("concurrency", "N", "seq", SRC_LITTLE + "; solves N = qps·T(N)", label="requests in flight",
                   N=n),
            derive("prefill_share", "qps*t_p", "", SRC_CB + "; u: share of engine time spent prefilling",
                   label="prefill share of engine time u", qps=rate, t_p=t_p),
            derive("request_s", "t_p + (O - 1)*t_d/(1 - qps*t_p)", "s", SRC_CB + "; " + SRC_LITTLE,
                   label="request latency" + (" (mean over arrivals)" if k > 1 else ""), t_p=t_p, O=out,
                   t_d=t_d, qps=rate),
            derive("tpot_s", "t_d/(1 - qps*t_p)", "s", SRC_CB, label="time per output token (prefill-stretched)",
                   t_d=t_d, qps=rate, t_p=t_p),
            derive("qps_max", "N_max/T_max", "req/s",
                   SRC_LITTLE + "; T_max = T(N_max), the request time with N_max sequences in flight",
                   label=f"highest sustainable rate (KV cap {cap} sequences)", N_max=float(grid[i_max]),
                   T_max=float(c["request_s"][i_max])),
            derive("throughput_qps", "min(qps, qps_max)", "req/s", "definition", label="requests served/s",
                   qps=qps, qps_max=qps_max),
            derive("tokens_per_s", "min(qps, qps_max)*O", "token/s", "definition", label="output tokens/s",
                   qps=qps, qps_max=qps_max, O=out)]
    src_kv = "KV cap: free KV bytes // KV bytes per running sequence at its final length (vLLM, Kwon et al. 2023)"
    if k > 1:
        figs.append(derive("kv_bytes_per_seq", _wsum("s", "kv_{i}", k), "B",
                           "each sequence charged its class's final length P_i + O_i; s_i = w_i·O_i/Σ w_j·O_j",
                           label="KV per in-flight sequence (mean)", **_indexed("s", ms["inflight"]),
                           **_indexed("kv", kv_class)))
    figs.append(derive("kv_cap", "free//per_request", "seq", src_kv, label="KV cap on requests in flight",
                       free=free, per_request=per_seq))
    u = figs[len(head) + 2].value
    classes = [_class_figures(i, p, o, wi, tp_i, float(t_d), u, rate)
               for i, (p, o, wi, tp_i) in enumerate(zip(prompts, outputs, shares, ms["t_p"], strict=True), start=1)]
    if overloaded:  # a class's TTFT waits in the same unbounded queue
        classes = [[f for f in cl if not f.key.endswith("/ttft_s")] for cl in classes]
    if k > 1:
        figs += [f for cl in classes for f in cl]
    if u < 1 and not overloaded:  # queueing before the prefill starts (not defined for an engine that only prefills)
        figs += queue_figures(t_p, float(t_d), u)
    fig = {f.key: f.value for f in figs}
    if k == 1:
        notes = [dep.eff.describe(), "KV cap charges every running sequence its final length P + O",
                 "decode steps evaluated at the mean context P + O/2; the wait before prefill is an M/D/1 queue "
                 "(mean exact for Poisson arrivals, p99 a heavy-traffic approximation); admission waits for KV room "
                 "are not modelled"]
    else:
        notes = [dep.eff.describe(),
                 "Poisson arrivals, class i with probability w_i; a mean-value model (no queueing variance, "
                 "no wait for admission)",
                 "decode steps over all N in flight at the mean in-flight context; in-flight shares "
                 "s_i ∝ w_i·O_i (Little's law per class with T_i ∝ O_i)",
                 "KV cap charges every running sequence its class's final length P_i + O_i (mean over in-flight)"]
    warn = dep.model.past_positions(max(p + o for p, o in zip(prompts, outputs, strict=True)), "prompt + output")
    if warn:  # as infer, kv and fit warn
        notes.append(warn)
    if overloaded:
        notes.insert(0, f"OVERLOADED: {qps:g} req/s >= the {qps_max:.3g} req/s this replica sustains: the queue, "
                        "the wait before prefill and TTFT grow without bound (JSON null); the engine figures are at "
                        "the KV cap, for the requests it admits")
    scalar = np.ndim(prompt) == 0 and np.ndim(output) == 0
    data = {"model": dep.model.name, "hardware": dep.hw.name, "tp": dep.tp, "qps": qps,
            "prompt": prompts[0] if scalar else prompts, "output": outputs[0] if scalar else outputs,
            "mix": shares, "concurrency": n, "request_s": fig["request_s"], "tpot_s": fig["tpot_s"],
            "ttft_s": None if overloaded else float(t_p + t_d), "queue_unbounded": overloaded,
            "queue_wait_s": fig.get("queue_wait_s"),
            "queue_wait_p99_s": fig.get("queue_wait_p99_s"), "ttft_mean_s": fig.get("ttft_mean_s"),
            "queue_wait_p50_s": fig.get("queue_wait_p50_s"), "ttft_p50_s": fig.get("ttft_p50_s"),
            "ttft_p99_s": fig.get("ttft_p99_s"), "qps_max": qps_max, "kv_cap": cap,
            "kv_binds": bool(overloaded or n >= cap),
            "overloaded": overloaded, "throughput_qps": fig["throughput_qps"], "tokens_per_s": fig["tokens_per_s"],
            "prefill_share": u, "decode_context": fig["decode_context"],
            "classes": [{"prompt": p, "output": o, "share": wi, "inflight_share": s, "qps": wi * rate,
                         **({"ttft_s": None} if overloaded else {}),
                         **{f.key.split("/")[1]: float(f.value) for f in cl}}
                        for p, o, wi, s, cl in zip(prompts, outputs, shares, ms["inflight"], classes, strict=True)]}
    mixed = f", {k}-class mix" if k > 1 else ""
    title = (f"Continuous batching: {dep.model.display_name} on {dep.tp} x {dep.hw.display_name} at "
             f"{qps:g} req/s{mixed}")
    if overloaded:  # said first, where it cannot be missed
        title = (f"OVERLOADED: {qps:g} req/s >= the {qps_max:.3g} req/s one replica sustains, so the queue and TTFT "
                 f"are unbounded (add replicas or lower --qps). {title}, figures at the KV cap")
    return Result(title, tuple(figs), tuple(notes), data)


def latency_vs_load(dep: Deployment, prompt: int, output: int, qps, reserve: float = 0.1) -> dict:
    """Latency percentiles of one replica at each arrival rate in ``qps`` (a 1-D array, requests/s per replica):
    one :func:`continuous_batching` steady state per rate (its figures and sources), gathered for a chart.

    Returns arrays ``qps``, ``ttft_p50_s``, ``ttft_mean_s``, ``ttft_p99_s`` (TTFT with the M/D/1 wait before
    prefill, SRC_QUEUE), ``tpot_s`` (mean, prefill-stretched; the model gives no TPOT percentile),
    ``concurrency`` and ``overloaded`` (rates beyond the replica's qps_max: figures at the KV cap, NaN
    latencies), plus the scalar ``qps_max``."""
    rates = np.atleast_1d(np.asarray(qps, dtype=float))
    if rates.ndim != 1 or rates.size > 4096:
        raise LlmcalcError(f"--qps: a load curve takes at most 4096 rates in one list, got shape {rates.shape}")
    keys = ("ttft_p50_s", "ttft_mean_s", "ttft_p99_s", "tpot_s", "concurrency")
    out = {k: np.full(rates.size, np.nan) for k in keys}
    out["overloaded"] = np.zeros(rates.size, dtype=bool)
    qps_max = np.nan
    for i, q in enumerate(rates):
        d = continuous_batching(dep, float(q), prompt, output, reserve=reserve).data
        qps_max = d["qps_max"]
        out["overloaded"][i] = d["overloaded"]
        if d["overloaded"]:  # beyond the sustainable rate the queue grows without bound: no steady latency
            continue
        for k in keys:
            out[k][i] = np.nan if d[k] is None else float(d[k])
    return {"qps": rates, **out, "qps_max": float(qps_max)}
