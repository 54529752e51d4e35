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

Latency model (mean-value, as llmcalc.inference.batching, plus stated tails): TTFT p50 = t_prefill + one
decode step; TPOT p50 = t_decode(N) / (1 − u), u the share of each stage's time spent prefilling. p99:
prefill waits as an M/M/1 queue (Kleinrock 1975 §3.2: P(W > x) = ρ·e^(−(1−ρ)x/s); conservative for
near-constant prefill times); a decode step that shares the engine with prefills takes one prompt's prefill
stage time at p99 once more than 1% of steps contain one (no chunked prefill); a disaggregated decode pool
has no prefill stalls. Cost split: prefill GPU-time is charged to input tokens, decode GPU-time to output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.efficiency import DEFAULT_EFFICIENCY, Efficiency
from ..core.errors import LlmcalcError
from ..core.results import Result, derive
from ..core.specs import Hardware, Model
from ..network.collectives import ALPHA_OUT_S, ALPHA_UP_S
from .kv import fit, kv_bytes_per_request
from .latency import Deployment, forward_flops, step

SRC_DP_ATTN = ("DeepSeek-V3 report §3.4 (attention DP + expert parallelism across nodes for decode); "
               "all-to-all dispatch and combine per MoE layer (Lepikhin et al. 2021 GShard §2.2)")
SRC_PP = "pipeline-parallel serving: pp micro-batches in flight, one activation send per stage boundary"
SRC_DISAGG = "Zhong et al. 2024 (DistServe) / Qin et al. 2024 (Mooncake): prefill and decode pools, KV sent over " \
             "the network"
SRC_MM1 = "M/M/1 waiting-time tail (Kleinrock 1975 §3.2): p99 wait = s·ln(100ρ)/(1 − ρ) for ρ > 0.01"


@dataclass(frozen=True)
class Replica:
    kind: str  # "tp", "tp×pp", "ep+dp-attention"
    tp: int
    pp: int = 1
    dpa: int = 1  # attention data-parallel groups (ep+dp-attention): experts over tp·dpa GPUs
    weights: str = "bf16"
    kv_dtype: str = "bf16"

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dpa

    def label(self) -> str:
        core = {"tp": f"TP{self.tp}", "tp×pp": f"TP{self.tp}×PP{self.pp}",
                "ep+dp-attention": f"attn TP{self.tp}×DP{self.dpa}, EP{self.tp * self.dpa}"}[self.kind]
        return f"{core} ({self.gpus} GPUs), weights {self.weights}, KV {self.kv_dtype}"


def _dep(m: Model, hw: Hardware, r: Replica, eff: Efficiency) -> Deployment:
    act = r.weights if r.weights in ("fp8", "int8") else "bf16"  # W8A8: both GEMM inputs in 8 bit
    return Deployment(m, hw, r.tp, r.weights, None, r.kv_dtype, act, eff)


def _link(hw: Hardware, span: int, eff: Efficiency) -> tuple[float, float]:
    """(per-direction B/s × efficiency, α) of a group spanning ``span`` consecutive GPUs."""
    if span <= hw.scale_up.domain_size:
        return hw.scale_up.ring_bw_per_direction(span) * eff.link, ALPHA_UP_S
    if hw.scale_out is None:
        raise LlmcalcError(f"{hw.display_name} records no scale_out link: a replica cannot span its "
                           f"{hw.scale_up.domain_size}-device domain")
    return hw.scale_out.per_direction_bytes_per_s * eff.link, ALPHA_OUT_S


