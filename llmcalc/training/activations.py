"""Activation memory for training: per layer, per pipeline stage, with TP/SP/CP and recomputation.

Two paths, deliberately separate:

1. :func:`korthikanti_layer_bytes` is Korthikanti et al. 2022's closed form for GPT-3-style blocks
   (4h GELU MLP, explicit attention matrices, dropout, 16-bit activations, 1-byte dropout masks),
   eqs. 1-4 and Table 2. It is exposed so it can be checked exactly against the paper.
2. :func:`activation_tensors` lists, tensor by tensor, what autograd keeps for the backward pass of
   the block a model actually has (SwiGLU or GELU, GQA or MHA or MLA, RMSNorm or LayerNorm,
   dropout or not, FlashAttention or explicit softmax, MoE experts). Summed for a GPT-3 block with
   dropout and no FlashAttention it gives back eq. 1 exactly; that is its test.

Tensors counted (e = activation bytes, 2 for bf16; masks are 1 byte):

- ``seq`` region (sharded by TP only with sequence parallelism): each norm's input (B·L·D), the
  QKV-projection input and the MLP up-projection input (the norm outputs), dropout masks, the MoE
  router probabilities (fp32) and the dispatched expert inputs, MLA's latents.
- ``tp`` region (always sharded by TP): Q (B·L·H·K), K and V (B·L·G·K: GQA keeps G heads), the
  output-projection input, FlashAttention's fp32 log-sum-exp (B·H·L), the MLP interior
  (GELU: its input and output, 2·B·L·F; SwiGLU: the gate and up outputs kept by a fused SwiGLU, as
  Megatron-LM's ``swiglu`` saves its input, plus the down-projection input: 3·B·L·F).
- ``core`` (explicit attention only; dropped by selective recomputation): the softmax output
  (B·H·L·M), and with dropout its mask and output. FlashAttention never stores them.

L is the local sequence (seq / cp). Elementwise temporaries that are freed before backward, the
residual adds (which store nothing) and communication buffers are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.results import Figure, derive
from ..core.specs import Model
from .layout import recompute_share, where

SRC_K = "Korthikanti et al. 2022"
SRC_K_EQ = {(False, False, 0): f"{SRC_K}, §4.1, eq. 1 (sbh(34 + 5as/h))",
            (True, False, 0): f"{SRC_K}, §4.2.1, eq. 2 (sbh(10 + 24/t + 5as/(ht)))",
            (True, True, 0): f"{SRC_K}, §4.2.2, eq. 4 (sbh/t·(34 + 5as/h))",
            (True, False, 1): f"{SRC_K}, §4.3 and Table 2 (TP + selective: sbh(10 + 24/t))",
            (True, True, 1): f"{SRC_K}, §4.3, eq. 6 and Table 2 (TP + SP + selective: 34·sbh/t)",
            (False, False, 1): f"{SRC_K}, §4.3 and Table 2 (selective, t = 1: 34·sbh)",
            (False, True, 1): f"{SRC_K}, §4.3 and Table 2 (selective, t = 1: 34·sbh)",
            (False, True, 0): f"{SRC_K}, §4.1, eq. 1 (sbh(34 + 5as/h))"}
SRC_TENSORS = (f"tensors kept for backward, derived per tensor as in {SRC_K} §4.1 (SwiGLU, GQA, FlashAttention "
               "and dropout-free blocks re-derived; see llmcalc/training/activations.py)")


def korthikanti_layer_bytes(s, b, h, a, t=1, sp=False, recompute: str = "none") -> Figure:
    """Korthikanti et al. 2022 per-layer activation bytes for a GPT-3-style block (16-bit, dropout)."""
    code = {"none": 0, "selective": 1, "full": 2}[recompute]
    if code == 2:  # only the layer input survives; with SP it is sharded over t
        f = "2*s*b*h/t" if sp else "2*s*b*h"
        return derive("activations/layer", f, "B", f"{SRC_K}, Table 2 (full recompute: 2sbh)", s=s, b=b, h=h, t=t)
    par = t != 1 if np.ndim(t) == 0 else True
    if code == 1:
        f = "34*s*b*h/t" if sp else "s*b*h*(10 + 24/t)"
    elif sp:
        f = "s*b*h/t*(34 + 5*a*s/h)"
    elif par:
        f = "s*b*h*(10 + 24/t + 5*a*s/(h*t))"
    else:
        f = "s*b*h*(34 + 5*a*s/h)"
    return derive("activations/layer", f, "B", SRC_K_EQ[(par, bool(sp), code)],
                  label="activations per layer (GPT-3 block)", s=s, b=b, h=h, a=a, t=t)


@dataclass(frozen=True)
class Tensor:
    key: str
    bytes_formula: str  # over B, L, M, D, H, G, K, Kv, F, Fe, Fs, E, k, C, Cq, e
    region: str  # "seq" | "tp" | "core"
    shape: str
    why: str


def _attention_tensors(m: Model, flash: bool, dropout: bool) -> list[Tensor]:
    t = [Tensor("attn/norm_in", "e*B*L*D", "seq", "BLD", "input of the pre-attention norm"),
         Tensor("attn/qkv_in", "e*B*L*D", "seq", "BLD", "norm output = input of the Q, K, V projections")]
    if m.attention.mla:
        t += [Tensor("attn/q_latent", "e*B*L*Cq", "seq", "BLC", "MLA query latent (input of the q up-projection)"),
              Tensor("attn/kv_latent", "e*B*L*(C+R)", "seq", "BLC", "MLA kv latent + rope key (kv up-proj input)")]
    t += [Tensor("attn/q", "e*B*L*H*K", "tp", "BLHK", "queries, kept for QK^T (or by FlashAttention)"),
          Tensor("attn/k", "e*B*L*G*K", "tp", "BLGK", "keys: G heads (GQA) kept for QK^T"),
          Tensor("attn/v", "e*B*L*G*Kv", "tp", "BLGK", "values: G heads kept for the AV product")]
    if flash:
        t.append(Tensor("attn/softmax_lse", "4*B*H*L", "tp", "BHL",
                        "FlashAttention keeps only the fp32 log-sum-exp per row (Dao 2022 §3.1)"))
    else:
        t.append(Tensor("attn/softmax", "e*B*H*L*M", "core", "BHLM", "softmax output, kept for its backward"))
        if dropout:
            t += [Tensor("attn/softmax_dropout_mask", "B*H*L*M", "core", "BHLM", "attention dropout mask (1 byte)"),
                  Tensor("attn/softmax_dropout_out", "e*B*H*L*M", "core", "BHLM", "dropout output = AV input")]
    t.append(Tensor("attn/o_in", "e*B*L*H*Kv", "tp", "BLHK", "attention output = input of the O projection"))
    if dropout:
        t.append(Tensor("attn/dropout_mask", "B*L*D", "seq", "BLD", "residual dropout mask (1 byte)"))
    return t


def _mlp_tensors(gated: bool, width: str, rows: str, prefix: str) -> list[Tensor]:
    if gated:
        return [Tensor(f"{prefix}/gate_up", f"2*e*{rows}*{width}", "tp", f"BL{width[0]}",
                       "gate and up outputs, saved by a fused SwiGLU that recomputes silu in backward"),
                Tensor(f"{prefix}/down_in", f"e*{rows}*{width}", "tp", f"BL{width[0]}",
                       "silu(gate)·up = down-proj input")]
    return [Tensor(f"{prefix}/act_in", f"e*{rows}*{width}", "tp", f"BL{width[0]}", "up output = activation input"),
            Tensor(f"{prefix}/down_in", f"e*{rows}*{width}", "tp", f"BL{width[0]}", "activation output = down input")]


def _block_tensors(m: Model, flash: bool, dropout: bool, moe_layer: bool) -> list[Tensor]:
    t = _attention_tensors(m, flash, dropout)
    t += [Tensor("mlp/norm_in", "e*B*L*D", "seq", "BLD", "input of the pre-MLP norm"),
          Tensor("mlp/up_in", "e*B*L*D", "seq", "BLD", "norm output = input of the up (and gate) projection")]
    if moe_layer:
        t += [Tensor("moe/router_probs", "4*B*L*E", "seq", "BLE", "router logits/probabilities in fp32"),
              Tensor("moe/expert_in", "e*k*B*L*D", "seq", "BLD", "top-k dispatched token copies (capacity 1)")]
        t += _mlp_tensors(m.mlp.gated, "Fe", "k*B*L", "moe/experts")
        if m.moe.shared_width:
            t += _mlp_tensors(m.mlp.gated, "Fs", "B*L", "moe/shared")
    else:
        t += _mlp_tensors(m.mlp.gated, "F", "B*L", "mlp")
    if dropout:
        t.append(Tensor("mlp/dropout_mask", "B*L*D", "seq", "BLD", "residual dropout mask (1 byte)"))
    return t


SRC_DSV3_MEMORY = ("DeepSeek-V3 report (arXiv 2412.19437) §3.2.3 'Recomputation of RMSNorm and MLA Up-Projection' and "
                   "§3.3.2 'Low-Precision Storage': Linear inputs cached in FP8, the attention output (input of the "
                   "output projection) in E5M6, SwiGLU inputs cached in FP8 and its output recomputed")


def _recipe(t: Tensor, m: Model, norm_up: bool, fp8: bool) -> Tensor:
    """A tensor as DeepSeek-V3's memory recipe keeps it (SRC_DSV3_MEMORY): dropped (recomputed in backward), cached
    in FP8 (e8 = 1 byte) or E5M6 (e12 = 1.5 bytes), or as it is."""
    import re

    k = t.key
    drop = (norm_up and (k in ("attn/qkv_in", "mlp/up_in") or (m.attention.mla and k in ("attn/q", "attn/k", "attn/v")))
            or (fp8 and m.mlp.gated and k.endswith("/down_in")))
    if drop:
        return Tensor(k, "0", t.region, t.shape, t.why + " — recomputed in backward (" + SRC_DSV3_MEMORY + ")")
    narrow = {"attn/o_in": "e12"} if fp8 else {}
    if fp8 and (k.endswith("/gate_up") or k in ("attn/qkv_in", "mlp/up_in", "attn/q_latent", "attn/kv_latent",
                                                "moe/expert_in")):
        narrow[k] = "e8"
    if k in narrow:
        return Tensor(k, re.sub(r"\be\b", narrow[k], t.bytes_formula), t.region, t.shape,
                      t.why + f" — cached in {'FP8' if narrow[k] == 'e8' else 'E5M6'} ({SRC_DSV3_MEMORY})")
    return t


def activation_tensors(m: Model, *, flash: bool = True, dropout: bool = False, recompute_norm_up: bool = False,
                       fp8_activations: bool = False) -> dict[str, list[Tensor]]:
    """The tensors one block keeps for backward: {'dense': [...], 'moe': [...]} (layer kinds present), optionally
    under DeepSeek-V3's memory recipe (norm/MLA-up recompute, FP8 activation caching)."""
    out = {}
    if m.n_dense_layers:
        out["dense"] = _block_tensors(m, flash, dropout, False)
    if m.n_moe_layers:
        out["moe"] = _block_tensors(m, flash, dropout, True)
    if recompute_norm_up or fp8_activations:
        out = {kind: [_recipe(t, m, recompute_norm_up, fp8_activations) for t in ts] for kind, ts in out.items()}
    return out


