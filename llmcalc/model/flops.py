"""Forward, backward and training-step FLOPs, matmul by matmul.

Counting convention (the default) is the one ``torch.utils.flop_counter.FlopCounterMode`` applies to
the reference Hugging Face implementation run with ``attn_implementation="eager"``:

- 2 FLOPs per multiply-add of every matmul (biases, norms, softmax, activations and RoPE are not
  counted: they are elementwise);
- the attention score (QKᵀ) and value (AV) matmuls over the full L×M rectangle: the causal mask and
  sliding windows are applied as masks, so nothing is skipped. The one exception is the KV cache:
  HF's sliding-window cache keeps only the last W-1 positions, so with a cache (decode, chunked
  prefill) a sliding layer's keys are the L new positions plus at most W-1 cached ones;
- MLA in its plain (HF) form caches the latent and up-projects all M cached positions at every step;
- the LM head for every position.

``causal=True`` switches to the causal convention of Megatron-LM's FLOPs counter: each query attends
only to earlier positions (half the rectangle when L = M), and sliding-window layers to at most the
window. MoE layers count the router, the top-k routed experts per token and the shared experts, never
all experts. Shapes follow the shape-suffix notation (``llmcalc notation``).
"""

from __future__ import annotations

import numpy as np

from ..core.checks import fmt_input
from ..core.errors import LayoutError, LlmcalcError
from ..core.results import Figure, Result, derive, memo_by_identity, relabel, total
from ..core.specs import Model

SRC_EAGER = "torch.utils.flop_counter convention (2 per multiply-add) on the HF eager implementation"
SRC_ATTN = "Vaswani et al. 2017 §3.2.1 (scaled dot-product attention); " + SRC_EAGER
SRC_CAUSAL = "causal halving as in Megatron-LM's num_floating_point_operations (Narayanan et al. 2021 §5.1)"
SRC_SLIDING_CACHE = ("transformers' sliding-window cache (DynamicSlidingWindowLayer) keeps the last W-1 positions; "
                     + SRC_EAGER)
SRC_MOE = "top-k routing: each token runs k of E experts (Shazeer et al. 2017 §2; Fedus et al. 2022 §2.1)"
SRC_MLA = "DeepSeek-V2 §2.1.2 eqs. 9-14 (MLA); HF modeling_deepseek_v3.py DeepseekV3Attention"
SRC_MLA_CACHE = SRC_MLA + "; HF caches the latent and up-projects every cached position (expand_kv)"
SRC_ABSORB = "DeepSeek-V2 §2.1.3 (W_UK absorbed into q, W_UV into o); DeepSeek-V3 inference/model.py attn_impl='absorb'"
SRC_BWD = "backward = 2 x forward (Kaplan et al. 2020 §2.1; Narayanan et al. 2021 §5.1)"
SRC_FULL_RC = "full recompute re-runs each layer's forward, not the LM head (Narayanan et al. 2021 §5.1, eq. 3)"
SRC_SEL_RC = "selective recompute re-runs only attention scores/softmax/values (Korthikanti et al. 2022 §5)"
SRC_6ND = "C = 6·N·D (Kaplan et al. 2020 §2.1; Hoffmann et al. 2022 §3)"

RECOMPUTE = ("none", "selective", "full")


def _count(x, option: str):
    """A workload size: Python int stays exact; arrays become float64 so big sweeps cannot overflow int64."""
    from ..core.checks import MAX_COUNT, check_number

    # finite, >= 1 and <= 2**53, never a bool; fractional values stay allowed (a mean context over decode steps)
    try:
        check_number(x, f"--{option}", low=1, low_ok=True, high=MAX_COUNT)
    except LayoutError:
        raise
    except LlmcalcError as e:
        raise LayoutError(str(e)) from None
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        out = int(x)
    elif isinstance(x, float) and x.is_integer():
        out = int(x)
    else:
        out = np.asarray(x, dtype=float)
    arr = np.asarray(out, dtype=float)
    if np.any(~np.isfinite(arr) | (arr < 1)):

        shown = fmt_input(x) if np.ndim(x) == 0 else fmt_input(arr[~np.isfinite(arr) | (arr < 1)].flat[0])
        raise LayoutError(f"--{option} must be at least 1, got {shown}")
    return out


