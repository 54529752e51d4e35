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

from .errors import LayoutError, LlmcalcError
from .results import Figure, Result, derive
from .specs import Model

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
    return max(a.n_kv_heads / tp, 1.0)


def check_tp(model: Model, tp) -> None:
    """TP splits attention heads across ranks, so it must divide H."""
    h = model.attention.n_heads
    tps = np.atleast_1d(np.asarray(tp))
    if np.any(tps < 1) or np.any(h % tps):
        bad = tps[(tps < 1) | (h % np.maximum(tps, 1) != 0)][0]
        raise LayoutError(f"--tp {int(bad)} does not divide the {h} attention heads of {model.display_name}")


def per_token_per_layer(model: Model, kv_dtype: str = "bf16") -> Figure:
    """Bytes one token adds to one layer's cache (whole model, before any sharding)."""
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
    ctx = np.asarray(context, dtype=float) if not np.isscalar(context) else context
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
    if np.any(np.asarray(context) < 1):
        raise LlmcalcError(f"--context expects a positive number of tokens, got {context!r}")
    if np.any(np.asarray(batch) < 1):
        raise LlmcalcError(f"--batch expects a positive number of sequences, got {batch!r}")
    if pp < 1 or pp > model.n_layers:
        raise LayoutError(f"--pp {pp} must lie in 1..{model.n_layers} (the layers of {model.display_name})")
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
             "expert parallelism does not shard the KV cache (attention is not an expert)"]
    if n_slide:
        notes.append(f"{n_slide} of {model.n_layers} layers slide over {a.sliding_window} tokens: "
                     f"{figs[1].value:,.0f} B/token at full context, capped average shown at this context")
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