def shape_values(m: Model, micro_batch, seq, cp=1, act_bytes=2) -> dict:
    a = m.attention
    L = seq // cp
    v = dict(B=micro_batch, L=L, M=seq, D=m.d_model, H=a.n_heads, G=a.n_kv_heads, K=a.qk_dim, Kv=a.v_dim,
             F=m.mlp.d_ff, e=act_bytes, e8=1, e12=1.5)
    if a.mla:
        v.update(G=a.n_heads, C=a.mla.kv_lora_rank, R=a.mla.qk_rope_head_dim, Cq=a.mla.q_lora_rank or m.d_model)
    if m.moe:
        v.update(E=m.moe.n_experts, k=m.moe.top_k, Fe=m.moe.d_ff_expert, Fs=m.moe.shared_width or 1)
    return v


def _region_sum(tensors: list[Tensor], region: str) -> str:
    terms = [t.bytes_formula for t in tensors if t.region == region]
    return " + ".join(terms) if terms else "0"


def layer_formula(m: Model, *, flash: bool = True, dropout: bool = False, **recipe) -> str:
    """Per-layer bytes as one formula over shapes and tp, sdiv (tp with SP, else 1), keep_core (no recompute)."""
    kinds = activation_tensors(m, flash=flash, dropout=dropout, **recipe)
    parts = []
    for kind, ts in kinds.items():
        body = (f"({_region_sum(ts, 'seq')})/sdiv + ({_region_sum(ts, 'tp')})/tp"
                + (f" + keep_core*({_region_sum(ts, 'core')})/tp" if any(t.region == "core" for t in ts) else ""))
        weight = {"dense": "nd", "moe": "nm"}[kind] if len(kinds) > 1 else ""
        parts.append(f"{weight}*({body})" if weight else body)
    f = " + ".join(parts)
    return f"({f})/layers" if len(kinds) > 1 else f