# ---------------------------------------------------------------- layer structure


def block_layers(m: Model) -> dict[str, int]:
    """Layer count per block type: MLP kind (dense/moe) x attention kind (global/sliding when mixed)."""
    dense = set(m.moe.dense_layers) if m.moe else set(range(m.n_layers))
    has_sliding = m.n_sliding_layers > 0
    counts: dict[str, int] = {}
    for i in range(m.n_layers):
        name = "dense" if i in dense else "moe"
        if has_sliding:
            name += "_sliding" if m.is_sliding(i) else "_global"
        counts[name] = counts.get(name, 0) + 1
    return counts


def _attended(key: str, causal: bool, sliding: bool, m: Model, L, M) -> Figure | None:
    """Positions each query's scores and values run over, when that is not simply M.

    Causal convention: the mean over queries (the last L of M positions) of the positions they may see.
    HF convention on sliding-window layers: the cache keeps only the last W-1 positions, so the keys are
    the L new ones plus min(M-L, W-1) cached ones; within them the window is a mask (full rectangle).
    """
    if not causal:
        if not sliding:
            return None
        return derive(key, "L + min(M - L, W - 1)", "token", SRC_SLIDING_CACHE,
                      label="key positions (sliding-window cache: L new + at most W-1 cached)",
                      L=L, M=M, W=m.attention.sliding_window)
    src = SRC_CAUSAL
    if not sliding:
        return derive(key, "M - L/2", "token", src, label="mean attended positions (causal: M - L/2)", M=M, L=L)
    # Integral over query positions p in (M-L, M] of min(W, p), divided by L: ramps up to the window, then flat.
    f = "((min(M, W)**2 - min(M - L, W)**2)/2 + W*(M - max(M - L, min(M, W))))/L"
    return derive(key, f, "token", src + "; sliding window caps each query at W positions (Beltagy et al. 2020 §3)",
                  label="mean attended positions (causal, sliding window)", M=M, L=L, W=m.attention.sliding_window)


def _attention_rows(p: str, m: Model, B, L, M, Ma, mla_absorbed: bool) -> list[Figure]:
    a = m.attention
    Mx = M if Ma is None else Ma  # the attended length used by scores and values
    if a.mla:
        return _mla_rows(p, m, B, L, M, Mx, mla_absorbed)
    v = dict(B=B, L=L, D=m.d_model, H=a.n_heads, G=a.n_kv_heads, K=a.head_dim, Kv=a.v_dim)
    return [
        derive(f"{p}/q_proj", "2*B*L*D*H*K", "FLOP", SRC_EAGER, label="q projection", shape="BLD,DHK->BLHK", **v),
        derive(f"{p}/k_proj", "2*B*L*D*G*K", "FLOP", SRC_EAGER, label="k projection", shape="BLD,DGK->BLGK", **v),
        derive(f"{p}/v_proj", "2*B*L*D*G*Kv", "FLOP", SRC_EAGER, label="v projection", shape="BLD,DGK->BLGK", **v),
        derive(f"{p}/scores", "2*B*L*M*H*K", "FLOP", SRC_ATTN, label="attention scores QKᵀ",
               shape="BLHK,BMHK->BHLM", **{**v, "M": Mx}),
        derive(f"{p}/values", "2*B*L*M*H*Kv", "FLOP", SRC_ATTN, label="attention values AV",
               shape="BHLM,BMHK->BLHK", **{**v, "M": Mx}),
        derive(f"{p}/o_proj", "2*B*L*H*Kv*D", "FLOP", SRC_EAGER, label="output projection", shape="BLHK,HKD->BLD",
               **v),
    ]


