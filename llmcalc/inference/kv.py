"""KV-cache size: per token, per request and per GPU, for MHA/GQA/MQA, MLA and sliding windows.

Per token per layer a standard attention layer caches one key and one value per KV head:
``2·G·K`` elements (MHA: G = H, MQA: G = 1; Ainslie et al. 2023 §2 for GQA). MLA (DeepSeek-V2
§2.1.2, eq. 10 and §2.1.3) caches the compressed latent c_KV (C elements) and the shared rotary
key (R elements): ``C + R`` = 576 for DeepSeek-V3, with no factor 2. A sliding-window layer keeps
at most ``window`` positions (Beltagy et al. 2020; Gemma 2 report §2, alternating 4096-token
local and global layers).

Arguments ``context`` and ``batch`` may be numpy arrays (sweeps).
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_count, check_number, check_scalar
from ..core.errors import LayoutError, LlmcalcError
from ..core.results import Figure, Result, derive, memo_by_identity
from ..core.specs import Model

KV_BYTES: dict[str, float] = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}
SRC_MHA = "K and V per KV head per layer: Vaswani et al. 2017 §3.2; GQA: Ainslie et al. 2023 §2"
SRC_MLA = "MLA caches c_KV (C) + shared rope key (R), no x2: DeepSeek-V2 report §2.1.2-2.1.3"
SRC_WINDOW = "sliding-window layers keep min(context, window) positions: Gemma 2 report §2 (Table 1)"
SRC_PAGED = "PagedAttention, Kwon et al. 2023 §4.2-4.3: waste < one block per sequence (block size 16)"


def kv_bytes_per_element(kv_dtype: str) -> float:
    try:
        return KV_BYTES[kv_dtype.lower()]
    except KeyError:
        raise LlmcalcError(f"--kv-dtype expects one of {', '.join(KV_BYTES)}, got {kv_dtype!r}") from None


def kv_heads_per_gpu(model: Model, tp: int) -> float:
    """KV heads each TP rank stores: G/tp, or 1 (replicated) when tp > G; MLA's latent is replicated."""
    a = model.attention
    if a.mla:
        return 1.0
    return np.maximum(a.n_kv_heads / tp, 1.0) if np.ndim(tp) else max(a.n_kv_heads / tp, 1.0)  # tp a sweep too


SRC_REPLICATED = ("weights every TP rank holds whole, as vLLM shards them (vllm-project/vllm, model_executor/models/"
                  "deepseek_v2.py @002d607: q_a_proj and kv_a_proj_with_mqa are ReplicatedLinear, q_a_layernorm/"
                  "kv_a_layernorm and the layer norms RMSNorm, the MoE gate a replicated GateLinear; QKVParallelLinear "
                  "keeps max(1, G/tp) KV heads per rank, so tp > G replicates the K/V projections)")


def tp_replicated_params(model: Model, tp: int) -> dict[str, float]:
    """Parameters each TP rank holds BEYOND its even 1/tp share (0 at tp = 1), by part: norms, MoE router and
    MLA down-projections are whole on every rank (held fraction 1 instead of 1/tp); with tp > G each rank keeps
    one whole KV head of the K/V projections (fraction 1/G instead of 1/tp). See SRC_REPLICATED."""
    from ..model.params import param_breakdown

    if tp <= 1:
        return {}
    parts = param_breakdown(model).data["breakdown"]
    a, D, L = model.attention, model.d_model, model.n_layers
    whole = {"norms": parts.get("norms", 0), "moe/router": parts.get("moe/router", 0)}
    if a.mla:
        x = a.mla
        down = L * D * (x.kv_lora_rank + x.qk_rope_head_dim)  # kv_a_proj_with_mqa
        bias = L * (x.kv_lora_rank + x.qk_rope_head_dim) if a.qkv_bias else 0
        if x.q_lora_rank:
            down += L * D * x.q_lora_rank  # q_a_proj
            bias += L * x.q_lora_rank if a.qkv_bias else 0
        whole["mla_down_proj"] = down + bias
    extra = {k: v * (1 - 1 / tp) for k, v in whole.items() if v}
    if not a.mla and tp > a.n_kv_heads:
        kv_w = L * (D * a.n_kv_heads * (a.head_dim + a.v_dim) + (a.n_kv_heads * (a.head_dim + a.v_dim)
                                                                   if a.qkv_bias else 0))
        extra["kv_proj"] = kv_w * (1 / a.n_kv_heads - 1 / tp)
    return extra