def layer_activation_bytes(m: Model, micro_batch, seq, *, tp=1, cp=1, sp=False, recompute=0, flash: bool = True,
                           dropout: bool = False, act_bytes: int = 2, **recipe) -> Figure:
    """Bytes one layer keeps for one micro-batch (averaged over dense and MoE layers), before recompute.
    ``recipe``: recompute_norm_up, fp8_activations (DeepSeek-V3's memory recipe, SRC_DSV3_MEMORY)."""
    v = shape_values(m, micro_batch, seq, cp, act_bytes)
    v.update(tp=tp, sdiv=where(sp, tp, 1), keep_core=where(np.asarray(recompute) == 0, 1, 0))
    f = layer_formula(m, flash=flash, dropout=dropout, **recipe)
    if m.n_dense_layers and m.n_moe_layers:
        v.update(nd=m.n_dense_layers, nm=m.n_moe_layers, layers=m.n_layers)
    v = {k: x for k, x in v.items() if k in f}
    return derive("activations/layer", f, "B", SRC_TENSORS, label="activations per layer per micro-batch", **v)


def tensor_table(m: Model, micro_batch, seq, *, tp=1, cp=1, sp=False, flash: bool = True, dropout: bool = False,
                 act_bytes: int = 2, **recipe) -> list[dict]:
    """Each tensor one layer keeps for backward (scalar workloads): block kind, key, shape, region, bytes, why.

    Region ``seq`` is divided by tp only with SP, ``tp`` always, ``core`` is dropped by selective recompute."""
    v = shape_values(m, micro_batch, seq, cp, act_bytes)
    rows = []
    for kind, ts in activation_tensors(m, flash=flash, dropout=dropout, **recipe).items():
        for t in ts:
            div = tp if (t.region != "seq" or sp) else 1
            f = derive(t.key, f"({t.bytes_formula})/div", "B", SRC_TENSORS, shape=t.shape, div=div,
                       **{k: x for k, x in v.items() if k in t.bytes_formula})
            rows.append({"block": kind, "key": t.key, "shape": t.shape, "region": t.region, "bytes": f.value,
                         "formula": f.formula, "why": t.why})
    return rows