def _mla_rows(p: str, m: Model, B, L, M, Ma, absorbed: bool) -> list[Figure]:
    """MLA matmuls; ``M`` is the cached length, ``Ma`` the length attended to (differs under --causal)."""
    a, x = m.attention, m.attention.mla
    v = dict(B=B, L=L, D=m.d_model, H=a.n_heads, C=x.kv_lora_rank, R=x.qk_rope_head_dim, Kn=x.qk_nope_head_dim,
             Kv=x.v_head_dim)
    rows = []
    if x.q_lora_rank:
        rows += [
            derive(f"{p}/q_down", "2*B*L*D*Cq", "FLOP", SRC_MLA, label="q down-projection (C' = q_lora_rank)",
                   shape="BLD,DC'->BLC'", **v, Cq=x.q_lora_rank),
            derive(f"{p}/q_up", "2*B*L*Cq*H*(Kn+R)", "FLOP", SRC_MLA, label="q up-projection (nope + rope)",
                   shape="BLC',C'H(K+R)->BLH(K+R)", **v, Cq=x.q_lora_rank),
        ]
    else:
        rows.append(derive(f"{p}/q_proj", "2*B*L*D*H*(Kn+R)", "FLOP", SRC_MLA, label="q projection (nope + rope)",
                           shape="BLD,DH(K+R)->BLH(K+R)", **v))
    rows.append(derive(f"{p}/kv_down", "2*B*L*D*(C+R)", "FLOP", SRC_MLA,
                       label="kv down-projection + shared rope key", shape="BLD,D(C+R)->BL(C+R)", **v))
    if not absorbed:
        rows += [
            # The plain form up-projects the latent of every cached position, each step (what absorbing avoids).
            derive(f"{p}/kv_up", "2*B*M*C*H*(Kn+Kv)", "FLOP", SRC_MLA_CACHE,
                   label="kv up-projection of all M cached latents (k nope, v)", shape="BMC,CH(K+K)->BMH(K+K)",
                   **v, M=M),
            derive(f"{p}/scores", "2*B*L*M*H*(Kn+R)", "FLOP", SRC_ATTN, label="attention scores QKᵀ",
                   shape="BLH(K+R),BMH(K+R)->BHLM", **v, M=Ma),
            derive(f"{p}/values", "2*B*L*M*H*Kv", "FLOP", SRC_ATTN, label="attention values AV",
                   shape="BHLM,BMHK->BLHK", **v, M=Ma),
        ]
    else:
        rows += [
            derive(f"{p}/q_absorb", "2*B*L*H*Kn*C", "FLOP", SRC_ABSORB, label="q·W_UK (absorbed key up-projection)",
                   shape="BLHK,CHK->BLHC", **v),
            derive(f"{p}/scores", "2*B*L*M*H*(C+R)", "FLOP", SRC_ABSORB, label="scores over the cached latent + rope",
                   shape="BLH(C+R),BM(C+R)->BHLM", **v, M=Ma),
            derive(f"{p}/values", "2*B*L*M*H*C", "FLOP", SRC_ABSORB, label="values over the cached latent",
                   shape="BHLM,BMC->BLHC", **v, M=Ma),
            derive(f"{p}/v_absorb", "2*B*L*H*C*Kv", "FLOP", SRC_ABSORB, label="·W_UV (absorbed value up-projection)",
                   shape="BLHC,CHK->BLHK", **v),
        ]
    rows.append(derive(f"{p}/o_proj", "2*B*L*H*Kv*D", "FLOP", SRC_MLA, label="output projection",
                       shape="BLHK,HKD->BLD", **v))
    return rows


def _mlp_rows(p: str, m: Model, B, L, moe: bool) -> list[Figure]:
    gated = m.mlp.gated
    if not moe:
        v = dict(B=B, L=L, D=m.d_model, F=m.mlp.d_ff)
        rows = [derive(f"{p}/mlp_gate", "2*B*L*D*F", "FLOP", SRC_EAGER, label="MLP gate", shape="BLD,DF->BLF",
                       **v)] if gated else []
        return rows + [
            derive(f"{p}/mlp_up", "2*B*L*D*F", "FLOP", SRC_EAGER, label="MLP up", shape="BLD,DF->BLF", **v),
            derive(f"{p}/mlp_down", "2*B*L*F*D", "FLOP", SRC_EAGER, label="MLP down", shape="BLF,FD->BLD", **v),
        ]
    e = m.moe
    mats = 3 if gated else 2
    v = dict(B=B, L=L, D=m.d_model, E=e.n_experts, k=e.top_k, F=e.d_ff_expert, mats=mats)
    kind = "gate, up, down" if gated else "up, down"
    rows = [
        derive(f"{p}/router", "2*B*L*D*E", "FLOP", SRC_MOE, label="MoE router", shape="BLD,DE->BLE", **v),
        derive(f"{p}/experts", "mats*2*B*L*k*D*F", "FLOP", SRC_MOE,
               label=f"top-{e.top_k} routed experts ({kind}; tokens x k)", shape="top_k x (BLD,DF->BLF)", **v),
    ]
    if e.shared_width:
        rows.append(derive(f"{p}/shared_experts", "mats*2*B*L*D*F", "FLOP", SRC_MOE,
                           label=f"shared experts ({kind})", shape="BLD,DF->BLF",
                           B=B, L=L, D=m.d_model, F=e.shared_width, mats=mats))
    return rows


