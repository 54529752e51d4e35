"""Every operator of one transformer layer on the roofline, prefill and decode (LLM-Viewer's view).

For each matmul that :func:`llmcalc.model.flops.forward_flops` lists for a layer, the bytes it moves
through HBM are the sizes of its operands and result in its einsum (shape-suffix letters), at the
precision each lives in: weights at the deployment's bits per weight, the KV cache at the KV precision
(GQA: the cache holds G key/value heads, not H), activations at the activation precision. The score and
value matmuls are one fused attention operator, as FlashAttention runs them (Dao et al. 2022 §3: the
L×M score matrix never reaches HBM). Per device under TP: FLOPs, weights and cache are split over the
TP ranks (Shoeybi et al. 2019 §3); activations are counted whole (an upper bound: TP's row-parallel
inputs are split). Routed experts read only the experts the step's tokens touch (the same expectation
as llmcalc.inference.latency). The roofline: attained = min(peak·e_flops, I·bandwidth·e_mem)
(Williams et al. 2009), I = FLOPs / bytes; LLM-Viewer (Yuan et al. 2024, "LLM Inference Unveiled")
draws the same per-operator picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .kv import kv_bytes_per_element, kv_heads_per_gpu
from .latency import Deployment

_TOKEN = re.compile(r"\([^)]*\)|[A-Z]'?")
SRC = "operand bytes of each einsum at their precision; fused attention (Dao et al. 2022); roofline (Williams 2009)"


@dataclass(frozen=True)
class Operators:
    block: str  # the block type drawn (the one most layers use)
    rows: list  # one dict per operator and phase
    note: str


def _dims(dep: Deployment, B: float, L: float, M: float) -> dict[str, float]:
    m, a = dep.model, dep.model.attention
    d = dict(B=B, L=L, M=M, D=m.d_model, H=a.n_heads, G=a.n_kv_heads, K=a.head_dim, F=m.mlp.d_ff or 0)
    if m.moe:
        d.update(E=m.moe.n_experts, F=m.moe.d_ff_expert)
    if a.mla:
        x = a.mla
        d.update({"C": x.kv_lora_rank, "C'": x.q_lora_rank or m.d_model, "R": x.qk_rope_head_dim,
                  "K": x.qk_nope_head_dim})
    return d


def _size(operand: str, dims: dict[str, float]) -> float:
    out = 1.0
    for tok in _TOKEN.findall(operand):
        if tok.startswith("("):
            out *= sum(dims[t] for t in _TOKEN.findall(tok[1:-1]))
        else:
            out *= dims[tok]
    return out


def _operands(einsum: str) -> tuple[list[str], str]:
    lhs, rhs = einsum.split("->")
    return lhs.split(","), rhs


def layer_operators(dep: Deployment, batch: int, prompt: int, output: int) -> Operators:
    """Per-operator FLOPs, bytes, intensity and attained FLOP/s per device, for a prefill of ``prompt``
    tokens and a decode step at context ``prompt + 1`` (batch ``batch``)."""
    from ..model.flops import forward_flops

    m = dep.model
    w_bytes = dep._weights()["bits_per_weight"] / 8
    kv_b = kv_bytes_per_element(dep.kv_dtype)
    act = dep.act_bytes
    tp = dep.tp
    kv_share = 1.0 if m.attention.mla else kv_heads_per_gpu(m, tp) / m.attention.n_kv_heads
    peak = dep.peak_flops_per_s * dep.eff.flops
    bw = dep.hw.memory_bw_bytes_per_s * dep.eff.memory_bw
    rows, block = [], ""
    for phase, L, M in (("prefill", prompt, prompt), ("decode", 1, prompt + 1)):
        per_layer = forward_flops(m, batch, L, kv_len=M, causal=phase == "prefill",
                                  mla_absorbed=bool(m.attention.mla) and phase == "decode").data["per_layer"]
        block = max(per_layer, key=lambda k: per_layer[k]["layers"])
        dims = _dims(dep, batch, L, M)
        attn = {"flops": 0.0, "bytes": 0.0}
        for mm in per_layer[block]["matmuls"]:
            key, flops = mm["key"].split("/")[-1], float(np.sum(mm["flops"]))
            if key == "experts":  # top_k x (BLD,DF->BLF): the experts the tokens touch, tokens in and out
                mats = 3 if m.mlp.gated else 2
                wts = dep.experts_touched(batch * L) * mats * dims["D"] * dims["F"] * w_bytes / tp
                acts = batch * L * m.moe.top_k * (2 * dims["D"] + (mats - 1) * dims["F"]) * act
                rows.append(_row(mm["label"], phase, flops / tp, float(wts + acts), peak, bw))
                continue
            ins, out = _operands(mm["einsum"])
            if key in ("scores", "values"):  # fused: Q in, K/V cache in (G heads), result out; no L×M matrix
                cache = [o for o in ins if "M" in o and "L" not in o]
                cache_bytes = 0.0
                for o in cache:
                    if key == "values" and m.attention.mla and "C" in o:
                        continue  # absorbed MLA reads one latent for both keys and values
                    size = _size(o.replace("H", "G") if not m.attention.mla else o, dims)
                    cache_bytes += size * kv_b * kv_share
                q = _size(ins[0], dims) * act if key == "scores" else 0.0
                res = _size(out, dims) * act / tp if key == "values" else 0.0
                attn["flops"] += flops / tp
                attn["bytes"] += cache_bytes + q / tp + res
                continue
            size_w = sum(_size(o, dims) for o in ins if "B" not in o)
            size_a = sum(_size(o, dims) for o in ins if "B" in o) + _size(out, dims)
            rows.append(_row(mm["label"], phase, flops / tp, size_w * w_bytes / tp + size_a * act, peak, bw))
        if attn["flops"]:
            rows.append(_row("attention QKᵀ·V (fused)", phase, attn["flops"], attn["bytes"], peak, bw))
    note = ("Activations are counted whole per device (upper bound under TP); norms, rotary and residual adds "
            "are left out (few FLOPs, small next to the matmuls' bytes).")
    return Operators(block=block, rows=rows, note=note)


def _row(op: str, phase: str, flops: float, bytes_: float, peak: float, bw: float) -> dict:
    intensity = flops / bytes_
    attained = min(peak, intensity * bw)
    return {"op": op, "phase": phase, "flops_per_gpu": flops, "bytes_per_gpu": bytes_,
            "intensity_flop_per_byte": intensity, "attained_flops_per_s": attained,
            "bound": "compute" if peak <= intensity * bw else "memory", "time_s": flops / attained}