def stage_activation_bytes(m: Model, layout, micro_batch, seq, *, recompute=0, microbatches=None,
                           flash: bool = True, dropout: bool = False, act_bytes: int = 2,
                           recompute_layers=None, **recipe) -> dict[str, Figure]:
    """Activation bytes held by the first, the fullest middle and the last pipeline stages at their peak (1F1B).

    ``recompute_layers`` (with full recompute): only the first k layers of each stage (of each virtual chunk
    when interleaved) are recomputed and keep just their input; the others keep everything (Megatron-Core
    --recompute-method block --recompute-num-layers k). None: every layer.

    Stage r of p holds p − r micro-batches in flight (Narayanan et al. 2021 §2.2; fewer if m < p) of its
    Ls layers; interleaved with v chunks it holds (v−1)·p + 2(p−r−1) + 1 chunks of Ls/v layers (Megatron-LM
    schedules.py warm-up count), which for the first stage of an even split is L·(1 + (p−1)/(p·v))
    (Korthikanti et al. 2022 §4.2.3). The middle stage is stage 1 (the most in flight after the first) with
    the most layers of any middle stage — exact for Megatron-style splits, an upper bound for an irregular
    --pp-layers list. The last stage adds the fp32 logits for the loss (Korthikanti §4.3: 4·sbv/t).
    Full recompute keeps each layer's input (2sbh, /t with SP) plus one layer's working set.
    """
    from .layout import stage_layers

    t, p, c, sp, vv = layout.tp, layout.pp, layout.cp, layout.sp, layout.interleave
    per_layer = layer_activation_bytes(m, micro_batch, seq, tp=t, cp=c, sp=sp, recompute=recompute, flash=flash,
                                       dropout=dropout, act_bytes=act_bytes, **recipe)
    sl = stage_layers(m.n_layers, layout)
    sdiv = where(sp, t, 1)
    L = seq // c
    full = where(np.asarray(recompute) == 2, 1, 0)
    m_cap = p if microbatches is None else microbatches

    def share(ls):  # the fraction of a stage's layers stored as their input only (block-method recompute)
        return recompute_share(recompute, recompute_layers, ls, vv)

    dual = layout.schedule == "dualpipe"

    def chunks(r):  # layers' worth per stage layer in flight: micro-batches (v = 1) or chunks / v
        if dual:  # DeepSeek-V3 Table 2: DualPipe keeps PP + 1 micro-batches of activations on every device
            return where(True, np.minimum(p + 1, m_cap), 0)
        one_f1b = where(True, np.minimum(p - r, m_cap), 0)
        return where(np.asarray(vv) > 1, ((vv - 1) * p + 2 * (p - r - 1) + 1) / vv, one_f1b)

    common = dict(A=per_layer.value, e=act_bytes, B=micro_batch, L=L, D=m.d_model, sdiv=sdiv, ws=full)
    stored = "(full*e*B*L*D/sdiv + (1 - full)*A)"
    first = derive("activations/first_stage", f"Ls*inflight*{stored} + ws*A", "B",
                   "1F1B: the first stage holds p micro-batches of its Ls layers (Narayanan et al. 2021 §2.2); "
                   "interleaved (v−1)·p + 2p − 1 chunks of Ls/v layers, i.e. ×(1 + (p−1)/(p·v)) of L layers "
                   "when even (Korthikanti et al. 2022 §4.2.3); full recompute keeps 2sbh per layer plus one "
                   "layer's working set (Korthikanti §4.3)",
                   label="activations, first stage (worst case in flight)", Ls=sl["first"], inflight=chunks(0),
                   full=share(sl["first"]), **common)
    # Stage 1 of p: one micro-batch (or two chunks) fewer in flight than the first stage; only exists for p > 2.
    middle = derive("activations/middle_stage", f"has*(Ls*inflight*{stored} + ws*A)", "B",
                    "stage 1 holds p − 1 micro-batches (Narayanan et al. 2021 §2.2); interleaved "
                    "(v−1)·p + 2p − 3 chunks of Ls/v layers (Megatron-LM schedules.py warm-up count)",
                    label="activations, fullest middle stage", Ls=sl["middle"], has=where(np.asarray(p) > 2, 1, 0),
                    inflight=chunks(1), full=share(sl["middle"]), **common)
    # Interleaved 1F1B: the last rank warms up (v−1)·p chunks before its first backward (Megatron-LM
    # schedules.py: num_warmup_microbatches = (p − rank − 1)·2 + (v − 1)·p), so it holds (v−1)·p + 1 chunks
    # of Ls/v layers; v = 1 gives one micro-batch of its Ls layers.
    last = derive("activations/last_stage",
                  f"Ls*inflight*{stored} + ws*A + 4*B*L*V/tp + e*B*L*D/sdiv", "B",
                  "last stage: (v−1)·p + 1 chunks of Ls/v layers in flight (Narayanan et al. 2021 §2.2.2; "
                  "Megatron-LM schedules.py interleaved warm-up count); fp32 logits 4·sbv/t "
                  "(Korthikanti et al. 2022 §4.3)",
                  label="activations, last stage (incl. fp32 logits)", Ls=sl["last"], V=m.vocab_size, tp=t,
                  inflight=chunks(p - 1) if dual else ((vv - 1) * p + 1) / vv, full=share(sl["last"]), **common)
    return {"layer": per_layer, "first": first, "middle": middle, "last": last}