# ---------------------------------------------------------------- the public calculator


def forward_flops(model: Model, batch=1, seq=2048, *, kv_len=None, causal: bool = False,
                  mla_absorbed: bool = False, recompute: str = "none", brief: bool = False) -> Result:
    """FLOPs of one forward pass over ``batch`` sequences of ``seq`` query tokens attending to ``kv_len``.

    ``kv_len`` defaults to ``seq`` (training, prefill); decode is ``seq=1, kv_len=context``. Numeric
    arguments may be numpy arrays. ``data["forward_flops"]`` is the total; ``data["per_layer"]`` lists
    every matmul of each block type; backward, training-step, recompute and 6·N·D figures follow.
    ``brief``: the forward pass alone (a serving step's FLOPs, asked 10¹-10² times per plan): the matmul rows, block
    and forward totals and ``data`` keys ``forward_flops`` and ``lm_head_flops``, each the same number as in full.
    """
    if np.ndim(batch) == 0 and np.ndim(seq) == 0 and np.ndim(kv_len) == 0:  # one point: asked again and again
        return _forward_flops_memo(model, batch, seq, kv_len, causal, mla_absorbed, recompute, brief)
    return _forward_flops(model, batch, seq, kv_len, causal, mla_absorbed, recompute, brief)


def _forward_flops(model: Model, batch, seq, kv_len, causal, mla_absorbed, recompute, brief=False) -> Result:
    m = model
    if recompute not in RECOMPUTE:
        raise LayoutError(f"--recompute must be one of {', '.join(RECOMPUTE)}, got {recompute!r}")
    if mla_absorbed and not m.attention.mla:
        raise LayoutError(f"--mla-absorbed needs a multi-head latent attention model; {m.display_name} has none")
    B, L = _count(batch, "batch"), _count(seq, "seq")
    M = L if kv_len is None else _count(kv_len, "kv-len")
    if np.any(np.asarray(M) < np.asarray(L)):
        raise LayoutError(f"--kv-len must be at least --seq (queries attend to themselves), got "
                          f"kv_len={fmt_input(kv_len)} < seq={fmt_input(seq)}")

    figures: list[Figure] = []
    block_totals: list[Figure] = []
    block_extra: list[Figure] = []  # per block backward and training step
    attn_core: list[Figure] = []  # score + value matmuls, what selective recompute re-runs
    per_layer: dict[str, dict] = {}
    for name, n in block_layers(m).items():
        sliding = name.endswith("_sliding")
        att = _attended(f"{name}/attended_len", causal, sliding, m, L, M)
        rows = _attention_rows(name, m, B, L, M, None if att is None else att.value, mla_absorbed)
        rows += _mlp_rows(name, m, B, L, moe=name.startswith("moe"))
        if not brief:  # rows of several block types stay distinct (labels: a brief result is never shown)
            rows = [relabel(r, label=f"{name}: {r.label}") for r in rows]
        layer = total(f"{name}/per_layer", rows, label=f"{name} block, one layer")
        block = derive(f"{name}/forward", "layers*per_layer", "FLOP", "sum of the rows above, x layers",
                       label=f"{name} blocks (x {n} layers)", layers=n, per_layer=layer.value)
        figures += ([att] if att is not None else []) + rows + [layer]
        block_totals.append(block)
        if brief:
            continue
        block_bwd = derive(f"{name}/backward", "2*forward", "FLOP", SRC_BWD, label=f"{name} blocks, backward",
                           forward=block.value)
        block_step = derive(f"{name}/train_step", "3*forward", "FLOP", SRC_BWD,
                            label=f"{name} blocks, training step", forward=block.value)
        block_extra += [block_bwd, block_step]
        core = [r for r in rows if r.key.endswith(("/scores", "/values"))]
        attn_core.append(derive(f"{name}/attention_core", "layers*(scores + values)", "FLOP", SRC_SEL_RC,
                                label=f"{name} attention scores + values (x {n})", layers=n,
                                scores=core[0].value, values=core[1].value))
        per_layer[name] = {"layers": n, "forward_flops_per_layer": layer.value, "forward_flops": block.value,
                           "backward_flops": block_bwd.value, "train_step_flops": block_step.value,
                           "matmuls": [{"key": r.key, "label": r.name, "einsum": r.shape, "formula": r.formula,
                                        "flops": r.value} for r in rows]}
        if att is not None:
            per_layer[name]["attended_len"] = att.value
    lm_head = derive("lm_head", "2*B*L*D*V", "FLOP", SRC_EAGER + " (logits for every position)",
                     label="LM head", shape="BLD,DV->BLV", B=B, L=L, D=m.d_model, V=m.vocab_size)
    figures += [*block_totals, *block_extra, lm_head]
    fwd = total("forward", [*block_totals, lm_head], label="forward pass")
    if brief:
        return Result(f"Forward FLOPs of {m.display_name} (brief)", (*figures, fwd), (),
                      {"model": m.name, "batch": B, "seq": L, "kv_len": M, "causal": causal,
                       "mla_absorbed": mla_absorbed, "forward_flops": _exact(fwd.value),
                       "lm_head_flops": _exact(lm_head.value)})
    layers_fwd = total("layers_forward", block_totals, label="all transformer layers, forward")
    bwd = derive("backward", "2*forward", "FLOP", SRC_BWD, label="backward pass", forward=fwd.value)
    step = derive("train_step", "forward + backward", "FLOP", SRC_BWD, label="training step (model FLOPs)",
                  forward=fwd.value, backward=bwd.value)
    figures += [fwd, bwd, step]
    hw = _hardware_flops(recompute, step, layers_fwd, attn_core)
    figures += hw
    six = _six_nd(m, B, L, step)
    figures += six

    data = {"model": m.name, "batch": B, "seq": L, "kv_len": M, "causal": causal, "mla_absorbed": mla_absorbed,
            "recompute": recompute, "forward_flops": _exact(fwd.value), "backward_flops": _exact(bwd.value),
            "train_step_flops": _exact(step.value), "hardware_flops": _exact(hw[-1].value),
            "lm_head_flops": _exact(lm_head.value), "six_nd_flops": _exact(six[-2].value),
            "exact_over_six_nd": six[-1].value, "n_active_params": six[0].value,
            "per_layer": {k: {**v, **{f: _exact(v[f]) for f in ("forward_flops_per_layer", "forward_flops",
                                                                 "backward_flops", "train_step_flops")},
                              "matmuls": [{**r, "flops": _exact(r["flops"])} for r in v["matmuls"]]}
                          for k, v in per_layer.items()}}
    convention = ("causal: each query attends to earlier positions only (Megatron-LM counter; M - L/2 on "
                  "average), sliding-window layers to at most the window" if causal else
                  "attention over the full L x M rectangle (HF eager / FlopCounterMode: the causal mask and "
                  "sliding windows are masks, not skipped work; sliding layers' cache holds at most W-1 "
                  "positions, so their keys are L + min(M-L, W-1))")
    title = (f"FLOPs of {m.display_name}: batch {_show(B)} x seq {_show(L)}, kv_len {_show(M)}"
             f" ({'causal-halved' if causal else 'full-rectangle'} attention"
             f"{', MLA absorbed' if mla_absorbed else ''})")
    notes = [
        "2 FLOPs per multiply-add of every matmul; elementwise ops, softmax, norms, RoPE and embedding lookups "
        "are not counted",
        convention,
        "LM head computed for every position (HF default logits_to_keep=0)",
    ]
    if m.moe:
        notes.append(f"MoE: router + top-{m.moe.top_k} of {m.moe.n_experts} routed experts per token"
                     + (" + shared experts" if m.moe.shared_width else "")
                     + f"; {m.n_dense_layers} dense layer(s) use the dense MLP")
    if m.attention.mla:
        notes.append("MLA " + ("absorbed form (decode): attention runs over the cached C+R latent; W_UK and "
                               "W_UV applied per query" if mla_absorbed else
                               "plain form (HF): the latent is cached and keys/values are up-projected for all M "
                               "positions at every step (what the absorbed form avoids)"))
    if np.any(np.asarray(M) > m.max_seq_len):
        notes.append(f"kv_len exceeds {m.display_name}'s max_seq_len ({m.max_seq_len}): counted anyway, as if the "
                     "context were extended")
    notes += _recompute_notes(recompute)
    notes.append("6·N·D uses N = active parameters per token including embeddings (llmcalc params), "
                 "D = B·L tokens; Kaplan et al. 2020 count N without embeddings")
    return Result(title, tuple(figures), tuple(notes), data)