def check_tp(model: Model, tp, option: str = "--tp") -> None:
    """TP splits attention heads across ranks, so it must divide H; with GQA the KV heads must split
    evenly too (G % tp == 0) or be replicated whole (tp % G == 0), as Megatron-LM and vLLM require.
    ``option``: the name the caller's input has (llmcalc.rl's engines: --rollout-tp)."""
    check_count(tp, option)
    a = model.attention
    h = a.n_heads
    tps = np.atleast_1d(np.asarray(tp)).astype(int)
    if np.any(h % tps):
        bad = tps[h % tps != 0][0]
        raise LayoutError(f"{option} {bad} does not divide the {h} attention heads of {model.display_name}")
    g = a.n_kv_heads
    if not a.mla and np.any((g % tps != 0) & (tps % g != 0)):
        bad = tps[(g % tps != 0) & (tps % g != 0)][0]
        raise LayoutError(f"{option} {bad} neither divides nor is a multiple of the {g} KV heads of "
                          f"{model.display_name}: each rank must hold whole KV heads (G % tp == 0) or a whole "
                          "replica of one (tp % G == 0), as Megatron-LM and vLLM require")


def check_pp(model: Model, pp) -> None:
    check_count(pp, "--pp")
    if np.any(np.asarray(pp) > model.n_layers):
        bad = np.ravel(pp)[np.ravel(np.asarray(pp) > model.n_layers)][0]
        raise LayoutError(f"--pp {int(bad)} must lie in 1..{model.n_layers} (the layers of {model.display_name})")


def per_token_per_layer(model: Model, kv_dtype: str = "bf16") -> Figure:
    """Bytes one token adds to one layer's cache (whole model, before any sharding)."""
    return _per_token_per_layer(model, kv_dtype)


@memo_by_identity  # a frozen Model: every decode step of a serving plan asks for it (issue #13)
def _per_token_per_layer(model: Model, kv_dtype: str) -> Figure:
    a, e = model.attention, kv_bytes_per_element(kv_dtype)
    if a.mla:
        return derive("bytes_per_token_per_layer", "(C + R)*bytes", "B", SRC_MLA,
                      label=f"KV per token per layer (MLA latent + rope key, {kv_dtype})", shape="L(C+R)",
                      C=a.mla.kv_lora_rank, R=a.mla.qk_rope_head_dim, bytes=e)
    if a.v_dim == a.head_dim:
        return derive("bytes_per_token_per_layer", "2*G*K*bytes", "B", SRC_MHA,
                      label=f"KV per token per layer ({_kind(model)}, {kv_dtype})", shape="2·LGK",
                      G=a.n_kv_heads, K=a.head_dim, bytes=e)
    return derive("bytes_per_token_per_layer", "G*(K + Kv)*bytes", "B", SRC_MHA,
                  label=f"KV per token per layer ({_kind(model)}, {kv_dtype})", shape="LGK + LGKv",
                  G=a.n_kv_heads, K=a.head_dim, Kv=a.v_dim, bytes=e)


def _kind(model: Model) -> str:
    a = model.attention
    if a.mla:
        return "MLA"
    return "MHA" if a.n_kv_heads == a.n_heads else "MQA" if a.n_kv_heads == 1 else f"GQA {a.n_heads}/{a.n_kv_heads}"