def capacity(m: Model, hw: Hardware, r: Replica, context: int, reserve: float) -> tuple[int, str | None]:
    """Sequences of ``context`` tokens whose KV fits per replica, or (0, why not)."""
    ep = r.dpa if r.kind == "ep+dp-attention" else 1
    f = fit(m, hw, r.weights, None, r.kv_dtype, r.tp, r.pp, reserve=reserve, context=context, ep=ep).data
    if not f["fits"]:
        return 0, (f"weights {f['weight_bytes_per_gpu'] / 1e9:.1f} GB per GPU > {f['usable_bytes_per_gpu'] / 1e9:.1f} "
                   f"GB usable")
    n = int(f["max_batch"]) * (r.dpa if r.kind == "ep+dp-attention" else 1)
    return (n, None) if n >= 1 else (0, f"no room for one sequence's KV at {context} tokens")


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
    attn = step(dep, b, lq, ctx, prefill=prefill)  # the whole model on one attention group of tp GPUs
    dense_flops = (forward_flops(m, b, lq, ctx, causal=prefill) - b * lq * expert_flops_per_token) / r.tp
    g = r.gpus
    flops = dense_flops + tokens * expert_flops_per_token / g
    local = moe.n_experts / g * (1 - (1 - moe.top_k / moe.n_experts) ** tokens)  # local experts touched
    bytes_ = always / r.tp + attn["kv_read_bytes"] + attn["kv_write_bytes"] + m.n_moe_layers * local * per_expert
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


def evaluate(m: Model, hw: Hardware, r: Replica, *, prompt: int, output: int, ttft_s: float, tpot_s: float,
             ttft_p99_s: float | None, tpot_p99_s: float | None, eff: Efficiency, reserve: float,
             role: str = "both", memo: dict | None = None) -> dict:
    """Best per-replica operating point meeting the targets (role: both | prefill | decode), or why none does.
    ``memo``: a dict shared by the calls for one replica (its roles), which reuse its capacity and step times."""

    def once(key, fn, *a):
        if memo is None:
            return fn(*a)
        if key not in memo:
            memo[key] = fn(*a)
        return memo[key]

    cap, why = once("capacity", capacity, m, hw, r, prompt + output, reserve)
    if cap < 1:
        return {"ok": False, "why": why}
    t_p, t_u = once("prefill", step_s, m, hw, r, eff, 1, prompt, prompt, True)
    t_p, t_u = float(t_p), float(t_u)
    if role == "prefill":
        rho = np.linspace(0.01, 0.95, 95)
        wait99 = np.where(rho > 0.01, t_u * np.log(100 * rho) / (1 - rho), 0.0)
        ok = (t_p <= ttft_s) & ((ttft_p99_s is None) | (t_p + wait99 <= (ttft_p99_s or np.inf)))
        if not np.any(ok):
            return {"ok": False, "why": f"prefill of one prompt {t_p:.3g} s > TTFT target"}
        i = int(np.flatnonzero(ok)[-1])
        return {"ok": True, "qps": rho[i] / t_u, "ttft_s": t_p, "ttft_p99_s": t_p + float(wait99[i]),
                "concurrency": rho[i], "prefill_share": 1.0, "t_prefill_s": t_p}
    n = np.arange(1, min(cap, 4096) + 1, dtype=float)
    t_d, _ = once("decode", step_s, m, hw, r, eff, n, 1, prompt + output / 2, False)
    t_u_eff = 0.0 if role == "decode" else t_u
    t_p_eff = 0.0 if role == "decode" else t_p
    s = t_p_eff + n * t_u_eff + (output - 1) * t_d  # T² − T·s + N·t_p·t_u = 0 (Little's law + prefill share)
    T = (s + np.sqrt(np.maximum(s * s - 4 * n * t_p_eff * t_u_eff, 0))) / 2
    lam = n / T
    u = lam * t_u_eff
    tpot = t_d / np.maximum(1 - u, 1e-12)
    ttft = t_p_eff + t_d
    wait99 = np.where(u > 0.01, t_u_eff * np.log(np.maximum(100 * u, 1)) / np.maximum(1 - u, 1e-12), 0.0)
    ttft99 = ttft + wait99
    stalls = lam * t_d / np.maximum(1 - u, 1e-12)  # prefills per decode step
    tpot99 = np.where((role != "decode") & (stalls > 0.01), np.maximum(tpot, t_d + t_u_eff), tpot)
    ok = (tpot <= tpot_s) & (u < 1) & ((role == "decode") | (ttft <= ttft_s))
    if ttft_p99_s is not None and role != "decode":
        ok &= ttft99 <= ttft_p99_s
    if tpot_p99_s is not None:
        ok &= tpot99 <= tpot_p99_s
    if not ok.any():
        bad = []
        if role != "decode" and ttft[0] > ttft_s:
            bad.append(f"TTFT at batch 1 = {float(ttft[0]):.3g} s > {ttft_s:g} s")
        if tpot[0] > tpot_s:
            bad.append(f"TPOT at batch 1 = {float(tpot[0]) * 1e3:.3g} ms > {tpot_s * 1e3:g} ms")
        if tpot_p99_s is not None and tpot99[0] > tpot_p99_s:
            bad.append(f"TPOT p99 at batch 1 = {float(tpot99[0]) * 1e3:.3g} ms > {tpot_p99_s * 1e3:g} ms "
                       "(a prefill stalls the decode step)")
        return {"ok": False, "why": "; ".join(bad) or "no batch meets every target"}
    i = int(np.flatnonzero(ok)[-1])
    return {"ok": True, "qps": float(lam[i]), "concurrency": float(n[i]), "kv_cap": cap, "ttft_s": float(ttft if
            np.ndim(ttft) == 0 else ttft[i]), "ttft_p99_s": float(ttft99[i]), "tpot_s": float(tpot[i]),
            "tpot_p99_s": float(tpot99[i]), "prefill_share": float(u[i]), "t_prefill_s": t_p}