def _hardware_flops(recompute: str, step: Figure, layers_fwd: Figure, attn_core: list[Figure]) -> list[Figure]:
    """FLOPs the hardware executes: the model FLOPs plus whatever recomputation re-runs."""
    if recompute == "full":
        return [derive("hardware", "train_step + layers_forward", "FLOP", SRC_FULL_RC,
                       label="hardware FLOPs (full recompute: one more forward of every layer)",
                       train_step=step.value, layers_forward=layers_fwd.value)]
    if recompute == "selective":
        core = total("attention_core", attn_core, label="attention scores + values, all layers (re-run)")
        return [core, derive("hardware", "train_step + attention_core", "FLOP", SRC_SEL_RC,
                             label="hardware FLOPs (selective recompute)", train_step=step.value,
                             attention_core=core.value)]
    return [derive("hardware", "train_step", "FLOP", "no recomputation: hardware FLOPs = model FLOPs",
                   label="hardware FLOPs (no recompute)", train_step=step.value)]


def _recompute_notes(recompute: str) -> list[str]:
    if recompute == "full":
        return ["full recompute: the layers' forward runs twice (HFU counts it, MFU does not); the LM head is "
                "not recomputed, as in Narayanan et al. 2021 eq. 3 (96·B·s·l·h²(1 + s/6h + V/16lh))"]
    if recompute == "selective":
        return ["selective recompute re-runs the score and value matmuls once more (softmax/dropout are not "
                "matmuls). Korthikanti et al. 2022 App. A eq. 8 charges s/6h of the model FLOPs instead "
                "(2.7% for GPT-3), three times this re-run: use eq. 8 to reproduce the paper's HFU"]
    return []


