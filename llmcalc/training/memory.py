"""Training memory per GPU: weights, gradients and optimizer states (with ZeRO/FSDP), activations,
LoRA/QLoRA, and a fits / does-not-fit verdict against the device's memory.

Placement (Megatron-LM conventions, see llmcalc/training/layout.py):
- transformer layers are split evenly over ``pp`` stages and sharded over ``tp``; routed experts are
  sharded over ``ep`` and the expert-TP degree ``etp`` (= tp unless given); the embedding lives on the
  first stage and the LM head on the last (a tied embedding is held by both when pp > 1, as Megatron does);
- ZeRO shards over the data-parallel group (DP×CP, as Megatron's distributed optimizer); expert
  states over the expert-data-parallel group TP×DP×CP/(ETP×EP) (Rajbhandari et al. 2020 §5; Megatron-Core
  parallel_state.py; never over all GPUs); with ``offload_optimizer`` the optimizer states and fp32 gradients
  live on the host (ZeRO-Offload), host memory not checked;
- the reported peak is the worse of the first stage (p micro-batches of activations) and the last
  stage (LM head and logits).
Not counted: framework workspace, communication buckets, allocator fragmentation (typically 5-20%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.deferred import DeferredArray
from ..core.errors import LlmcalcError
from ..core.results import Figure, Result, derive
from ..core.specs import Hardware, Model
from ..model.params import param_breakdown
from .activations import stage_activation_bytes, tensor_table
from .layout import (
    Layout,
    check_layout,
    check_recompute_layers,
    is_sweep,
    masked_sweep,
    microbatches,
    recompute_code,
    stage_layers,
    stage_notes,
    where,
)


@dataclass(frozen=True)
class OptimizerBytes:
    weights: float  # bytes per parameter of the working (compute) copy
    grads: float
    states: float  # optimizer states incl. any fp32 master copy
    source: str

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.states


OPTIMIZERS = {
    "adam": OptimizerBytes(2, 2, 12, "Rajbhandari et al. 2020 (ZeRO) §3.1: fp16 weights 2 + fp16 grads 2 + fp32 "
                                     "master, momentum, variance K = 12 → 16 B/param"),
    "adam-fp32-grads": OptimizerBytes(2, 4, 12, "Megatron-LM distributed-optimizer guide: bf16 params with fp32 main "
                                                "grads → 2 + 4 + 12 = 18 B/param"),
    "adam-no-master": OptimizerBytes(2, 0, 8, "jax-ml/scaling-book, training chapter: bf16 weights 2 + fp32 Adam "
                                              "moments 8 = 10 B/param (no master copy, gradients not held)"),
    "adam-8bit": OptimizerBytes(2, 2, 6, "Dettmers et al. 2022 (8-bit Optimizers) §2: momentum and variance in "
                                         "8 bits (2 B) + fp32 master 4, weights 2, grads 2 → 10 B/param"),
    "adam-bf16-moments": OptimizerBytes(2, 4, 8, "DeepSeek-V3 report §3.3.3 (low-precision optimizer states): "
                                        "AdamW moments in BF16, master weights and gradients in FP32: 2 + 4 + "
                                        "(4 + 2 + 2) = 14 B/param"),
    "sgd": OptimizerBytes(2, 2, 8, "mixed-precision SGD with momentum: fp32 master 4 + fp32 momentum 4, weights 2, "
                                   "grads 2 → 12 B/param"),
}

SRC_FSDP_MEM = ("Zhao et al. 2023 (PyTorch FSDP) §3.3-3.4: each FSDP unit (a layer) is all-gathered just "
                "before use and freed after, with the next unit prefetched (the rate limiter allows two in flight); "
                "its unsharded gradient lives until the reduce-scatter. ZeRO §5.3 (Rajbhandari et al. 2020) "
                "likewise gathers parameters layer by layer")
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
# Dettmers et al. 2023 (QLoRA) §3: NF4 weights (4 bits) in blocks of 64 with double-quantised constants
# (8-bit constants per 64 weights + one fp32 per 256 constants: 8/64 + 32/(64·256) = 0.127 bits/param).
QLORA_NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # 4.127 as the paper rounds it
SRC_QUANT_SCOPE = ("only the Linear layers inside the transformer blocks are quantised; embedding, LM head and "
                   "norms stay 16-bit (Dettmers et al. 2023 §3-4; bitsandbytes/transformers skip lm_head and "
                   "never convert nn.Embedding or norms)")


def optimizer_bytes(name: str) -> OptimizerBytes:
    if name not in OPTIMIZERS:
        raise LlmcalcError(f"--optimizer expects one of {', '.join(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name]


def model_state_bytes(n_params, *, dp=1, zero=0, optimizer: str = "adam") -> Result:
    """Weights + gradients + optimizer states per GPU for ``n_params`` replicated over ``dp`` ranks.

    ZeRO stage 1 shards optimizer states, 2 also gradients, 3 also weights (Rajbhandari et al. 2020 §5,
    Figure 1: 2Ψ + 2Ψ + KΨ unsharded; stage 2 is 2Ψ + (2+K)Ψ/Nd)."""
    from ..core.checks import check_count, check_number

    check_number(n_params, "n_params")
    check_count(dp, "--dp")
    if not np.all(np.isin(zero, (0, 1, 2, 3))) or isinstance(zero, bool):
        raise LlmcalcError(f"--zero expects a stage 0, 1, 2 or 3, got {zero!r}")
    n_params = np.asarray(n_params, dtype=float) if np.ndim(n_params) else float(n_params)  # no int64 wrap
    o = optimizer_bytes(optimizer)
    z = np.asarray(zero)
    v = dict(P=n_params, zw=where(z >= 3, dp, 1), zg=where(z >= 2, dp, 1), zo=where(z >= 1, dp, 1))
    src = "Rajbhandari et al. 2020 (ZeRO) §5.1-5.3 and Figure 1; " + o.source
    parts = [derive("memory/weights", "w*P/zw", "B", src, label="weights", w=o.weights, **v),
             derive("memory/grads", "g*P/zg", "B", src, label="gradients", g=o.grads, **v),
             derive("memory/optimizer", "s*P/zo", "B", src, label="optimizer states", s=o.states, **v)]
    tot = derive("memory/model_states", "w + g + s", "B", "sum of the rows above", label="model states",
                 w=parts[0].value, g=parts[1].value, s=parts[2].value)
    return Result("Model states per GPU", (*parts, tot), (f"optimizer {optimizer}: {o.source}",),
                  {"model_states_bytes": tot.value})


# ---------------------------------------------------------------- parameters per GPU


def _param_parts(m: Model) -> dict[str, int]:
    b = param_breakdown(m).data["breakdown"]
    layer = sum(b.get(k, 0) for k in ("attention", "mlp", "moe/router", "moe/shared_experts", "norms"))
    emb = b["embedding"] + b.get("position_embedding", 0)
    head = b.get("lm_head", 0)
    # The nn.Linear weights inside the blocks: what QLoRA/LLM.int8 quantise (norms, embedding, head stay 16-bit).
    linear = sum(b.get(k, 0) for k in ("attention", "mlp", "moe/router", "moe/shared_experts"))
    # Held whole by every TP rank (Megatron-Core): norms, the MoE router, and MLA's down-projections
    # (linear_q_down_proj / linear_kv_down_proj are built "duplicated", not split over TP).
    a = m.attention
    mla_down = 0 if not a.mla else m.n_layers * m.d_model * ((a.mla.q_lora_rank or 0) + a.mla.kv_lora_rank
                                                            + a.mla.qk_rope_head_dim)
    replicated_linear = b.get("moe/router", 0) + mla_down
    return {"layer_dense": layer, "layer_linear": linear, "experts": b.get("moe/experts", 0), "embedding": emb,
            "lm_head": head, "tied": int(m.tie_embeddings), "replicated": b.get("norms", 0) + replicated_linear,
            "replicated_linear": replicated_linear}


def _moe_layers_per_stage(m: Model, sl: dict) -> dict:
    """MoE layers on the first stage [0, f), stage 1 [f, f + middle) (the fullest middle stage's range), the last
    [L − l, L), and the most on any of them: the layer count less the model's dense layers in that range."""
    if not m.moe:
        return {k: 0 for k in ("first", "middle", "last", "max")}
    L = m.n_layers
    dense = np.zeros(L + 1, np.int64)
    for i in set(m.moe.dense_layers):
        dense[i + 1] += 1
    below = np.cumsum(dense)  # below[x] = dense layers with index < x

    def moe(a, b):
        a = np.clip(np.floor(np.asarray(a, float)), 0, L).astype(np.int64)
        b = np.clip(np.floor(np.asarray(b, float)), 0, L).astype(np.int64)
        return where(True, np.maximum(b - a - (below[b] - below[a]), 0), 0)

    f, mid, last = sl["first"], sl["middle"], sl["last"]
    out = {"first": moe(0, f), "middle": moe(f, np.asarray(f) + np.asarray(mid)), "last": moe(L - np.asarray(last), L)}
    out["max"] = where(True, np.maximum(np.maximum(out["first"], out["middle"]), out["last"]), 0)
    return out


def stage_params(m: Model, layout: Layout) -> dict[str, Figure]:
    """Parameters per GPU on the first, the fullest middle and the last pipeline stage: non-expert (dense)
    and expert parts. A stage of Ls layers holds Ls/L of the layers' parameters (uneven stages, see
    :func:`llmcalc.training.layout.stage_layers`); dense and MoE layers are averaged over the stack."""
    p = _param_parts(m)
    t, pp, ep = layout.tp, layout.pp, layout.ep
    sl = stage_layers(m.n_layers, layout)
    one = where(np.asarray(pp) == 1, 1, 0)  # a single stage holds embedding and head
    src = "Megatron-LM placement: each stage's Ls of the L layers, sharded over tp, except norms, router and MLA " \
          "down-projections (Pr), which every TP rank holds whole; embedding on the first stage, LM head on the " \
          "last (a tied embedding is held by both); vocabulary sharded over tp"
    v = dict(Pl=p["layer_dense"], Pr=p["replicated"], Pe=p["embedding"], Ph=p["lm_head"], tied=p["tied"],
             layers=m.n_layers, tp=t, one=one)
    first = derive("params/first_stage_dense", "((Pl - Pr)*Ls/layers + Pe + one*Ph)/tp + Pr*Ls/layers", "param",
                   src, label="non-expert parameters per GPU, first stage", Ls=sl["first"], **v)
    middle = derive("params/middle_stage_dense", "((Pl - Pr)*Ls/layers)/tp + Pr*Ls/layers", "param", src,
                    label="non-expert parameters per GPU, fullest middle stage", Ls=sl["middle"], **v)
    last = derive("params/last_stage_dense",
                  "((Pl - Pr)*Ls/layers + Ph + (1 - one)*tied*Pe + one*Pe)/tp + Pr*Ls/layers", "param",
                  src, label="non-expert parameters per GPU, last stage", Ls=sl["last"], **v)
    xsrc = ("routed experts sharded over ep (whole experts) and etp (expert tensor parallelism, Megatron-Core "
            "--expert-tensor-parallel-size; etp = tp unless given); a stage holds the experts of its own MoE layers "
            "(the model's dense_layers hold none: DeepSeek-V3's first three)")
    moe_on = _moe_layers_per_stage(m, sl)
    ex = {k: derive(f"params/experts_{k}" if k != "max" else "params/experts", "Px*Lm/(moe_layers*etp*ep)", "param",
                    xsrc, label=f"expert parameters per GPU, {k} stage" if k != "max" else "expert parameters per GPU "
                    "(fullest stage)", Px=p["experts"], Lm=moe_on[k], moe_layers=max(m.n_moe_layers, 1),
                    etp=layout.expert_tp, ep=ep)
          for k in ("first", "middle", "last", "max")}
    return {"first": first, "middle": middle, "last": last, "experts": ex["max"], "experts_first": ex["first"],
            "experts_middle": ex["middle"], "experts_last": ex["last"]}


# ---------------------------------------------------------------- LoRA / QLoRA


@dataclass(frozen=True)
class LoRA:
    """Low-rank adapters (Hu et al. 2021) of rank ``rank`` on ``targets``; frozen base at ``base_bits``."""

    rank: int = 16
    targets: tuple[str, ...] = ("q", "k", "v", "o")
    base_bits: int = 16  # 16 (LoRA), 8 (LLM.int8 base), 4 (QLoRA NF4)

    def __post_init__(self):
        bad = [t for t in self.targets if t not in LORA_TARGETS]
        if bad:
            raise LlmcalcError(f"--lora-targets accepts {', '.join(LORA_TARGETS)}; got {', '.join(bad)}")
        if self.base_bits not in (16, 8, 4):
            raise LlmcalcError(f"--base-bits expects 16, 8 or 4, got {self.base_bits}")
        if self.rank < 1:
            raise LlmcalcError(f"--lora-rank must be at least 1, got {self.rank}")

    @property
    def base_bytes_per_param(self) -> float:
        return {16: 2.0, 8: 1.0, 4: QLORA_NF4_BITS / 8}[self.base_bits]


def lora_params(m: Model, lora: LoRA) -> Figure:
    """Adapter parameters: r·(d_in + d_out) per adapted matrix (Hu et al. 2021 §4), per layer and expert."""
    if m.attention.mla and set(lora.targets) & {"q", "k", "v", "o"}:
        raise LlmcalcError(f"LoRA on MLA attention ({m.display_name}) is not modelled; target gate/up/down only")
    a = m.attention
    dims = {"q": "(D + H*K)", "k": "(D + G*K)", "v": "(D + G*Kv)", "o": "(H*Kv + D)"}
    attn = " + ".join(dims[t] for t in lora.targets if t in dims) or "0"
    mlp_t = [t for t in lora.targets if t in ("gate", "up", "down")]
    if not m.mlp.gated:
        mlp_t = [t for t in mlp_t if t != "gate"]

    def mlp(width: str) -> str:
        return " + ".join(f"(D + {width})" for _ in mlp_t) or "0"

    f = f"r*(layers*({attn}) + dense*({mlp('F')})"
    v = dict(r=lora.rank, layers=m.n_layers, D=m.d_model, H=a.n_heads, G=a.n_kv_heads, K=a.qk_dim, Kv=a.v_dim,
             F=m.mlp.d_ff, dense=m.n_dense_layers)
    if m.moe:
        f += f" + moe*(E*({mlp('Fe')}) + ({mlp('Fs')})*shared)"
        v.update(moe=m.n_moe_layers, E=m.moe.n_experts, Fe=m.moe.d_ff_expert, Fs=m.moe.shared_width or 0,
                 shared=int(bool(m.moe.shared_width)))
    return derive("params/lora", f + ")", "param", "Hu et al. 2021 (LoRA) §4.1: ΔW = BA with B ∈ d×r, A ∈ r×k",
                  label=f"LoRA adapter parameters (rank {lora.rank}: {', '.join(lora.targets)})", **v)


# ---------------------------------------------------------------- the whole budget


def zero3_gathered_bytes(m: Model, layout: Layout, o: OptimizerBytes, lora: LoRA | None, lora_per_gpu) -> Figure:
    """ZeRO-3/FSDP working buffer: the layer being computed plus the prefetched next one, unsharded over DP
    (still split by TP and EP), and one layer's unsharded gradients until their reduce-scatter."""
    p = _param_parts(m)
    # only when ZeRO-3 shards something: over a DP×CP group of 1 every rank already holds whole layers, so
    # there is nothing to gather and no buffer (else ZeRO-3 would report more than ZeRO-2 at DP 1; issue #13)
    z3 = where((np.asarray(layout.zero) == 3) & (np.asarray(layout.dp * layout.cp) > 1), 1, 0)
    # the fullest layer: the dense part of an average layer plus, for MoE, one MoE layer's expert shard
    v = dict(z3=z3, Pl=p["layer_dense"], Px=p["experts"], layers=m.n_layers, moe_layers=max(m.n_moe_layers, 1),
             tp=layout.tp, ep=layout.ep, etp=layout.expert_tp)
    layer = "(Pl/(layers*tp) + Px/(moe_layers*ep*etp))"
    if lora is None:
        f, v = f"z3*(2*w + g)*{layer}", dict(v, w=o.weights, g=max(o.grads, 2))
    else:  # frozen base: no base gradients; the adapters' own gradients are negligible per layer
        f, v = f"z3*2*wb*{layer}", dict(v, wb=lora.base_bytes_per_param)
    return derive("memory/zero3_gathered", f, "B", SRC_FSDP_MEM,
                  label="ZeRO-3/FSDP gathered layers (current + prefetched, + one layer's full gradients)", **v)


SRC_OFFLOAD = ("ZeRO-Offload (Ren et al. 2021, arXiv 2101.06840) §3-4 / DeepSpeed offload_optimizer: the fp32 master "
               "weights, Adam moments and fp32 gradients live in CPU memory, the GPU keeps its 16-bit weights and "
               "16-bit gradients (host memory capacity is not checked)")


def _shards(layout: Layout) -> dict:
    """What ZeRO divides each state by: zw/zg/zo (weights, gradients, optimizer) over the DP×CP group, xw/xg/xo over
    the expert-DP group tp·dp·cp/(etp·ep) (dp·cp/ep when etp = tp); 1 below the stage that shards it."""
    z = np.asarray(layout.zero)
    sh = layout.dp * layout.cp
    esh = layout.tp * sh / (layout.expert_tp * layout.ep)
    return dict(zw=where(z >= 3, sh, 1), zg=where(z >= 2, sh, 1), zo=where(z >= 1, sh, 1),
                xw=where(z >= 3, esh, 1), xg=where(z >= 2, esh, 1), xo=where(z >= 1, esh, 1))


def _states(prefix: str, dense, experts, layout: Layout, o: OptimizerBytes, lora: LoRA | None,
            lora_per_gpu, dense_linear=0.0, offload=False, shards: dict | None = None) -> list[Figure]:
    stage = prefix.replace("_", " ")
    v = dict(Pd=dense, Px=experts, **(shards or _shards(layout)))
    src = ("ZeRO stages over the DP×CP group, experts over the expert-DP group tp·dp·cp/(etp·ep) (Rajbhandari et al. "
           "2020 §5; Megatron-Core parallel_state.py); " + o.source)
    off = where(offload, 1, 0)
    g_gpu = where(offload, min(o.grads, 2), o.grads)  # offloaded: fp32 gradients on the host, 16-bit ones on the GPU
    if not np.all(np.asarray(off) == 0):
        src += "; " + SRC_OFFLOAD
    if lora is None:
        return [derive(f"{prefix}/weights", "w*(Pd/zw + Px/xw)", "B", src, label=f"weights, {stage}", w=o.weights, **v),
                derive(f"{prefix}/grads", "g*(Pd/zg + Px/xg)", "B", src, label=f"gradients, {stage}", g=g_gpu, **v),
                derive(f"{prefix}/optimizer", "(1 - off)*s*(Pd/zo + Px/xo)", "B", src,
                       label=f"optimizer states, {stage}", s=o.states, off=off, **v)]
    src = (f"frozen base: block linears and experts at {lora.base_bits} bits ({lora.base_bytes_per_param:g} B/param"
           + (", NF4 + double-quantized constants: Dettmers et al. 2023 §3" if lora.base_bits == 4 else "")
           + (f"), the rest (embedding, LM head, norms) at 2 B; {SRC_QUANT_SCOPE}" if lora.base_bits < 16 else ")")
           + "; adapters trained with " + o.source)
    # Pq: quantised block linears on this GPU; Pd - Pq: embedding, head and norms, kept in 16 bits.
    v.update(Pa=lora_per_gpu, Pq=dense_linear if lora.base_bits < 16 else 0)
    return [derive(f"{prefix}/weights", "wb*(Pq/zw + Px/xw) + 2*(Pd - Pq)/zw + w*Pa/zw", "B", src,
                   label=f"weights (frozen base + adapters), {stage}",
                   wb=lora.base_bytes_per_param, w=o.weights, **v),
            derive(f"{prefix}/grads", "g*Pa/zg", "B", src, label=f"gradients (adapters only), {stage}", g=g_gpu, **v),
            derive(f"{prefix}/optimizer", "(1 - off)*s*Pa/zo", "B", src,
                   label=f"optimizer states (adapters only), {stage}", s=o.states, off=off, **v)]


SRC_DUALPIPE = ("DeepSeek-V3 report §3.2.1 and Table 2: DualPipe keeps two copies of the model parameters "
                "(weights and their gradients here; the optimizer updates one set) and PP + 1 micro-batches of "
                "activations")
def check_offload(layout: Layout, o: OptimizerBytes, offload, valid):
    """--offload-optimizer: a flag (a boolean array in sweeps), only with an optimizer that keeps states and with ZeRO
    1-3 (DeepSpeed's offload_optimizer is part of its ZeRO config). Scalars raise; sweeps mask."""
    arr = np.asarray(offload)
    if arr.dtype.kind not in "biu" or np.any((arr != 0) & (arr != 1)):
        raise LlmcalcError(f"--offload-optimizer is on or off, got {offload!r}")
    if not np.any(arr):
        return valid
    if o.states <= 0:
        raise LlmcalcError("--offload-optimizer needs an optimizer with states to offload")
    bad = arr.astype(bool) & (np.asarray(layout.zero) < 1)
    if not is_sweep(offload, layout.zero, valid):
        if bool(bad):
            raise LlmcalcError("--offload-optimizer needs --zero 1, 2 or 3 (DeepSpeed offload_optimizer is a ZeRO "
                               "option; ZeRO-Offload builds on ZeRO-2)")
        return valid
    return np.asarray(valid) & ~bad


STAGES = np.array(["first", "middle", "last"])


def _worst_stage(tf, tm, tl) -> np.ndarray:
    """The name of the fullest stage: first where it is the fullest, else middle where it beats the last, else last
    (one gather of the names: a planner's sweep has 10⁵-10⁶ layouts)."""
    stage_code = (~((tf >= tm) & (tf >= tl))).astype(np.int8) * (2 - (tm > tl))
    return STAGES[stage_code]


DEFAULT_OPTIMIZER = "adam-fp32-grads"  # Megatron-Core's bf16 convention: fp32 main grads, 18 B/param


# A pipeline stage's bytes per GPU (``has`` = 0 for a middle stage that does not exist); the planner's first-k
# search evaluates the same formula (llmcalc.training.search), so it is written here once.
STAGE_TOTAL = "has*(weights + grads + optimizer + gathered) + activations"
WORST_STAGE = "max(max(first, middle), last)"  # the fullest stage sets the requirement


@masked_sweep
def training_memory(m: Model, hw: Hardware, layout: Layout = Layout(), *, micro_batch=1, seq=2048,
                    recompute="none", optimizer: str = DEFAULT_OPTIMIZER, global_batch=None, flash: bool = True,
                    dropout: bool = False, lora: LoRA | None = None, act_bytes: int = 2,
                    reserve: float | None = None, recompute_layers=None, recompute_norm_up: bool = False,
                    fp8_activations: bool = False, offload_optimizer=False) -> Result:
    """Peak memory per GPU for training ``m`` under ``layout`` (worst pipeline stage), and whether it fits in
    the device memory less ``reserve`` (default :data:`llmcalc.core.checks.MEMORY_RESERVE`, the rule fit and
    serve use too).

    Default optimizer accounting: Megatron-Core bf16 mixed precision (bf16 weights, fp32 main gradients,
    fp32 master + Adam moments: 18 B/param without the distributed optimizer); ``optimizer="adam"`` is the
    ZeRO paper's 16 B/param.

    Numeric arguments (layout degrees, zero, micro_batch, seq, global_batch, recompute codes) may be numpy
    arrays: the result's data then holds arrays and a boolean ``valid`` mask instead of raising."""
    rc = recompute_code(recompute)
    check_recompute_layers(rc, recompute_layers)
    valid = check_layout(m, layout, micro_batch=micro_batch, seq=seq, global_batch=global_batch)
    o = optimizer_bytes(optimizer)
    valid = check_offload(layout, o, offload_optimizer, valid)
    mb = None if global_batch is None else microbatches(layout, micro_batch, global_batch)
    sp = stage_params(m, layout)
    parts = _param_parts(m)  # block linears on one stage and GPU (router, MLA down-projections not TP-split)
    sl = stage_layers(m.n_layers, layout)
    linear_per_layer = ((parts["layer_linear"] - parts["replicated_linear"]) / layout.tp
                        + parts["replicated_linear"]) / m.n_layers
    pa = None
    figs: list[Figure] = list(sp.values())
    if lora is not None:
        la = lora_params(m, lora)
        pa = derive("params/lora_per_gpu", "Pa*Ls/(tp*layers)", "param",
                    "adapters follow their base matrices' TP/PP split (the fullest stage's Ls of L layers)",
                    label="LoRA parameters per GPU", Pa=la.value, tp=layout.tp, Ls=sl["max"], layers=m.n_layers)
        figs += [la, pa]
    gathered = zero3_gathered_bytes(m, layout, o, lora, None if pa is None else pa.value)
    figs.append(gathered)
    acts = stage_activation_bytes(m, layout, micro_batch, seq, recompute=rc, microbatches=mb, flash=flash,
                                  dropout=dropout, act_bytes=act_bytes, recompute_layers=recompute_layers,
                                  recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations)
    figs.append(acts["layer"])
    stage_totals = {}
    has_middle = where(np.asarray(layout.pp) > 2, 1, 0)  # a middle stage exists only for pp > 2
    shards = _shards(layout)  # the same for every stage
    shards = {k: x.astype(float) if isinstance(x, np.ndarray) and x.dtype.kind in "iu" else x  # widened once here,
              for k, x in shards.items()}  # as every formula would (llmcalc.core.results._wide), not per stage
    for stage in ("first", "middle", "last"):
        states = _states(f"{stage}_stage", sp[stage].value, sp[f"experts_{stage}"].value, layout, o, lora,
                         None if pa is None else pa.value, linear_per_layer * sl[stage], offload_optimizer, shards)
        if layout.schedule == "dualpipe":  # DeepSeek-V3 §3.2.1, Table 2: "two copies of the model parameters"
            states = [derive(f.key, "2*x", "B", SRC_DUALPIPE, label=f"{f.name} (DualPipe: two copies)", x=f.value)
                      for f in states[:2]] + states[2:]
        act = acts[stage]
        tot = derive(f"{stage}_stage/total", STAGE_TOTAL, "B",
                     "sum of the rows above", label=f"{stage} stage total", weights=states[0].value,
                     grads=states[1].value, optimizer=states[2].value, gathered=gathered.value,
                     activations=act.value, has=has_middle if stage == "middle" else 1)
        figs += [*states, act, tot]
        stage_totals[stage] = tot
    del shards  # read: a sweep's grid-sized pages go before the worst stage's are taken (issue #13)
    worst = derive("memory/total", WORST_STAGE, "B",
                   "the fullest pipeline stage sets the requirement", label="peak per GPU (worst stage)",
                   first=stage_totals["first"].value, middle=stage_totals["middle"].value,
                   last=stage_totals["last"].value)
    from ..core.checks import MEMORY_RESERVE, SOURCE_RESERVE, check_number

    reserve = MEMORY_RESERVE if reserve is None else check_number(reserve, "--reserve", low_ok=True, high=1,
                                                                  high_ok=False)
    cap = hw.memory_bytes
    usable = derive("memory/usable", "capacity*(1 - reserve)", "B", f"{hw.display_name} memory_bytes; {SOURCE_RESERVE}",
                    label=f"usable per GPU ({reserve:.0%} reserved)", capacity=cap, reserve=reserve)
    headroom = derive("memory/headroom", "usable - need", "B", "usable memory less the peak need",
                      label=f"headroom on {hw.display_name} (after the reserve)", usable=usable.value, need=worst.value)
    figs += [worst, usable, headroom]
    fits = np.asarray(worst.value) <= usable.value
    if not is_sweep(fits):
        fits = bool(fits)
    else:
        valid = np.broadcast_to(valid, np.broadcast(valid, fits).shape)
    tf, tm, tl = (np.asarray(stage_totals[k].value) for k in ("first", "middle", "last"))
    if tf.ndim or tm.ndim or tl.ndim:  # a sweep: each layout's own, built when first read (a planner never does)
        worst_stage = DeferredArray(lambda: _worst_stage(tf, tm, tl))
    else:
        worst_stage = str(_worst_stage(tf, tm, tl))
    from ..core.units import fmt

    verdict_line = ("per-layout" if is_sweep(worst.value) else
                    f"needs {fmt(worst.value, 'B')} per GPU of {fmt(usable.value, 'B')} usable "
                    f"({fmt(cap, 'B')} less the {reserve:.0%} reserve)")
    data = {"model": m.name, "hardware": hw.name, "total_bytes": worst.value, "memory_bytes": cap, "fits": fits,
            "usable_bytes": usable.value, "reserve": reserve, "verdict_line": verdict_line,
            "worst_stage": worst_stage, "stage_layers": {k: sl[k] for k in ("first", "middle", "last")},
            "valid": valid, "optimizer": optimizer, "offload_optimizer": offload_optimizer,
            "recompute": recompute if isinstance(recompute, str) else rc}
    for stage in ("first", "middle", "last"):
        data[f"{stage}_stage"] = {k.split("/")[1] + "_bytes": f.value for k in
                                  (f"{stage}_stage/weights", f"{stage}_stage/grads", f"{stage}_stage/optimizer",
                                   f"{stage}_stage/total") for f in figs if f.key == k}
        data[f"{stage}_stage"]["activations_bytes"] = acts[stage].value
        data[f"{stage}_stage"]["zero3_gathered_bytes"] = gathered.value
    if not is_sweep(worst.value):
        data["activation_tensors"] = tensor_table(m, micro_batch, seq, tp=layout.tp, cp=layout.cp, sp=layout.sp,
                                                  flash=flash, dropout=dropout, act_bytes=act_bytes,
                                                  recompute_norm_up=recompute_norm_up, fp8_activations=fp8_activations)
    notes = [f"optimizer {optimizer}: {o.source}"
             + ("; offloaded to the host: " + SRC_OFFLOAD if np.any(np.asarray(offload_optimizer)) else ""),
             "activations: " + ("FlashAttention (no L×M score matrices)" if flash else "explicit softmax matrices")
             + ("; dropout masks" if dropout else "; no dropout") + f"; {act_bytes}-byte activations",
             "not counted: framework workspace, NCCL buffers, allocator fragmentation (often 5-20%)"]
    if m.n_dense_layers and m.n_moe_layers:
        notes.append("expert parameters per stage from its own MoE layers; attention, dense-MLP and shared parameters "
                     "and activations averaged over the layers")
    notes += stage_notes(m, layout)
    if not is_sweep(layout.zero, layout.dp, layout.cp) and int(layout.zero) >= 1 and layout.dp * layout.cp == 1:
        notes.append(f"ZeRO-{int(layout.zero)} over a DP×CP group of 1: the non-expert states are not sharded (as "
                     "ZeRO-0); ZeRO divides them by the data-parallel degree (Rajbhandari et al. 2020 §5)")
    notes.append(f"fits: peak need <= memory x (1 - {reserve:g}); the same reserve rule as fit and serve "
                 "(--reserve to change it)")
    verdict = "fits" if fits is True else ("does NOT fit" if fits is False else "fits where mask is True")
    if fits is False:
        return Result(f"DOES NOT FIT: {m.display_name} on {hw.display_name} {verdict_line}", tuple(figs),
                      tuple(notes), data)
    return Result(f"Training memory per GPU: {m.display_name} on {hw.display_name} — {verdict}",
                  tuple(figs), tuple(notes), data)
