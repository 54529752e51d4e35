"""Exact parameter counts, matching the reference Hugging Face implementations module by module.

Conventions (each one is how the HF modeling code builds its nn.Parameters):
- Linear layers are D_in·D_out weights plus D_out when they have a bias.
- RMSNorm has one weight vector; LayerNorm a weight and a bias (GPT-2).
- q/k norms (Qwen3) and MLA's latent norms (DeepSeek-V3 ``q_a_layernorm``, ``kv_a_layernorm``) are
  counted under ``norms``.
- The MoE router is Linear(D, E). DeepSeek-V3's ``e_score_correction_bias`` is a registered buffer in
  the HF implementation, not a parameter, so it is not counted (that is why 671,026,404,352 and not
  +14,848); its multi-token-prediction module is not instantiated by HF either and is left out.
- "Active" parameters per token count everything a token touches: embedding row lookups included
  (Mixtral's published 12.9B does), shared experts, the router, and top_k of the routed experts.
"""

from __future__ import annotations

from ..core.results import Figure, Result, derive, memo_by_identity, total
from ..core.specs import Model

SRC_HF = "module shapes of the reference Hugging Face implementation (transformers, modeling_<type>.py)"


def _attention(m: Model) -> Figure:
    a = m.attention
    if a.mla:
        x = a.mla
        values = dict(D=m.d_model, H=a.n_heads, C=x.kv_lora_rank, R=x.qk_rope_head_dim,
                      Kn=x.qk_nope_head_dim, Kv=x.v_head_dim, layers=m.n_layers)
        if x.q_lora_rank:
            values["Cq"] = x.q_lora_rank
            q = "D*Cq + qb*Cq + Cq*H*(Kn+R)"  # q_a_proj (+bias), q_b_proj
        else:
            q = "D*H*(Kn+R)"
        q = q.replace(" + qb*Cq", " + Cq" if a.qkv_bias else "")
        bias = (" + (C+R)" if a.qkv_bias else "") + (" + D" if a.o_bias else "")
        f = f"layers*({q} + D*(C+R) + C*H*(Kn+Kv) + H*Kv*D{bias})"
        return derive("attention", f, "param", SRC_HF + "; MLA: DeepSeek-V2 §2.1 eqs. 9-14",
                      label="attention (MLA: q down/up, kv down, kv up, out)", **values)
    v = "D*G*K" if a.v_dim == a.head_dim else "D*G*Kv"
    bias = (" + H*K + 2*G*K" if a.v_dim == a.head_dim else " + H*K + G*K + G*Kv") if a.qkv_bias else ""
    bias += " + D" if a.o_bias else ""
    f = f"layers*(D*H*K + D*G*K + {v} + H*{'K' if a.v_dim == a.head_dim else 'Kv'}*D{bias})"
    values = dict(D=m.d_model, H=a.n_heads, G=a.n_kv_heads, K=a.head_dim, layers=m.n_layers)
    if a.v_dim != a.head_dim:
        values["Kv"] = a.v_dim
    return derive("attention", f, "param", SRC_HF, label="attention (q, k, v, o projections)", **values)


def _mlp_formula(gated: bool, bias: bool, width: str) -> str:
    mats = 3 if gated else 2
    b = f" + {mats - 1}*{width} + D" if bias else ""
    return f"{mats}*D*{width}{b}"


def _mlps(m: Model) -> list[Figure]:
    out = []
    g, b = m.mlp.gated, m.mlp.bias
    kind = "gate, up, down" if g else "up, down"
    if m.n_dense_layers:
        out.append(derive("mlp", f"dense_layers*({_mlp_formula(g, b, 'F')})", "param", SRC_HF,
                          label=f"MLP ({kind})", D=m.d_model, F=m.mlp.d_ff, dense_layers=m.n_dense_layers))
    if m.moe:
        e = m.moe
        out.append(derive("moe/router", "moe_layers*(D*E + rb*E)", "param", SRC_HF, label="MoE router",
                          D=m.d_model, E=e.n_experts, moe_layers=m.n_moe_layers, rb=int(e.router_bias)))
        out.append(derive("moe/experts", f"moe_layers*E*({_mlp_formula(g, b, 'Fe')})", "param", SRC_HF,
                          label=f"MoE routed experts ({kind})", D=m.d_model, E=e.n_experts, Fe=e.d_ff_expert,
                          moe_layers=m.n_moe_layers))
        if e.shared_width:
            out.append(derive("moe/shared_experts", f"moe_layers*({_mlp_formula(g, b, 'Fs')})", "param", SRC_HF,
                              label="MoE shared experts", D=m.d_model, Fs=e.shared_width,
                              moe_layers=m.n_moe_layers))
    return out


def _norms(m: Model) -> Figure:
    a, n = m.attention, m.norm
    values = dict(D=m.d_model, layers=m.n_layers, per_layer=n.per_layer, w=n.params_each_per_width,
                  final=int(n.final))
    f = "layers*per_layer*w*D + final*w*D"
    if a.qk_norm:
        f += " + layers*2*K"
        values["K"] = a.qk_dim
    if a.mla:
        f += " + layers*(Cq + C)"
        values.update(Cq=a.mla.q_lora_rank or 0, C=a.mla.kv_lora_rank)
    return derive("norms", f, "param", SRC_HF, label=f"norms ({n.kind})", **values)


@memo_by_identity  # a frozen Model: the same object always has the same counts
def param_breakdown(m: Model) -> Result:
    """Total parameters, by component, as the HF implementation instantiates them."""
    emb = [derive("embedding", "V*D", "param", SRC_HF, label="token embedding", shape="VD", V=m.vocab_size,
                  D=m.d_model)]
    if m.position == "learned":
        emb.append(derive("position_embedding", "P*D", "param", SRC_HF, label="learned positions", shape="PD",
                          P=m.max_seq_len, D=m.d_model))
    parts = [*emb, _attention(m), *_mlps(m), _norms(m)]
    if not m.tie_embeddings:
        parts.append(derive("lm_head", "V*D", "param", SRC_HF, label="LM head (untied)", shape="DV",
                            V=m.vocab_size, D=m.d_model))
    grand = total("total", parts, label="total parameters")
    act = active_params(m, {p.key: p.value for p in parts})
    figures = (*parts, grand, act)
    data = {"model": m.name, "total": int(grand.value), "active": int(act.value),
            "breakdown": {p.key: int(p.value) for p in parts}}
    notes = ["counts nn.Parameters of the Hugging Face implementation (buffers excluded)"]
    if m.tie_embeddings:
        notes.append("embedding tied to the LM head: counted once")
    return Result(f"Parameters of {m.display_name}", figures, tuple(notes), data)


def active_params(m: Model, parts: dict[str, int]) -> Figure:
    """Parameters one token touches (Fedus et al. 2022 §2 / Mixtral: shared + top-k of the routed experts)."""
    if not m.moe:
        return Figure("active", sum(parts.values()), "param", "total (dense model)", "",
                      "every parameter is used by every token", "active parameters per token")
    routed = parts["moe/experts"]
    return derive("active", "total - routed*(E - k)//E", "param",
                  "top-k routing: each token uses k of E routed experts (Shazeer et al. 2017; Fedus et al. 2022 §2)",
                  label="active parameters per token", total=sum(parts.values()), routed=routed,
                  E=m.moe.n_experts, k=m.moe.top_k)


def count_params(m: Model) -> int:
    return param_breakdown(m).data["total"]