def _six_nd(m: Model, B, L, step: Figure) -> list[Figure]:
    from .params import param_breakdown

    n_active = param_breakdown(m).data["active"]
    six = derive("six_nd", "6*N*B*L", "FLOP", SRC_6ND, label="6·N·D (N = active params incl. embeddings)",
                 N=n_active, B=B, L=L)
    ratio = derive("exact_over_six_nd", "train_step/six_nd", "ratio", "exact count / 6·N·D",
                   label="exact training step / 6·N·D", train_step=step.value, six_nd=six.value)
    n_fig = Figure("n_active", n_active, "param", source="llmcalc.model.params: every parameter a token touches "
                   "(top-k experts for MoE)", label="N: active parameters per token")
    return [n_fig, six, ratio]


def _exact(v):
    """JSON-friendly: an int where the count is exact, a float otherwise, a list for a sweep."""
    if isinstance(v, np.ndarray):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _show(v) -> str:
    if isinstance(v, np.ndarray):
        return f"[{v.size} values]" if v.size > 4 else "[" + ", ".join(f"{x:g}" for x in v.ravel()) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def forward_flops_value(model: Model, batch=1, seq=2048, **kw):
    """Just the forward FLOPs number (for calculators that need it inside their own formulas)."""
    return forward_flops(model, batch, seq, **kw).data["forward_flops"]


# Scalar calls by model identity and the exact arguments (types included: an int batch gives exact int FLOPs):
# a serving planner asks for the same prefill of the same model once per candidate replica.
_forward_flops_memo = memo_by_identity(_forward_flops)