def cached_positions(model: Model, context):
    """Positions cached summed over layers: full layers keep ``context``, sliding ones min(context, W)."""
    n_slide = model.n_sliding_layers
    # float64 always: an int64 context times layers times bytes wraps silently past 2**63 (issue #13)
    ctx = np.asarray(context, dtype=float) if not np.isscalar(context) else float(context)
    if not n_slide:
        return model.n_layers * ctx
    w = model.attention.sliding_window
    return (model.n_layers - n_slide) * ctx + n_slide * np.minimum(ctx, w)


def kv_bytes_per_request(model: Model, context, kv_dtype: str = "bf16"):
    """Whole-model KV bytes of one sequence at ``context`` tokens (window caps applied)."""
    return cached_positions(model, context) * per_token_per_layer(model, kv_dtype).value


def kv_bytes_per_request_per_gpu(model: Model, context, kv_dtype: str = "bf16", tp: int = 1, pp: int = 1):
    """KV bytes one GPU holds for one sequence under TP (heads split or replicated) and PP (layers split)."""
    a = model.attention
    shard = 1.0 if a.mla else kv_heads_per_gpu(model, tp) / a.n_kv_heads
    layers_per_stage = -(-model.n_layers // pp)
    return kv_bytes_per_request(model, context, kv_dtype) * shard * layers_per_stage / model.n_layers


def paged_blocks(context, block_size: int = 16):
    return np.ceil(np.asarray(context) / block_size)


def kv_cache(model: Model, context, batch=1, kv_dtype: str = "bf16", tp: int = 1, pp: int = 1,
             block_size: int = 16) -> Result:
    """KV-cache figures for ``batch`` sequences of ``context`` tokens.

    ``data`` keys: ``bytes_per_token`` (whole model, all layers, K and V, averaged at the context
    given: window caps applied), ``bytes_per_token_uncapped`` (every layer keeping every position),
    ``bytes_per_request``, ``bytes_total``, ``bytes_per_gpu``, ``kv_heads_per_gpu``,
    ``paged_waste_bytes_per_request``.
    """
    check_count(context, "--context")
    check_count(batch, "--batch")
    check_count(block_size, "--block-size")
    for opt, v in (("--tp", tp), ("--pp", pp)):  # tp/pp name the sharding in labels and notes; context and batch sweep
        check_scalar(opt, v, "one value per KV cache (context and batch may be arrays)")
    check_pp(model, pp)
    check_tp(model, tp)
    a = model.attention
    per_layer = per_token_per_layer(model, kv_dtype)
    figs = [per_layer,
            derive("bytes_per_token_uncapped", "layers*per_layer", "B", per_layer.source,
                   label="KV per token, all layers (no window cap)", layers=model.n_layers,
                   per_layer=per_layer.value)]
    n_slide = model.n_sliding_layers
    if n_slide:
        figs.append(derive("cached_positions", "(layers - sliding)*M + sliding*min(M, W)", "token", SRC_WINDOW,
                           label="positions cached, summed over layers", layers=model.n_layers,
                           sliding=n_slide, M=context, W=a.sliding_window))
    else:
        figs.append(derive("cached_positions", "layers*M", "token", "every layer caches every position",
                           label="positions cached, summed over layers", layers=model.n_layers, M=context))
    pos = figs[-1].value
    figs.append(derive("bytes_per_request", "positions*per_layer", "B", per_layer.source,
                       label="KV per sequence at this context", positions=pos, per_layer=per_layer.value))
    per_req = figs[-1].value
    figs.append(derive("bytes_per_token", "per_request/M", "B", "average over the context",
                       label="KV per token at this context" + (" (window-capped)" if n_slide else ""),
                       per_request=per_req, M=context))
    figs.append(derive("bytes_total", "B*per_request", "B", "sum over the batch", label="KV for the batch",
                       B=batch, per_request=per_req))
    heads = kv_heads_per_gpu(model, tp)
    shard = 1.0 if a.mla else heads / a.n_kv_heads
    lps = -(-model.n_layers // pp)
    if a.mla:
        f_src = "MLA latent is shared by all heads, so every TP rank keeps it whole (replicated)"
    elif tp > a.n_kv_heads:
        f_src = (f"tp {tp} > {a.n_kv_heads} KV heads: each rank keeps one KV head, replicated "
                 f"{tp // a.n_kv_heads}x (Megatron/vLLM GQA sharding)")
    else:
        f_src = "TP splits KV heads across ranks (Shoeybi et al. 2019 §3); PP splits layers"
    figs.append(derive("bytes_per_gpu", "total*shard*stage_layers/layers", "B", f_src,
                       label=f"KV per GPU (tp {tp}, pp {pp})", total=figs[-1].value, shard=shard,
                       stage_layers=lps, layers=model.n_layers))
    blocks = paged_blocks(context, block_size)
    figs.append(derive("paged_waste_bytes_per_request", "(ceil(M/block)*block - M)*per_layer*layers", "B",
                       SRC_PAGED, label=f"PagedAttention waste per sequence (block {block_size}, < 1 block)",
                       M=context, block=block_size, per_layer=per_layer.value, layers=model.n_layers))
    notes = [f"{_kind(model)} attention, KV stored at {kv_dtype} ({kv_bytes_per_element(kv_dtype):g} B/element)",
             "expert parallelism does not shard the KV cache: each EP rank keeps the KV of its own sequences"]
    if n_slide:
        notes.append(f"{n_slide} of {model.n_layers} layers slide over {a.sliding_window} tokens: "
                     f"{figs[1].value:,.0f} B/token at full context, capped average shown at this context")
    warn = model.past_positions(context)
    if warn:
        notes.append(warn)
    if a.mla:
        notes.append("MLA: the latent is replicated on every TP rank (not split by heads)")
    elif tp > a.n_kv_heads:
        notes.append(f"tp {tp} exceeds the {a.n_kv_heads} KV heads: KV heads are replicated, not split")
    data = {"model": model.name, "kv_dtype": kv_dtype, "context": context, "batch": batch, "tp": tp, "pp": pp,
            "bytes_per_token_per_layer": per_layer.value, "bytes_per_token": figs[4].value,
            "bytes_per_token_uncapped": figs[1].value, "bytes_per_request": per_req,
            "bytes_total": figs[5].value, "bytes_per_gpu": figs[6].value, "kv_heads_per_gpu": heads,
            "paged_blocks_per_request": blocks, "paged_waste_bytes_per_request": figs[7].value}
    data = {k: _exact(v) for k, v in data.items()}
    return Result(f"KV cache of {model.display_name} at context {_ctx(context)}", tuple(figs), tuple(notes), data)


def _exact(v):
    """Ints where the value is exact (JSON stability)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    return v


def _ctx(c) -> str:
    return f"{int(c):,}" if np.isscalar(c) else "sweep"


# ---------------------------------------------------------------- what fits in memory

SRC_FIT = "capacity: memory x (1 - reserve) - weights/(tp·pp), the rest for KV (activations inside the reserve)"


def max_context(model: Model, free_bytes, batch=1, kv_dtype: str = "bf16", tp: int = 1, pp: int = 1):
    """Longest context whose KV for ``batch`` sequences fits in ``free_bytes`` per GPU (window-aware)."""
    per_seq = np.asarray(free_bytes, dtype=float) / np.asarray(batch, dtype=float)
    unit = kv_bytes_per_request_per_gpu(model, 1.0, kv_dtype, tp, pp)  # per token when nothing is capped
    n_slide = model.n_sliding_layers
    if not n_slide:
        return np.floor(per_seq / unit)
    # cached positions are (layers - s)·M + s·min(M, W): linear with slope layers up to W, then layers - s
    w = model.attention.sliding_window
    below = per_seq / unit
    if n_slide == model.n_layers:  # every layer slides: past W the cache stops growing, any context fits
        return np.floor(np.where(below < w, below, np.inf))
    full_frac = (model.n_layers - n_slide) / model.n_layers
    above = (per_seq / unit - w * n_slide / model.n_layers) / full_frac
    return np.floor(np.where(below <= w, below, above))


def fit(model: Model, hw, weights: str | float = "bf16", group_size: int | None = None, kv_dtype: str = "bf16",
        tp: int = 1, pp: int = 1, reserve: float = 0.1, context=None, batch=1, block_size: int = 16,
        ep: int = 1, brief: bool = False) -> Result:
    """Do the weights fit, and what batch x context of KV fits beside them on each GPU?

    ``data`` keys: ``fits`` (weights fit), ``weight_bytes_per_gpu``, ``usable_bytes_per_gpu``,
    ``free_bytes_per_gpu``, ``max_batch`` (at ``context``), ``max_batch_paged`` (PagedAttention blocks),
    ``max_context`` (at ``batch``), ``kv_tokens_capacity``, ``max_batch_by_context``.
    ``brief``: only the weights, free memory and ``max_batch`` (a planner's capacity check, 10² calls); the paged,
    longest-context and by-context figures are left out (their data keys are None), every other number the same.
    """
    from ..model.quant import weight_bytes

    for opt, v in (("--tp", tp), ("--pp", pp), ("--ep", ep), ("--reserve", reserve), ("--block-size", block_size),
                   ("--group-size", group_size)):
        check_scalar(opt, v, "one value per fit (context and batch may be arrays)")
    check_number(reserve, "--reserve", low=0, low_ok=True, high=1, high_ok=False)
    check_count(context, "--context")
    check_count(batch, "--batch")
    check_count(ep, "--ep")
    check_count(block_size, "--block-size")
    check_pp(model, pp)
    check_tp(model, tp)
    context = model.max_seq_len if context is None else context
    wb = weight_bytes(model, weights, group_size)
    bpw = wb["bits_per_weight"]  # its formula shows the group overhead, e.g. 4 + (16 + 4)/128
    figs = [derive("usable_bytes_per_gpu", "memory*(1 - reserve)", "B", SRC_FIT,
                   label=f"usable memory per GPU ({reserve:.0%} reserved)", memory=hw.memory_bytes, reserve=reserve),
            bpw]
    # the weight line spells out its parts: quantised block weights at bpw, embeddings/LM head at 16 bit
    q, e16 = wb.data["quantized_params"], wb.data["embedding_params"]
    src_q = "bytes = params x bits / 8; " + (wb.assumptions[0] if wb.assumptions else "")
    rep = sum(tp_replicated_params(model, tp).values())  # held whole by every TP rank (0 at tp 1)
    src_rep = ("; " + SRC_REPLICATED) if rep else ""
    if ep > 1:
        from ..model.params import param_breakdown

        if not model.moe or model.moe.n_experts % ep:
            have = f"{model.moe.n_experts} routed experts" if model.moe else "no experts"
            raise LayoutError(f"--ep {ep} must divide the routed experts of {model.display_name} ({have})")
        experts = param_breakdown(model).data["breakdown"]["moe/experts"]
        figs.append(derive("weight_bytes_per_gpu",
                           "((params_q - experts)*bpw + params_16*16)/8/(tp*pp) + experts*bpw/8/(tp*pp*ep)"
                           + (" + replicated*bpw/8/pp" if rep else ""), "B",
                           "TP and PP shard every weight; EP spreads the routed experts (Lepikhin et al. 2021 "
                           "GShard §2.2), attention and shared experts replicated across EP ranks; " + src_q + src_rep,
                           label=f"weights per GPU ({wb.data['weights']})", params_q=q, experts=experts, bpw=bpw.value,
                           params_16=e16, tp=tp, pp=pp, ep=ep, **({"replicated": rep} if rep else {})))
    else:
        figs.append(derive("weight_bytes_per_gpu", "(params_q*bpw + params_16*16)/8/(tp*pp)"
                           + (" + replicated*bpw/8/pp" if rep else ""), "B",
                           "TP and PP shard every weight (vocabulary-parallel embeddings); " + src_q + src_rep,
                           label=f"weights per GPU ({wb.data['weights']})", params_q=q, bpw=bpw.value,
                           params_16=e16, tp=tp, pp=pp, **({"replicated": rep} if rep else {})))
    figs.append(derive("free_bytes_per_gpu", "usable - weights", "B", SRC_FIT, label="left for the KV cache",
                       usable=figs[0].value, weights=figs[2].value))
    free = max(figs[-1].value, 0.0)
    per_tok = kv_bytes_per_request_per_gpu(model, 1.0, kv_dtype, tp, pp)
    per_req = kv_bytes_per_request_per_gpu(model, context, kv_dtype, tp, pp)
    figs.append(derive("kv_tokens_capacity", "free/per_token", "token", SRC_FIT,
                       label="KV tokens that fit (no window cap)", free=free, per_token=per_tok))
    figs.append(derive("max_batch", "free//per_request", "seq", SRC_FIT,
                       label=f"largest batch at context {_ctx(context)}", free=free, per_request=per_req))
    fits = figs[3].value > 0
    data = {"model": model.name, "hardware": hw.name, "tp": tp, "pp": pp, "ep": ep, "weights": wb.data["weights"],
            "kv_dtype": kv_dtype, "reserve": reserve, "context": context, "batch": batch, "fits": bool(fits),
            "bits_per_weight": bpw.value,
            "weight_bytes_per_gpu": figs[2].value, "usable_bytes_per_gpu": figs[0].value,
            "free_bytes_per_gpu": free, "kv_tokens_capacity": int(figs[4].value),
            "max_batch": _exact(figs[5].value), "max_batch_paged": None, "max_context": None,
            "max_batch_by_context": None}
    if brief:
        return Result(f"What fits (brief): {model.display_name} on {tp * pp * ep} x {hw.display_name}", tuple(figs),
                      (), data)
    paged_req = kv_bytes_per_request_per_gpu(model, paged_blocks(context, block_size) * block_size, kv_dtype, tp, pp)
    figs.append(derive("max_batch_paged", "free//per_request_paged", "seq", SRC_PAGED,
                       label=f"largest batch with {block_size}-token pages", free=free,
                       per_request_paged=paged_req))
    mc = np.minimum(max_context(model, free, batch, kv_dtype, tp, pp), model.max_seq_len)
    figs.append(Figure("max_context", mc, "token", f"largest M with B·kv(M) <= free, capped at the model's "
                       f"{model.max_seq_len:,} positions", "", SRC_FIT, f"longest context at batch {_ctx(batch)}"))
    table = {}
    c = 1024
    while c <= model.max_seq_len:
        table[c] = int(free // kv_bytes_per_request_per_gpu(model, c, kv_dtype, tp, pp))
        c *= 2
    notes = [f"weights {wb.data['weights']} ({wb.data['bits_per_weight']:g} bits/weight), KV {kv_dtype}",
             f"reserve {reserve:.0%} of memory for activations, CUDA context and fragmentation",
             *wb.assumptions]
    if not fits:
        notes.append(f"weights do NOT fit: {figs[2].value / 1e9:.1f} GB per GPU > {figs[0].value / 1e9:.1f} GB "
                     "usable; raise --tp/--pp or quantise")
    warn = model.past_positions(context)  # as kv and infer: the batch at that context is a what-if
    if warn:
        notes.append(warn)
    data.update(max_batch_paged=_exact(figs[6].value), max_context=_exact(mc), max_batch_by_context=table)
    title = f"What fits: {model.display_name} on {tp * pp * ep} x {hw.display_name} (tp {tp}, pp {pp}, ep {ep})"
    if not fits:  # said first, as infer, memory and step do: the lines below read as a (negative) shortfall
        from ..core.units import fmt

        title = (f"DOES NOT FIT: weights need {fmt(figs[2].value, 'B')} per GPU of {fmt(figs[0].value, 'B')} usable; "
                 "raise --tp/--pp or quantise — " + title)
    return Result(title, tuple(figs), tuple(notes), data)
