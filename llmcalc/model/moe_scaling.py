"""A numeric loss law for MoE models: Krajewski et al. 2024, "Scaling Laws for Fine-Grained Mixture of Experts"
(arXiv 2402.07871, ICLR 2024 version), eq. 9 with the fitted constants of its Table 1:

    L(N, D, G) = c + (g/G^γ + a) / N^α + b / D^β

- N: TOTAL non-embedding parameters (§5: "total number of non-embedding parameters N"); for their models
  N = d_model²·(8E + 4)·n_blocks (§6.1), i.e. an "E × N_act" model has N = N_act·(8E + 4)/12 with
  N_act = 12·d_model²·n_blocks the active non-embedding parameters;
- D: training tokens; G: granularity, d_ff/d_expert (§4: a token goes to G experts of width d_ff/G, so the active
  parameters do not change with G); E: expansion rate, MoE-layer parameters / dense FF parameters (= experts
  per token-slot);
- Table 1 (MoE): a = 18.1, α = 0.115, b = 30.8, β = 0.147, g = 2.1, γ = 0.58, c = 0.47; (dense, same data and
  tokenizer) a = 16.3, α = 0.126, b = 26.7, β = 0.127, c = 0.47. Fitted at E = 64 ONLY (§5: "E = 64 is fixed"),
  G in 1..16, N from 129M to 3.7B, D from 16B to 130B tokens (C4); loss in nats on their data.

C = 6·N_act·D counts the FLOPs (active parameters), while the law takes the total N: the two counts are
kept apart and both are shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import LlmcalcError
from ..core.results import Figure, Result, derive

SRC = ("Krajewski et al. 2024, Scaling Laws for Fine-Grained MoE (arXiv 2402.07871), eq. 9 and Table 1 "
       "(fitted at expansion rate E = 64, G 1-16, N 129M-3.7B total, D 16B-130B tokens, C4)")
SRC_N = "Krajewski et al. 2024 §6.1: N = d_model²·(8E + 4)·n_blocks, active N_act = 12·d_model²·n_blocks"
FIT_E = 64


@dataclass(frozen=True)
class MoELaw:
    a: float
    alpha: float
    b: float
    beta: float
    g: float
    gamma: float
    c: float


KRAJEWSKI_MOE = MoELaw(a=18.1, alpha=0.115, b=30.8, beta=0.147, g=2.1, gamma=0.58, c=0.47)  # Table 1, MoE row
KRAJEWSKI_DENSE = MoELaw(a=16.3, alpha=0.126, b=26.7, beta=0.127, g=0.0, gamma=0.0, c=0.47)  # Table 1, Dense row


def total_from_active(active, expansion: float = FIT_E):
    """Total non-embedding parameters of an "E × N_act" model of the paper's shape (§6.1): N_act·(8E + 4)/12."""
    return active * (8 * expansion + 4) / 12


def moe_loss_figure(total, tokens, granularity, key: str = "moe/loss", label: str = "MoE loss L(N, D, G)",
                    law: MoELaw = KRAJEWSKI_MOE) -> Figure:
    return derive(key, "c + (g/G**gamma + a)/N**alpha + b/D**beta", "nats", SRC, label=label, c=law.c, g=law.g,
                  G=granularity, gamma=law.gamma, a=law.a, N=total, alpha=law.alpha, b=law.b, D=tokens,
                  beta=law.beta)


def dense_loss_figure(params, tokens, key: str = "moe/dense_loss",
                      label: str = "dense model of N = active parameters, same data (Table 1 dense row)") -> Figure:
    d = KRAJEWSKI_DENSE
    return derive(key, "c + a/N**alpha + b/D**beta", "nats", SRC, label=label, c=d.c, a=d.a, N=params,
                  alpha=d.alpha, b=d.b, D=tokens, beta=d.beta)


def moe_shape(model) -> dict:
    """Active and total non-embedding parameters, expansion rate E and granularity G of a catalogue MoE model, in
    the paper's terms: G = top_k (the active FFN width split over top_k experts, d_ff = top_k·d_expert), E =
    routed experts / top_k; shared experts count as active and total."""
    from .params import param_breakdown

    if not model.moe:
        raise LlmcalcError(f"{model.display_name} is dense: the MoE law needs an MoE model or --total/--granularity")
    r = param_breakdown(model)
    # the law's N is non-embedding (Krajewski §5, as Kaplan et al. 2020)
    emb = sum(f.value for f in r.figures if f.key in ("embedding", "lm_head", "position_embedding"))
    k = model.moe.top_k
    return {"active": r.data["active"] - emb, "total": r.data["total"] - emb, "granularity": float(k),
            "expansion": model.moe.n_experts / k, "embedding": emb}