def candidates(m: Model, hw: Hardware, weights: list[str], kv: list[str]) -> list[Replica]:
    dom = hw.scale_up.domain_size
    heads = m.attention.n_heads if m.attention.mla else math.gcd(m.attention.n_heads, m.attention.n_kv_heads)
    tps = [t for t in (1, 2, 4, 8, 16, 32) if heads % t == 0 and t <= 2 * dom]
    out: list[Replica] = []
    for w in weights:
        for k in kv:
            out += [Replica("tp", t, 1, 1, w, k) for t in tps]
            out += [Replica("tp×pp", t, p, 1, w, k) for t in tps if t <= dom for p in (2, 4, 8)
                    if p <= m.n_layers and t * p <= 8 * dom]
            if m.moe:
                out += [Replica("ep+dp-attention", t, 1, d, w, k) for t in tps if t <= dom
                        for d in (1, 2, 4, 8, 16, 32, 64) if 8 <= t * d <= 256 and m.moe.n_experts % (t * d) == 0]
    return out


def plan_serve(m: Model, hw: Hardware, *, prompt: int, output: int, ttft_s: float, tpot_s: float,
               qps: float | None = None, users: float | None = None, requests_per_user_per_min: float = 1.0,
               concurrent: float | None = None, ttft_p99_s: float | None = None, tpot_p99_s: float | None = None,
               weights: list[str] | None = None, kv_dtypes: list[str] | None = None, disaggregate: bool = True,
               eff: Efficiency = DEFAULT_EFFICIENCY, price_usd_per_hour: float | None = None, reserve: float = 0.1,
               top: int = 10) -> Result:
    """The cheapest deployments meeting the targets (fewest GPUs), and each rejected family's failing constraint."""
    if sum(x is not None for x in (qps, users, concurrent)) != 1:
        raise LlmcalcError("give exactly one of --qps Q, --users U or --concurrent C")
    for opt, v in (("--prompt", prompt), ("--output", output)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise LlmcalcError(f"{opt} must be a positive whole number of tokens, got {v!r}")
    for opt, v in (("--ttft", ttft_s), ("--tpot", tpot_s), ("--qps", qps), ("--users", users),
                   ("--concurrent", concurrent), ("--ttft-p99", ttft_p99_s), ("--tpot-p99", tpot_p99_s),
                   ("--requests-per-user-per-min", requests_per_user_per_min)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise LlmcalcError(f"{opt} must be a positive finite number, got {v!r}")
    if not 0 <= reserve < 1:
        raise LlmcalcError(f"--reserve must lie in [0, 1), got {reserve!r}")
    if prompt + output > m.max_seq_len:
        raise LlmcalcError(f"--prompt + --output = {prompt + output} exceeds {m.display_name}'s "
                           f"{m.max_seq_len:,} positions")
    has_fp8 = "fp8" in hw.peak_flops_per_s
    weights = weights or (["bf16", "fp8"] if has_fp8 else ["bf16"])
    kv_dtypes = kv_dtypes or ["bf16", "fp8"]
    price = price_usd_per_hour if price_usd_per_hour is not None else hw.price_usd_per_hour
    if users is not None:
        load = users * requests_per_user_per_min / 60
        how = (f"{users:g} users × {requests_per_user_per_min:g} request per user per minute = {load:.4g} req/s "
               "(assumed; --requests-per-user-per-min)")
    elif qps is not None:
        load, how = qps, f"{qps:g} req/s (given)"
    else:
        load, how = None, f"{concurrent:g} requests in flight at all times (closed loop)"
    notes = [f"load: {how}, each {prompt} prompt + {output} output tokens",
             f"targets: TTFT p50 ≤ {ttft_s:g} s" + (f", p99 ≤ {ttft_p99_s:g} s" if ttft_p99_s else "")
             + f"; TPOT p50 ≤ {tpot_s * 1e3:g} ms" + (f", p99 ≤ {tpot_p99_s * 1e3:g} ms" if tpot_p99_s else ""),
             eff.describe() + f"; {reserve:.0%} of memory reserved",
             "mean-value continuous batching (as `serve`); p99 from an M/M/1 prefill queue and prefill stalls",
             f"searched: TP, TP×PP across nodes{', EP + DP-attention' if m.moe else ''}, weights "
             f"{'/'.join(weights)}, KV {'/'.join(kv_dtypes)}" + (", prefill/decode disaggregation" if disaggregate
                                                                 else "")]
    kw = dict(prompt=prompt, output=output, ttft_s=ttft_s, tpot_s=tpot_s, ttft_p99_s=ttft_p99_s,
              tpot_p99_s=tpot_p99_s, eff=eff, reserve=reserve)
    rows, rejected = [], {}
    best_pre, best_dec = {}, {}
    for r in candidates(m, hw, weights, kv_dtypes):
        fam = f"{r.kind}, weights {r.weights}, KV {r.kv_dtype}"
        memo: dict = {}  # this replica's capacity and step times, shared by its three roles
        e = evaluate(m, hw, r, **kw, memo=memo)
        if e["ok"]:
            rows.append(_deployment(fam, r, e, load, concurrent, prompt, output, price))
        else:
            rejected.setdefault(fam, []).append(f"{r.label().split(' (')[0]}: {e['why']}")
        if disaggregate:
            for role, store in (("prefill", best_pre), ("decode", best_dec)):
                e2 = evaluate(m, hw, r, **kw, role=role, memo=memo)
                if e2["ok"] and (r.kv_dtype not in store or r.gpus / e2["qps"] < store[r.kv_dtype][0].gpus /
                                 store[r.kv_dtype][1]["qps"]):
                    store[r.kv_dtype] = (r, e2)
    if disaggregate:
        for k in kv_dtypes:
            if k in best_pre and k in best_dec:
                rows.append(_disaggregated(m, hw, best_pre[k], best_dec[k], load, concurrent, prompt, output,
                                           price, ttft_s, ttft_p99_s, eff))
            else:
                missing = [s for s, st in (("prefill", best_pre), ("decode", best_dec)) if k not in st]
                rejected.setdefault(f"disaggregated, KV {k}", []).append(f"no {' or '.join(missing)} pool "
                                                                         "meets its targets")
    rows = [x for x in rows if x is not None]
    rows.sort(key=lambda x: (x["gpus"], x["usd_per_million_output"] or 0))
    best_by_family: dict[str, dict] = {}
    for x in rows:
        best_by_family.setdefault(x["family"], x)
    ranked = list(best_by_family.values())[:top]
    failed = {f: "; ".join(v[-3:]) for f, v in rejected.items() if f not in best_by_family}
    data = {"model": m.name, "hardware": hw.name, "qps": load, "concurrent": concurrent, "prompt": prompt,
            "output": output, "ranked": ranked, "rejected": failed, "price_usd_per_hour": price,
            "assumptions_first": notes}
    if not ranked:
        raise LlmcalcError(f"no deployment of {m.display_name} on {hw.display_name} meets the targets: "
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


def _deployment(fam: str, r: Replica, e: dict, load, concurrent, prompt, output, price) -> dict:
    reps, lam = _fleet(e["qps"], e["concurrency"], load, concurrent)
    gpus = reps * r.gpus
    out_tps, in_tps = lam * output, lam * prompt
    u = e["prefill_share"]
    usd_h = None if price is None else gpus * price
    return {"family": fam, "config": r.label(), "gpus": gpus, "replicas": reps, "concurrency_per_replica":
            e["concurrency"], "ttft_s": e["ttft_s"], "ttft_p99_s": e["ttft_p99_s"], "tpot_s": e["tpot_s"],
            "tpot_p99_s": e["tpot_p99_s"], "qps": lam, "output_tokens_per_s": out_tps,
            "input_tokens_per_s": in_tps,
            "usd_per_million_input": None if usd_h is None else usd_h * u / 3600 / in_tps * 1e6,
            "usd_per_million_output": None if usd_h is None else usd_h * (1 - u) / 3600 / out_tps * 1e6}


def _disaggregated(m, hw, pre, dec, load, concurrent, prompt, output, price, ttft_s, ttft_p99_s, eff) -> dict | None:
    (rp, ep), (rd, ed) = pre, dec
    bw, alpha = _link(hw, 2 * hw.scale_up.domain_size, eff)  # pools on different nodes: the network
    kv = float(kv_bytes_per_request(m, prompt, rd.kv_dtype))
    transfer = alpha + kv / (rp.gpus * bw)  # each prefill GPU sends its shard over its own NIC
    ttft = ep["ttft_s"] + transfer + ed["tpot_s"]
    ttft99 = ep["ttft_p99_s"] + transfer + ed["tpot_p99_s"]
    if ttft > ttft_s or (ttft_p99_s is not None and ttft99 > ttft_p99_s):
        return None
    lam = load if load is not None else concurrent / (ttft + (output - 1) * ed["tpot_s"])
    rep_p = max(1, math.ceil(lam / ep["qps"] - 1e-9))
    rep_d = max(1, math.ceil(lam / ed["qps"] - 1e-9))
    gp, gd = rep_p * rp.gpus, rep_d * rd.gpus
    return {"family": f"disaggregated, KV {rd.kv_dtype}", "config": f"prefill {rp.label()} ×{rep_p} + decode "
            f"{rd.label()} ×{rep_d}", "gpus": gp + gd, "replicas": rep_p + rep_d,
            "concurrency_per_replica": ed["concurrency"], "ttft_s": ttft, "ttft_p99_s": ttft99,
            "tpot_s": ed["tpot_s"], "tpot_p99_s": ed["tpot_p99_s"], "qps": lam, "output_tokens_per_s": lam * output,
            "input_tokens_per_s": lam * prompt, "kv_transfer_s": transfer,
            "usd_per_million_input": None if price is None else gp * price / 3600 / (lam * prompt) * 1e6,
            "usd_per_million_output": None if price is None else gd * price / 3600 / (lam * output) * 1e6}
