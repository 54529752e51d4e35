"""The serving planner: the cheapest deployments of one model that meet TTFT/TPOT targets for a load.

Space, per replica (a replica serves a share of the load; replicas = ⌈load / replica capacity⌉):
- ``tp``: tensor parallel, powers of two dividing the heads, up to two scale-up domains (a TP group past
  one NVLink domain runs its all-reduces over the network, as ``infer``);
- ``tp×pp``: pipeline stages across nodes (vLLM/SGLang pipeline parallelism): a decode batch of N
  runs as pp micro-batches of N/pp, so a token takes the whole model's time at batch N/pp plus
  pp − 1 activation sends, while each stage holds 1/pp of the weights and KV;
- ``ep+dp-attention`` (MoE): attention data-parallel over dpa groups of tp GPUs (each group keeps its own
  sequences' KV), routed experts spread over all G = tp·dpa GPUs, an all-to-all dispatch and combine per
  MoE layer (DeepSeek-V3 report §3.4: decode with attention DP and EP across nodes; SGLang DP attention);
- weight precision (bf16, fp8 W8A8 where the hardware has an fp8 peak) and KV precision (bf16, fp8);
- the largest batch meeting the targets (continuous batching steady state, Little's law: as ``serve``);
- prefill/decode disaggregation (Zhong et al. 2024, DistServe; Qin et al. 2024, Mooncake): separate prefill
  and decode pools, the prompt's KV sent over the network, no prefill stalls in the decode pool.

Hardware whose catalogue entry records no scale_out link (no network between scale-up domains): every replica
stays within one scale-up domain (replicas are independent, so the fleet still spans many) and disaggregation is
not searched, as `plan` keeps a training job inside the domain there; nothing fitting inside it is one error line.

Latency model (mean-value, as llmcalc.inference.batching, plus stated tails): TTFT p50 = t_prefill + one
decode step; TPOT p50 = t_decode(N) / (1 − u), u the share of each stage's time spent prefilling. p99:
prefill waits in the M/D/1 queue of llmcalc.inference.batching (Pollaczek-Khinchine mean, Kingman tail; `serve`
reports the same wait); a decode step that shares the engine with prefills takes one prompt's prefill
stage time at p99 once more than 1% of steps contain one (no chunked prefill); a disaggregated decode pool
has no prefill stalls. Cost split: prefill GPU-time is charged to input tokens, decode GPU-time to output.

A request mix (classes i: prompt P_i, output O_i, w_i of arrivals; :class:`Workload`) is modelled per class
where the classes differ, as ``batching --mix``: in-flight shares s_i ∝ w_i·O_i (Little's law per class); the KV
cap charges each in-flight sequence its class's final length, N ≤ free // Σ s_i·kv(P_i + O_i) (the mean of the
per-class KV: the KV of the mean length only when KV is linear in length, not with sliding-window layers); the
decode step runs at the in-flight mean context Σ s_i·(P_i + O_i/2) (exact for full attention, whose KV reads are
linear in context; a window's min(c, W) is concave, so there it reads no less than the classes' mean: conservative);
the prefill load is u = λ·Σ w_i·t_u,i and
the queue M/G/1 (Pollaczek-Khinchine with E[S²] = Σ w_i·t_u,i²); class i's TTFT is W + t_p,i + t_d with W the
same wait for every class, and the TTFT targets apply to quantiles over arrivals (:func:`ttft_quantile`): with
no wait the p99 is the longest-prompt class's TTFT whenever that class is more than 1% of arrivals. TPOT is
common to every class (one decode batch); its p99 counts stalls by each class's prefill.

`serve` is this search restricted to its family (:func:`tp_family`: TP within one scale-up domain at one
weight and KV precision, no disaggregation), presented in its own format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.checks import check_count, check_number, check_positive_int, check_price
from ..core.efficiency import DEFAULT_EFFICIENCY, Efficiency
from ..core.errors import LlmcalcError
from ..core.held import HeldCache
from ..core.results import Result, derive
from ..core.specs import Hardware, Model
from ..network.collectives import ALPHA_OUT_S, ALPHA_UP_S
from .batching import queue_wait_mean, steady_state, wait_quantile
from .kv import fit, kv_bytes_per_request, kv_bytes_per_request_per_gpu
from .latency import Deployment, first_true, forward_flops, kv_and_allreduce, step

SRC_DP_ATTN = ("DeepSeek-V3 report §3.4 (attention DP + expert parallelism across nodes for decode); "
               "all-to-all dispatch and combine per MoE layer (Lepikhin et al. 2021 GShard §2.2)")
SRC_PP = "pipeline-parallel serving: pp micro-batches in flight, one activation send per stage boundary"
SRC_DISAGG = "Zhong et al. 2024 (DistServe) / Qin et al. 2024 (Mooncake): prefill and decode pools, KV sent over " \
             "the network"
SRC_MIX = ("request mix: in-flight share s_i ∝ w_i·O_i (Little's law per class, as `batching --mix`); TTFT quantiles "
           "over arrivals of b_i + W, W the wait before prefill, the same for every class (Poisson arrivals see "
           "time averages, Wolff 1982; prefills first come first served)")


@dataclass(frozen=True)
class Replica:
    kind: str  # "tp", "tp×pp", "ep+dp-attention"
    tp: int
    pp: int = 1
    dpa: int = 1  # attention data-parallel groups (ep+dp-attention): experts over tp·dpa GPUs
    weights: str | float = "bf16"
    kv_dtype: str = "bf16"
    group_size: int | None = None  # weight quantisation group (int4/int8 weight-only)
    activations: str | None = None  # GEMM input precision; None: 8 bit with fp8/int8 weights (W8A8), else bf16

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dpa

    def label(self) -> str:
        core = {"tp": f"TP{self.tp}", "tp×pp": f"TP{self.tp}×PP{self.pp}",
                "ep+dp-attention": f"attn TP{self.tp}×DP{self.dpa}, EP{self.tp * self.dpa}"}[self.kind]
        return f"{core} ({self.gpus} GPUs), weights {self.weights}, KV {self.kv_dtype}"


@dataclass(frozen=True)
class Workload:
    """Request classes: prompt P_i and output O_i tokens, w_i of arrivals (one class: w = 1)."""
    prompts: tuple[int, ...]
    outputs: tuple[int, ...]
    shares: tuple[float, ...] = (1.0,)

    @classmethod
    def of(cls, prompt, output, shares=None) -> Workload:
        ps, os_ = tuple(np.atleast_1d(prompt).tolist()), tuple(np.atleast_1d(output).tolist())
        for opt, vals in (("--prompt", ps), ("--output", os_)):
            if not vals:
                raise LlmcalcError(f"{opt} needs at least one token count")
            for v in vals:  # whole counts in [1, 2**53]: bools, strings, inf, 1.5 and 10**30 get one line each
                check_count(v, opt)
        ps, os_ = tuple(int(v) for v in ps), tuple(int(v) for v in os_)
        k = len(ps)
        ws = (1.0,) * k if k == 1 and shares is None else tuple(float(w) for w in np.atleast_1d(
            [1 / k] * k if shares is None else shares))
        if len(os_) != k or len(ws) != k:
            raise LlmcalcError(f"--prompt, --output and --mix need one value per request class: {k}, {len(os_)} "
                               f"and {len(ws)} given")
        if not all(np.isfinite(w) and w >= 0 for w in ws) or abs(sum(ws) - 1) > 1e-6:
            raise LlmcalcError(f"--mix shares of arrivals must be non-negative and sum to 1, got "
                               f"{', '.join(f'{w:g}' for w in ws)}")
        return cls(ps, os_, ws)

    @property
    def k(self) -> int:
        return len(self.prompts)

    @property
    def inflight(self) -> tuple[float, ...]:
        """s_i = w_i·O_i / Σ w_j·O_j: class i's share of the sequences in flight (Little's law, T_i ∝ O_i)."""
        wo = [w * o for w, o in zip(self.shares, self.outputs, strict=True)]
        return tuple(x / sum(wo) for x in wo)

    @property
    def prompt_mean(self) -> float:
        return sum(w * p for w, p in zip(self.shares, self.prompts, strict=True))

    @property
    def output_mean(self) -> float:
        return sum(w * o for w, o in zip(self.shares, self.outputs, strict=True))

    @property
    def decode_context(self) -> float:
        """Σ s_i·(P_i + O_i/2): the mean context of a sequence in flight (P + O/2 for one class)."""
        return sum(s * (p + o / 2) for s, p, o in zip(self.inflight, self.prompts, self.outputs, strict=True))

    @property
    def longest(self) -> int:
        return max(p + o for p, o in zip(self.prompts, self.outputs, strict=True))


def ttft_quantile(shares, base, wait_mean, rho, q: float):
    """q-quantile over arrivals of TTFT = b_C + W: class C = i with probability w_i, b_i (array (k, …)) its TTFT
    without queueing, W the wait before prefill, independent of the class (SRC_MIX), with the tail of
    llmcalc.inference.batching: P(W > t) = ρ·exp(−ρ·t/W̄) for t ≥ 0 (SRC_QUEUE). Returns the smallest x with
    P(TTFT > x) = Σ w_i·P(W > x − b_i) ≤ 1 − q, solved exactly between consecutive b's (sorted by the first
    column): on [b_j, b_j+1) it is A_j + ρ·Σ_{i≤j} w_i·e^(−ρ(x − b_i)/W̄), A_j = Σ_{i>j} w_i. One class: b + W_q;
    no wait: the lower weighted quantile of the b_i (p99 = the longest-prompt class's b when its share > 1%)."""
    base = np.asarray(base, dtype=float)
    w = np.asarray(shares, dtype=float)
    tail = 1 - q
    if len(w) == 1:
        return base[0] if np.isscalar(rho) and rho == 0 else base[0] + wait_quantile(wait_mean, rho, q)
    order = np.argsort(base.reshape(len(w), -1)[:, 0], kind="stable")
    b, w = base[order], w[order]
    rho = np.broadcast_to(np.asarray(rho, dtype=float), b.shape[1:])
    wm = np.broadcast_to(np.asarray(wait_mean, dtype=float), b.shape[1:])
    queued = (rho > 0) & (wm > 0)
    scale = np.where(queued, wm / np.where(queued, rho, 1.0), 1.0)  # W̄/ρ: the tail's decay length
    out = np.full(b.shape[1:], np.nan)
    for j in range(len(w)):
        a_j = w[j + 1:].sum()
        if a_j > tail:  # more than 1 − q of arrivals have not reached b_j yet
            continue
        c_j = sum(w[i] * np.exp(-np.where(queued, (b[j] - b[i]) / scale, 0.0)) for i in range(j + 1))
        g_at = a_j + np.where(queued, rho * c_j, 0.0)  # P(TTFT > b_j)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(g_at <= tail, b[j], b[j] + scale * np.log(np.where(queued, rho, 1.0) * c_j / (tail - a_j)))
        nxt = b[j + 1] if j + 1 < len(w) else np.inf
        fill = np.isnan(out) & ((g_at <= tail) | (x < nxt))
        out = np.where(fill, x, out)
    return out


def _dep(m: Model, hw: Hardware, r: Replica, eff: Efficiency) -> Deployment:
    hit = _DEPS.get((m, hw), (r, eff))
    if hit is not None:
        return hit
    act = r.activations or (r.weights if r.weights in ("fp8", "int8") else "bf16")  # W8A8: both GEMM inputs 8 bit
    return _DEPS.put((m, hw), (r, eff), Deployment(m, hw, r.tp, r.weights, r.group_size, r.kv_dtype, act, eff))


# A replica's Deployment per process (frozen; its cached byte counts are shared): a plan steps each replica's
# decode grid and its prefill, in up to three roles.
_DEPS = HeldCache(1024)


replica_deployment = _dep  # the Deployment a replica's tensor-parallel group runs (serve reads its steady state)


def _link(hw: Hardware, span: int, eff: Efficiency) -> tuple[float, float]:
    """(per-direction B/s × efficiency, α) of a group spanning ``span`` consecutive GPUs."""
    if span <= hw.scale_up.domain_size:
        return hw.scale_up.ring_bw_per_direction(span) * eff.link, ALPHA_UP_S
    if hw.scale_out is None:
        raise LlmcalcError(f"{hw.display_name} records no scale_out link: a replica cannot span its "
                           f"{hw.scale_up.domain_size}-device domain")
    return hw.scale_out.per_direction_bytes_per_s * eff.link, ALPHA_OUT_S


def capacity(m: Model, hw: Hardware, r: Replica, wl: Workload, reserve: float) -> tuple[int, str | None, bool]:
    """Sequences in flight whose KV fits per replica, each charged its class's final length P_i + O_i (the mean
    over in-flight sequences, Σ s_i·kv(P_i + O_i), for a mix), or (0, why not); and whether the weights fit."""
    ep = r.dpa if r.kind == "ep+dp-attention" else 1
    f = fit(m, hw, r.weights, r.group_size, r.kv_dtype, r.tp, r.pp, reserve=reserve, context=wl.longest,
            ep=ep, brief=True).data
    if not f["fits"]:
        return 0, (f"weights {f['weight_bytes_per_gpu'] / 1e9:.1f} GB per GPU > {f['usable_bytes_per_gpu'] / 1e9:.1f} "
                   f"GB usable ({reserve:.0%} reserved)"), False
    if f["max_batch"] < 1:
        return 0, (f"no room for one sequence's KV at {wl.longest} tokens "
                   f"({f['free_bytes_per_gpu'] / 1e9:.2f} GB left per GPU beside the weights)"), True
    per_gpu = int(f["max_batch"])
    if wl.k > 1:  # vLLM (Kwon et al. 2023): free KV bytes // KV bytes per running sequence at its final length
        per_seq = sum(s * float(kv_bytes_per_request_per_gpu(m, p + o, r.kv_dtype, r.tp, r.pp))
                      for s, p, o in zip(wl.inflight, wl.prompts, wl.outputs, strict=True))
        per_gpu = int(f["free_bytes_per_gpu"] // per_seq)
    return per_gpu * ep, None, True


def _moe_step(m: Model, hw: Hardware, r: Replica, eff: Efficiency, n, lq, ctx, prefill: bool) -> np.ndarray:
    """Time of one step of n sequences (lq new tokens each) on an ep+dp-attention replica (per GPU)."""
    dep = _dep(m, hw, r, eff)
    moe = m.moe
    # a prompt prefills on one attention group; decode spreads the sequences, the fullest group sets the pace
    b = np.asarray(n, float) if prefill else np.maximum(np.ceil(np.asarray(n, float) / r.dpa), 1.0)
    tokens = np.asarray(n, float) * lq
    always, per_expert = dep._read_parts()
    px = per_expert * 8 / _bits(dep) * m.n_moe_layers * moe.n_experts  # routed expert params (all layers)
    expert_flops_per_token = 2 * moe.top_k * px / moe.n_experts
    attn = kv_and_allreduce(dep, b, lq, ctx, prefill=prefill)  # KV and TP all-reduce of one attention group
    dense_flops = (forward_flops(m, b, lq, ctx, causal=prefill) - b * lq * expert_flops_per_token) / r.tp
    g = r.gpus
    flops = dense_flops + tokens * expert_flops_per_token / g
    local = moe.n_experts / g * (1 - (1 - moe.top_k / moe.n_experts) ** tokens)  # local experts touched
    bytes_ = (always / r.tp + dep.replicated_bytes_per_gpu + attn["kv_read_bytes"] + attn["kv_write_bytes"]
              + m.n_moe_layers * local * per_expert)
    t = np.maximum(flops / (dep.peak_flops_per_s * eff.flops), bytes_ / (hw.memory_bw_bytes_per_s * eff.memory_bw))
    bw, alpha = _link(hw, g, eff)
    msg = b * lq / r.tp * moe.top_k * m.d_model * dep.act_bytes * (g - 1) / g  # sent by each GPU, one way
    a2a = 2 * m.n_moe_layers * (alpha * (g - 1) + msg / bw)
    return t + attn["comm_s"] + a2a


def _bits(dep: Deployment) -> float:
    return dep._weights()["bits_per_weight"]


def step_s(m: Model, hw: Hardware, r: Replica, eff: Efficiency, n, lq, ctx, prefill: bool):
    """(time for one token/prompt through the whole replica, busy time per stage) for a step over n sequences."""
    if r.kind == "ep+dp-attention":
        t = _moe_step(m, hw, r, eff, n, lq, ctx, prefill)
        return t, t
    dep = _dep(m, hw, r, eff)
    mb = np.maximum(np.asarray(n, float) / r.pp, 1.0) if not prefill else np.asarray(n, float)
    t = step(dep, mb, lq, ctx, prefill=prefill)["step_s"]
    if r.pp == 1:
        return t, t
    bw, alpha = _link(hw, r.tp * r.pp, eff)
    send = (r.pp - 1) * (alpha + mb * lq * m.d_model * dep.act_bytes / r.tp / bw)
    return t + send, t / r.pp


def _tpot_p99(shares, t_u_class, t_d, tpot, stalls):
    """p99 decode step: t_d plus the longest prefill stage time (class j) that more than 1% of steps contain,
    i.e. Σ over classes at least as long of stalls·w_i > 0.01 (no chunked prefill); else the mean TPOT."""
    out = tpot
    found = np.zeros(np.shape(tpot), dtype=bool)
    cum = 0.0
    for j in np.argsort(-np.asarray(t_u_class), kind="stable"):
        cum = cum + stalls * shares[j]
        hit = ~found & (cum > 0.01)
        out = np.where(hit, np.maximum(tpot, t_d + t_u_class[j]), out)
        found |= hit
    return out


def evaluate(m: Model, hw: Hardware, r: Replica, *, prompt, output, ttft_s: float, tpot_s: float,
             ttft_p99_s: float | None, tpot_p99_s: float | None, eff: Efficiency, reserve: float,
             role: str = "both", shares=None, memo: dict | None = None) -> dict:
    """Best per-replica operating point meeting the targets (role: both | prefill | decode), or why none does.
    ``memo``: a dict shared by the calls for one replica (its three roles), which reuse its capacity and step times.

    ``prompt``/``output`` may be lists (request classes) with ``shares`` their shares of arrivals (see the module
    docstring). The concurrencies meeting the targets are 1 … N* (every latency rises with N), so N* is read off
    every N up to 4096 and, where the targets still hold there, searched for up to the KV cap (first_true)."""
    def once(key, fn, *a):
        if memo is None:
            return fn(*a)
        if key not in memo:
            memo[key] = fn(*a)
        return memo[key]

    wl = once("workload", Workload.of, prompt, output, shares)
    cap, why, weights_fit = once("capacity", capacity, m, hw, r, wl, reserve)
    if cap < 1:
        return {"ok": False, "why": why, "fits": False, "weights_fit": weights_fit}
    w = np.asarray(wl.shares)
    pre = once("prefill", lambda: [step_s(m, hw, r, eff, 1, p, p, True) for p in wl.prompts])
    t_pi, t_ui = np.array([float(a) for a, _ in pre]), np.array([float(b) for _, b in pre])
    t_p, t_u = float(w @ t_pi), float(w @ t_ui)  # means over arrivals (the class's own value for one class)
    t_u_sq = None if wl.k == 1 else float(w @ t_ui ** 2)  # E[S²] of the prefill service: M/G/1
    if role == "prefill":
        rho = np.linspace(0.01, 0.95, 95)
        wait = queue_wait_mean(t_u, rho, t_u_sq)
        ttft = float(ttft_quantile(w, t_pi, 0.0, 0.0, 0.5))  # p50 without queueing, as everywhere
        ttft99 = ttft_quantile(w, t_pi[:, None] + 0 * rho, wait, rho, 0.99)
        ok = (ttft <= ttft_s) & ((ttft_p99_s is None) | (ttft99 <= (ttft_p99_s or np.inf)))
        if not np.any(ok):
            return {"ok": False, "why": f"prefill of one prompt {ttft:.3g} s > TTFT target"}
        i = int(np.flatnonzero(ok)[-1])
        return {"ok": True, "qps": rho[i] / t_u, "ttft_s": ttft, "ttft_p99_s": float(ttft99[i]),
                "concurrency": rho[i], "prefill_share": 1.0, "t_prefill_s": t_p, "t_prefill_class_s": t_pi,
                "rho": float(rho[i]), "wait_mean_s": float(wait[i])}
    if role == "decode" and wl.output_mean <= 1:  # the first token comes from the prefill: no decode work
        return {"ok": False, "why": "one output token: nothing to decode in a separate pool"}
    decode_only = role == "decode"
    t_p_eff, t_u_eff = (0.0, 0.0) if decode_only else (t_p, t_u)
    base_p = 0 * t_pi if decode_only else t_pi

    def at(n):
        """Every figure at concurrencies n (array)."""
        t_d, _ = once(("decode", np.asarray(n).tobytes()), step_s, m, hw, r, eff, n, 1, wl.decode_context, False)
        # T² − T·s + N·t_p·t_u = 0 (Little's law + prefill share), λ, u, TPOT: llmcalc.inference.batching
        ss = steady_state(t_p_eff, t_d, wl.output_mean, n, t_busy=None if t_u_eff == t_p_eff else t_u_eff)
        T, lam, u, tpot = ss["request_s"], ss["qps"], ss["prefill_share"], ss["tpot_s"]
        base = base_p[:, None] + t_d
        ttft = ttft_quantile(w, base, 0.0, 0.0, 0.5)
        wait = 0.0 if decode_only else queue_wait_mean(t_u, np.minimum(u, 1 - 1e-12), t_u_sq)
        ttft99 = ttft_quantile(w, base, wait, u, 0.99)
        stalls = lam * t_d / np.maximum(1 - u, 1e-12)  # prefills per decode step
        tpot99 = tpot if decode_only else _tpot_p99(w, t_ui, t_d, tpot, stalls)
        ok = (tpot <= tpot_s) & (u < 1) & (decode_only | (ttft <= ttft_s))
        if ttft_p99_s is not None and not decode_only:
            ok &= ttft99 <= ttft_p99_s
        if tpot_p99_s is not None:
            ok &= tpot99 <= tpot_p99_s
        return {"n": n, "t_d": t_d, "T": T, "lam": lam, "u": u, "tpot": tpot, "ttft": ttft, "ttft99": ttft99,
                "tpot99": tpot99, "ok": ok}

    n = np.arange(1, min(cap, 4096) + 1, dtype=float)
    a = at(n)
    ok = a["ok"]
    if not ok.any():
        bad = []
        if not decode_only and a["ttft"][0] > ttft_s:
            bad.append(f"TTFT at batch 1 = {float(a['ttft'][0]):.3g} s > {ttft_s:g} s target")
        if a["tpot"][0] > tpot_s:
            bad.append(f"TPOT at batch 1 = {float(a['tpot'][0]) * 1e3:.3g} ms > {tpot_s * 1e3:g} ms target")
        if tpot_p99_s is not None and a["tpot99"][0] > tpot_p99_s:
            bad.append(f"TPOT p99 at batch 1 = {float(a['tpot99'][0]) * 1e3:.3g} ms > {tpot_p99_s * 1e3:g} ms "
                       "(a prefill stalls the decode step)")
        return {"ok": False, "why": "; ".join(bad) or "no batch meets every target"}
    i = int(np.flatnonzero(ok)[-1])
    if ok[-1] and cap > n.size:  # the targets hold at 4096 in flight: the rest of 1 … cap, by search
        seen = [a]

        def too_many(k):
            seen.append(at(k.astype(float)))
            return ~seen[-1]["ok"]

        first_bad = first_true(too_many, n.size + 1, cap, points=1024)
        best = float(cap if first_bad is None else first_bad - 1)
        hit = next(((x, int(j[0])) for x in seen if (j := np.flatnonzero(x["n"] == best)).size), None)
        a, i = hit or (at(np.array([best])), 0)  # the search has usually evaluated N* already (its last round)
    return {"ok": True, "qps": float(a["lam"][i]), "concurrency": float(a["n"][i]), "kv_cap": cap,
            "ttft_s": float(a["ttft"][i]), "ttft_p99_s": float(a["ttft99"][i]), "tpot_s": float(a["tpot"][i]),
            "tpot_p99_s": float(a["tpot99"][i]), "prefill_share": float(a["u"][i]), "t_prefill_s": t_p,
            "t_decode_s": float(a["t_d"][i]), "request_s": float(a["T"][i])}


def candidates(m: Model, hw: Hardware, weights: list[str], kv: list[str]) -> list[Replica]:
    """Every replica shape searched. Hardware without a scale_out link: only replicas within one scale-up domain
    (no network to run a wider group's collectives or sends over, as `plan` refuses a training job past it)."""
    dom = hw.scale_up.domain_size
    within = hw.span_limit is not None  # one replica on one scale-up domain at most
    most, most_ep = (dom, min(256, dom)) if within else (8 * dom, 256)  # GPUs a TP×PP / EP replica may span
    heads = m.attention.n_heads if m.attention.mla else math.gcd(m.attention.n_heads, m.attention.n_kv_heads)
    tps = [t for t in (1, 2, 4, 8, 16, 32) if heads % t == 0 and t <= (dom if within else 2 * dom)]
    out: list[Replica] = []
    for w in weights:
        for k in kv:
            out += [Replica("tp", t, 1, 1, w, k) for t in tps]
            out += [Replica("tp×pp", t, p, 1, w, k) for t in tps if t <= dom for p in (2, 4, 8)
                    if p <= m.n_layers and t * p <= most]
            if m.moe:
                out += [Replica("ep+dp-attention", t, 1, d, w, k) for t in tps if t <= dom
                        for d in (1, 2, 4, 8, 16, 32, 64) if 8 <= t * d <= most_ep
                        and m.moe.n_experts % (t * d) == 0]
    return out


def tp_family(m: Model, hw: Hardware, weights: str | float = "bf16", kv_dtype: str = "bf16",
              group_size: int | None = None, activations: str | None = None) -> list[Replica]:
    """`serve`'s family: one replica per TP = 1, 2, 4, … within the scale-up domain (NVLink node) that divides the
    attention heads and splits or replicates the KV heads whole (kv.check_tp), at one weight and KV precision."""
    from .kv import check_tp

    out, t = [], 1
    while t <= hw.scale_up.domain_size:
        try:
            check_tp(m, t)
        except LlmcalcError:
            t *= 2
            continue
        out.append(Replica("tp", t, 1, 1, weights, kv_dtype, group_size, activations))
        t *= 2
    return out


def search(m: Model, hw: Hardware, reps: list[Replica], wl: Workload, *, load: float | None,
           concurrent: float | None, price: float | None, disaggregate: bool, **kw) -> tuple[list, list, dict]:
    """Every candidate replica evaluated against the targets and sized for the load.

    Returns (outcomes, pooled, rejected_pools): outcomes = [(replica, evaluation, deployment row or None)] in the
    order given; pooled = the disaggregated deployments (best prefill and decode pool per KV precision);
    rejected_pools = {family: why} for KV precisions without both pools."""
    kw = dict(kw, prompt=list(wl.prompts), output=list(wl.outputs), shares=list(wl.shares))
    outcomes, pooled, rejected = [], [], {}
    best_pre, best_dec = {}, {}

    def pool_gpus(r, e):  # a pool's GPUs at this load (whole replicas), then GPUs per unit of rate
        return (r.gpus * math.ceil(load / e["qps"] - 1e-9) if load is not None else 0, r.gpus / e["qps"])

    for r in reps:
        fam = f"{r.kind}, weights {r.weights}, KV {r.kv_dtype}"
        memo: dict = {"workload": wl}  # this replica's capacity and step times, shared by its three roles
        e = evaluate(m, hw, r, **kw, memo=memo)
        outcomes.append((r, e, _deployment(fam, r, e, load, concurrent, wl, price) if e["ok"] else None))
        if disaggregate:
            for role, store in (("prefill", best_pre), ("decode", best_dec)):
                e2 = evaluate(m, hw, r, **kw, role=role, memo=memo)
                if e2["ok"] and (r.kv_dtype not in store or pool_gpus(r, e2) < pool_gpus(*store[r.kv_dtype])):
                    store[r.kv_dtype] = (r, e2)
    if disaggregate:
        for k in dict.fromkeys(r.kv_dtype for r in reps):
            if k in best_pre and k in best_dec:
                row = _disaggregated(m, hw, best_pre[k], best_dec[k], load, concurrent, wl, price, kw["ttft_s"],
                                     kw["ttft_p99_s"], kw["eff"])
                if row is not None:
                    pooled.append(row)
            else:
                missing = [s for s, st in (("prefill", best_pre), ("decode", best_dec)) if k not in st]
                rejected[f"disaggregated, KV {k}"] = f"no {' or '.join(missing)} pool meets its targets"
    return outcomes, pooled, rejected


def plan_serve(m: Model, hw: Hardware, *, prompt, output, ttft_s: float, tpot_s: float,
               qps: float | None = None, users: float | None = None, requests_per_user_per_min: float = 1.0,
               concurrent: float | None = None, ttft_p99_s: float | None = None, tpot_p99_s: float | None = None,
               weights: list[str] | None = None, kv_dtypes: list[str] | None = None, disaggregate: bool = True,
               eff: Efficiency = DEFAULT_EFFICIENCY, price_usd_per_hour: float | None = None, reserve: float = 0.1,
               top: int = 10, shares: list[float] | None = None) -> Result:
    """The cheapest deployments meeting the targets (fewest GPUs), and each rejected family's failing constraint.

    ``prompt``/``output``: token counts, or lists (request classes) with ``shares`` of arrivals (--mix)."""
    if sum(x is not None for x in (qps, users, concurrent)) != 1:
        raise LlmcalcError("give exactly one of --qps Q, --users U or --concurrent C")
    wl = Workload.of(prompt, output, shares)
    for opt, v in (("--ttft", ttft_s), ("--tpot", tpot_s), ("--qps", qps), ("--users", users),
                   ("--concurrent", concurrent), ("--ttft-p99", ttft_p99_s), ("--tpot-p99", tpot_p99_s),
                   ("--requests-per-user-per-min", requests_per_user_per_min)):
        check_number(v, opt)  # positive and finite (np.isfinite raised a TypeError on an int past float64)
    # a 99th percentile is never below the median, so such targets are a slip (swapped?), not a tighter goal
    for opt, p50, p99, unit, scale in (("--ttft", ttft_s, ttft_p99_s, "s", 1),
                                       ("--tpot", tpot_s, tpot_p99_s, "ms", 1e3)):
        if p99 is not None and p99 < p50:
            raise LlmcalcError(f"{opt}-p99 {p99 * scale:g} {unit} is below {opt} (p50) {p50 * scale:g} {unit}: "
                               "a p99 is never below its p50; give a p99 target at least the p50 one")
    # users and streams are whole counts, as `serve` reads them: --concurrent 0.5 planned half a stream
    check_count(users, "--users")
    check_count(concurrent, "--concurrent")
    check_number(reserve, "--reserve", low=0, low_ok=True, high=1, high_ok=False)  # as batching.check_workload
    check_price(price_usd_per_hour)  # as `plan`: a negative price gave negative $ per million tokens (user test)
    check_positive_int(top, "--top")  # as `plan`: --top -2 dropped rows, --top 0 blamed the targets (user test)
    if wl.longest > m.max_seq_len:
        raise LlmcalcError(f"--prompt + --output = {wl.longest} exceeds {m.display_name}'s "
                           f"{m.max_seq_len:,} positions")
    has_fp8 = "fp8" in hw.peak_flops_per_s
    weights = weights or (["bf16", "fp8"] if has_fp8 else ["bf16"])
    kv_dtypes = kv_dtypes or ["bf16", "fp8"]
    price = price_usd_per_hour if price_usd_per_hour is not None else hw.price_usd_per_hour
    if users is not None:
        load = users * requests_per_user_per_min / 60
        how = (f"{users:g} users × {requests_per_user_per_min:g} request per user per minute = {load:.4g} req/s "
               + ("(--requests-per-user-per-min, default 1)" if requests_per_user_per_min == 1 else "(given)"))
    elif qps is not None:
        load, how = qps, f"{qps:g} req/s (given)"
    else:
        load, how = None, f"{concurrent:g} requests in flight at all times (closed loop)"
    if wl.k == 1:
        each = f"each {wl.prompts[0]} prompt + {wl.outputs[0]} output tokens"
    else:
        each = "a mix of " + ", ".join(f"{w:.3g} × ({p} prompt + {o} output)"
                                       for p, o, w in zip(wl.prompts, wl.outputs, wl.shares, strict=True))
    notes = [f"load: {how}, {each}",
             f"targets: TTFT p50 ≤ {ttft_s:g} s" + (f", p99 ≤ {ttft_p99_s:g} s" if ttft_p99_s else "")
             + f"; TPOT p50 ≤ {tpot_s * 1e3:g} ms" + (f", p99 ≤ {tpot_p99_s * 1e3:g} ms" if tpot_p99_s else ""),
             eff.describe() + f"; {reserve:.0%} of memory reserved",
             "mean-value continuous batching (as `serve`); TTFT p50 held without queueing (as `serve`'s capacity); "
             "p99 from the M/D/1 prefill queue of `serve`" + (" (M/G/1 for the mix)" if wl.k > 1 else "")
             + " and prefill stalls",
             f"searched: TP, TP×PP across nodes{', EP + DP-attention' if m.moe else ''}, weights "
             f"{'/'.join(weights)}, KV {'/'.join(kv_dtypes)}" + (", prefill/decode disaggregation" if disaggregate
                                                                 else "")]
    if wl.k > 1:
        notes.insert(1, "request mix, per class (not its mean lengths): in flight s_i ∝ w_i·O_i (Little's law per "
                     "class); KV cap = free // Σ s_i·kv(P_i + O_i) (each sequence its class's final length); decode "
                     f"step at the in-flight mean context Σ s_i·(P_i + O_i/2) = {wl.decode_context:.0f} tokens; "
                     "TTFT_i = wait + t_prefill,i + t_decode, the wait M/G/1 (Pollaczek-Khinchine) and the same for "
                     "every class; TTFT p50/p99 are quantiles over arrivals (p99 = the longest-prompt class's "
                     "TTFT, plus its wait, once that class is over 1% of arrivals); TPOT is shared by all classes")
    dom, within = hw.scale_up.domain_size, hw.span_limit is not None
    if within:  # no network recorded: every replica inside one scale-up domain (as `plan` for a training job)
        notes[-1] = (f"searched: TP, TP×PP{', EP + DP-attention' if m.moe else ''} within one {dom}-device scale-up "
                     f"domain, weights {'/'.join(weights)}, KV {'/'.join(kv_dtypes)}")
        notes.append(f"{hw.display_name} records no scale-out link, so a replica cannot span more than its "
                     f"{dom}-device scale-up domain (replicas are independent; give the hardware YAML a scale_out "
                     "link to search across nodes)" + ("; prefill/decode disaggregation not searched (its KV "
                                                       "transfer needs the network)" if disaggregate else ""))
    kw = dict(ttft_s=ttft_s, tpot_s=tpot_s, ttft_p99_s=ttft_p99_s, tpot_p99_s=tpot_p99_s, eff=eff, reserve=reserve)
    reps = candidates(m, hw, weights, kv_dtypes)
    outcomes, pooled, rejected_pools = search(m, hw, reps, wl, load=load, concurrent=concurrent, price=price,
                                              disaggregate=disaggregate and not within, **kw)
    if within and all(e.get("fits") is False for _, e, _ in outcomes):
        r, e, _ = max(outcomes, key=lambda o: (o[0].gpus, -_bits(_dep(m, hw, o[0], eff))))  # the roomiest replica
        raise LlmcalcError(f"{m.display_name} does not fit within one {dom}-device scale-up domain of "
                           f"{hw.display_name} at weights {'/'.join(weights)}, KV {'/'.join(kv_dtypes)} (best: "
                           f"{r.label().split(' (')[0]}, {e['why']}), and {hw.display_name} records no scale-out "
                           "link to span more (fewer-bit --weights, larger-memory hardware, or give the hardware "
                           "YAML a scale_out link)")
    rows, rejected = [], {}
    for r, e, row in outcomes:
        if row is not None:
            rows.append(row)
        else:
            rejected.setdefault(f"{r.kind}, weights {r.weights}, KV {r.kv_dtype}", []).append(
                f"{r.label().split(' (')[0]}: {e['why']}")
    rows += pooled
    for fam, why in rejected_pools.items():
        rejected.setdefault(fam, []).append(why)
    rows.sort(key=lambda x: (x["gpus"], x["usd_per_million_output"] or 0))
    best_by_family: dict[str, dict] = {}
    for x in rows:
        best_by_family.setdefault(x["family"], x)
    ranked = list(best_by_family.values())[:top]
    failed = {f: "; ".join(v[-3:]) for f, v in rejected.items() if f not in best_by_family}
    data = {"model": m.name, "hardware": hw.name, "qps": load, "concurrent": concurrent,
            "prompt": wl.prompts[0] if wl.k == 1 else list(wl.prompts),
            "output": wl.outputs[0] if wl.k == 1 else list(wl.outputs), "mix": list(wl.shares),
            "ranked": ranked, "rejected": failed, "price_usd_per_hour": price, "assumptions_first": notes}
    if not ranked:
        inside = f" within one {dom}-device scale-up domain (no scale-out link recorded)" if within else ""
        raise LlmcalcError(f"no deployment of {m.display_name} on {hw.display_name}{inside} meets the targets: "
                           + " | ".join(f"{f}: {w}" for f, w in list(failed.items())[:6]))
    b = ranked[0]
    figs = (derive("gpus", "g", "GPU", "fewest GPUs meeting every target", label=f"best: {b['config']} — GPUs",
                   g=b["gpus"]),
            derive("replicas", "r", "replica", "⌈load / replica capacity⌉", label="best: replicas", r=b["replicas"]),
            derive("tpot_s", "t", "s", "decode step / (1 − prefill share)", label="best: TPOT p50", t=b["tpot_s"]),
            derive("ttft_s", "t", "s", "prefill + one decode step", label="best: TTFT p50", t=b["ttft_s"]))
    if price is None:
        notes.append(f"no price for {hw.display_name}: pass --price for $ per million tokens")
    return Result(f"Serving plan: {m.display_name} on {hw.display_name}", figs, tuple(notes), data)


def _fleet(e_qps: float, e_conc: float, load: float | None, concurrent: float | None) -> tuple[int, float]:
    """(replicas, fleet request rate) for the load or the closed-loop concurrency."""
    if load is not None:
        return max(1, math.ceil(load / e_qps - 1e-9)), load
    reps = max(1, math.ceil(concurrent / e_conc - 1e-9))
    return reps, concurrent / e_conc * e_qps  # every replica at its operating point's rate, pro rata


def _deployment(fam: str, r: Replica, e: dict, load, concurrent, wl: Workload, price) -> dict:
    reps, lam = _fleet(e["qps"], e["concurrency"], load, concurrent)
    gpus = reps * r.gpus
    out_tps, in_tps = lam * wl.output_mean, lam * wl.prompt_mean
    # prefill's share of GPU time at the actual load, as `serve` splits cost: u = λ_replica·t_prefill (the share
    # at capacity scaled by the replica's load over its capacity)
    u = e["prefill_share"] * (lam / reps) / e["qps"]
    usd_h = None if price is None else gpus * price
    return {"family": fam, "config": r.label(), "gpus": gpus, "replicas": reps, "concurrency_per_replica":
            e["concurrency"], "ttft_s": e["ttft_s"], "ttft_p99_s": e["ttft_p99_s"], "tpot_s": e["tpot_s"],
            "tpot_p99_s": e["tpot_p99_s"], "qps": lam, "output_tokens_per_s": out_tps,
            "input_tokens_per_s": in_tps,
            "usd_per_million_input": None if usd_h is None else usd_h * u / 3600 / in_tps * 1e6,
            "usd_per_million_output": None if usd_h is None else usd_h * (1 - u) / 3600 / out_tps * 1e6}


def _disaggregated(m, hw, pre, dec, load, concurrent, wl: Workload, price, ttft_s, ttft_p99_s, eff) -> dict | None:
    (rp, ep), (rd, ed) = pre, dec
    bw, alpha = _link(hw, 2 * hw.scale_up.domain_size, eff)  # pools on different nodes: the network
    kv = np.array([float(kv_bytes_per_request(m, p, rd.kv_dtype)) for p in wl.prompts])
    transfer = alpha + kv / (rp.gpus * bw)  # each prefill GPU sends its shard over its own NIC (per class)
    w, t_pi = np.asarray(wl.shares), ep["t_prefill_class_s"]
    ttft = float(ttft_quantile(w, t_pi + transfer + ed["tpot_s"], 0.0, 0.0, 0.5))
    ttft99 = float(ttft_quantile(w, t_pi + transfer + ed["tpot_p99_s"], ep["wait_mean_s"], ep["rho"], 0.99))
    if ttft > ttft_s or (ttft_p99_s is not None and ttft99 > ttft_p99_s):
        return None
    ttft_mean = float(w @ (t_pi + transfer)) + ed["tpot_s"]
    lam = load if load is not None else concurrent / (ttft_mean + (wl.output_mean - 1) * ed["tpot_s"])
    rep_p = max(1, math.ceil(lam / ep["qps"] - 1e-9))
    rep_d = max(1, math.ceil(lam / ed["qps"] - 1e-9))
    gp, gd = rep_p * rp.gpus, rep_d * rd.gpus
    return {"family": f"disaggregated, KV {rd.kv_dtype}", "config": f"prefill {rp.label()} ×{rep_p} + decode "
            f"{rd.label()} ×{rep_d}", "gpus": gp + gd, "replicas": rep_p + rep_d,
            "concurrency_per_replica": ed["concurrency"], "ttft_s": ttft, "ttft_p99_s": ttft99,
            "tpot_s": ed["tpot_s"], "tpot_p99_s": ed["tpot_p99_s"], "qps": lam,
            "output_tokens_per_s": lam * wl.output_mean, "input_tokens_per_s": lam * wl.prompt_mean,
            "kv_transfer_s": float(w @ transfer),
            "usd_per_million_input": None if price is None else gp * price / 3600 / (lam * wl.prompt_mean) * 1e6,
            "usd_per_million_output": None if price is None else gd * price / 3600 / (lam * wl.output_mean) * 1e6}