def compare_moe(active, total, tokens, granularity: float = 1.0) -> Result:
    """The MoE law's loss for one run (total N, D, G), beside the same-data dense law at N = active parameters, and
    the run's FLOPs 6·N_act·D (active vs total stated explicitly)."""
    from ..core.checks import check_number

    for v, opt in ((active, "--params (active)"), (total, "--total"), (tokens, "--tokens"),
                   (granularity, "--granularity")):
        check_number(v, opt)
    if total < active:
        raise LlmcalcError(f"--total {total:g} is below the active parameters {active:g}: an MoE holds at least the "
                           "parameters each token uses")
    if granularity < 1:
        raise LlmcalcError(f"--granularity expects G >= 1 (d_ff / d_expert), got {granularity:g}")
    moe = moe_loss_figure(total, tokens, granularity)
    dense = dense_loss_figure(active, tokens)
    flops = derive("moe/flops", "6*N_act*D", "FLOP", "C = 6·N·D with N = active parameters (Kaplan et al. 2020 §2.1)",
                   label="training FLOPs (active parameters)", N_act=active, D=tokens)
    ratio = derive("moe/expansion", "(12*N_total/N_act - 4)/8", "ratio", SRC_N,
                   label="expansion rate E implied by total/active (paper's block shape)", N_total=total,
                   N_act=active)
    e = float(ratio.value)
    notes = [f"law: {SRC}; N = TOTAL non-embedding parameters, FLOPs use the ACTIVE ones",
             "dense row: Table 1's dense fit on the same data, at N = the MoE's active parameters: the MoE gain at "
             "equal FLOPs per token",
             "loss in nats/token on C4 with their tokenizer: compare runs, do not transfer absolute values"]
    if abs(e - FIT_E) > 0.5 or not 1 <= granularity <= 16:
        notes.insert(0, f"EXTRAPOLATION: the law was fitted at E = 64 and G 1-16 only; this run has E ≈ {e:.3g}, "
                        f"G = {granularity:g}")
    data = {"law": "krajewski2024", "active": active, "total": total, "tokens": tokens, "granularity": granularity,
            "loss": moe.value, "dense_loss": dense.value, "flops": flops.value, "expansion": e}
    return Result(f"MoE loss (Krajewski et al. 2024): N_total {total:.3g}, N_active {active:.3g}, D {tokens:.3g}, "
                  f"G {granularity:g}", (moe, dense, flops, ratio), tuple(notes), data)


def moe_figures(model, tokens) -> tuple[list[Figure], list[str]]:
    """For ``chinchilla MODEL`` on an MoE: the MoE law at ``tokens`` (total non-embedding N, G = top_k) beside the
    same-data dense law at the active count, and a note that says whether the model lies inside the fit."""
    sh = moe_shape(model)
    figs = [derive("moe/nonembedding_total", "N_total - N_emb", "param", SRC, label="MoE law N: total "
                   "non-embedding parameters", N_total=sh["total"] + sh["embedding"], N_emb=sh["embedding"]),
            moe_loss_figure(sh["total"], tokens, sh["granularity"], "moe/krajewski_loss",
                            f"MoE loss at {tokens:.3g} tokens (Krajewski et al. 2024, G = top_k = "
                            f"{sh['granularity']:g})"),
            dense_loss_figure(sh["active"], tokens, "moe/krajewski_dense_loss",
                              "same data, dense model of the active non-embedding count (Table 1 dense row)")]
    inside = abs(sh["expansion"] - FIT_E) < 0.5 and 1 <= sh["granularity"] <= 16
    notes = [f"MoE law (Krajewski et al. 2024, arXiv 2402.07871 eq. 9, Table 1) at the 20 tokens/param count "
             f"of the active parameters: N = {sh['total']:.4g} total non-embedding, G = {sh['granularity']:g}, "
             f"expansion rate E = {sh['expansion']:g} " + ("(inside the fit)" if inside else
                                                           "(EXTRAPOLATION: fitted at E = 64, G 1-16 only)")
             + "; loss in nats on C4, not comparable with the dense laws' MassiveText values"]
    return figs, notes
