"""Compute-optimal training (Chinchilla, Hoffmann et al. 2022): tokens per parameter, N and D for a budget.

Two answers are given side by side, always labelled, because they differ a lot at large scale:

- the 20 tokens-per-parameter rule (Table 3, Approach 1 projections: 1B params -> 20.2B tokens) with
  C = 6·N·D, so N = sqrt(C / (6·20)) and D = 20·N;
- Approach 3 (§3.3, App. D.2): the fitted loss L(N, D) = E + A/N^α + B/D^β and its closed-form optimum
  N_opt = G·(C/6)^a, D_opt = G⁻¹·(C/6)^b with G = (αA/(βB))^(1/(α+β)), a = β/(α+β), b = α/(α+β).
"""

from __future__ import annotations

import numpy as np

from ..core.errors import LlmcalcError
from ..core.results import Figure, Result, derive
from ..core.specs import Model

SRC_T3 = "Hoffmann et al. 2022 (Chinchilla), Table 3: ~20 tokens per parameter (1B -> 20.2B tokens)"
SRC_6ND = "C = 6·N·D (Kaplan et al. 2020 §2.1; Hoffmann et al. 2022 §3)"
SRC_A3 = "Hoffmann et al. 2022 §3.3 closed form, App. D.2 constants (E=1.69, A=406.4, B=410.7, α=0.34, β=0.28)"
SRC_LOSS = "Hoffmann et al. 2022 §3.3 eq. 2 / App. D.2: L(N,D) = E + A/N^α + B/D^β"

# Approach 3 fit, Hoffmann et al. 2022 App. D.2 (rounded as published).
APPROACH3 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
TOKENS_PER_PARAM = 20.0


def _positive(x, option: str):
    if x is None:
        return None
    from ..core.checks import check_number

    v = x if isinstance(x, (int, float)) else np.asarray(x, dtype=float)
    return check_number(v, option)  # finite and > 0: NaN would otherwise flow through every formula


def approach3_constants() -> list[Figure]:
    """G, a and b of the Approach 3 closed form, from the published constants."""
    c = APPROACH3
    g = derive("approach3/G", "(alpha*A/(beta*B))**(1/(alpha+beta))", "ratio", SRC_A3, label="G (Approach 3)",
               alpha=c["alpha"], beta=c["beta"], A=c["A"], B=c["B"])
    a = derive("approach3/a", "beta/(alpha+beta)", "ratio", SRC_A3 + "; Table 2 prints a = 0.46",
               label="a: N_opt ∝ C^a", alpha=c["alpha"], beta=c["beta"])
    b = derive("approach3/b", "alpha/(alpha+beta)", "ratio", SRC_A3 + "; Table 2 prints b = 0.54",
               label="b: D_opt ∝ C^b", alpha=c["alpha"], beta=c["beta"])
    return [g, a, b]


def loss(params, tokens, key: str = "loss", label: str = "predicted loss L(N, D)") -> Figure:
    """Approach 3's fitted loss (nats per token on MassiveText) for N parameters trained on D tokens."""
    c = APPROACH3
    return derive(key, "E + A/N**alpha + B/D**beta", "nats", SRC_LOSS, label=label, E=c["E"], A=c["A"],
                  B=c["B"], alpha=c["alpha"], beta=c["beta"], N=params, D=tokens)


def optimal_for_budget(flops) -> list[Figure]:
    """Compute-optimal N and D for a FLOP budget: the 20x rule and Approach 3, each with its predicted loss."""
    C = _positive(flops, "--flops")
    n20 = derive("rule20/params", "sqrt(C/(6*r))", "param", f"{SRC_6ND} with D = r·N; {SRC_T3}",
                 label="N_opt (20 tokens/param rule)", C=C, r=TOKENS_PER_PARAM)
    d20 = derive("rule20/tokens", "r*N", "token", SRC_T3, label="D_opt (20 tokens/param rule)",
                 r=TOKENS_PER_PARAM, N=n20.value)
    g, a, b = approach3_constants()
    n3 = derive("approach3/params", "G*(C/6)**a", "param", SRC_A3, label="N_opt (Approach 3)", G=g.value, C=C,
                a=a.value)
    d3 = derive("approach3/tokens", "(C/6)**b/G", "token", SRC_A3, label="D_opt (Approach 3)", G=g.value, C=C,
                b=b.value)
    return [n20, d20, loss(n20.value, d20.value, "rule20/loss", "predicted loss at the 20x optimum"),
            g, a, b, n3, d3, loss(n3.value, d3.value, "approach3/loss", "predicted loss at the Approach 3 optimum")]


def tokens_for_params(params) -> list[Figure]:
    """Compute-optimal tokens (and the FLOPs they cost) for a model of N parameters, by both approaches."""
    N = _positive(params, "--params")
    d20 = derive("rule20/tokens", "r*N", "token", SRC_T3, label="compute-optimal tokens (20 tokens/param)",
                 r=TOKENS_PER_PARAM, N=N)
    c20 = derive("rule20/flops", "6*N*D", "FLOP", SRC_6ND, label="training FLOPs at 20 tokens/param", N=N,
                 D=d20.value)
    g, a, b = approach3_constants()
    # Invert N_opt = G·(C/6)^a for C/6, then D_opt = G⁻¹·(C/6)^b.
    d3 = derive("approach3/tokens", "(N/G)**(b/a)/G", "token", SRC_A3 + "; N_opt(C) inverted for C",
                label="compute-optimal tokens (Approach 3)", N=N, G=g.value, a=a.value, b=b.value)
    c3 = derive("approach3/flops", "6*N*D", "FLOP", SRC_6ND, label="training FLOPs at the Approach 3 optimum",
                N=N, D=d3.value)
    return [d20, c20, loss(N, d20.value, "rule20/loss", "predicted loss at 20 tokens/param"),
            g, a, b, d3, c3, loss(N, d3.value, "approach3/loss", "predicted loss at the Approach 3 optimum")]


def chinchilla(model: Model | None = None, *, params=None, flops=None) -> Result:
    """Chinchilla answers for a model (or a bare parameter count) and/or a FLOP budget.

    For MoE models the compute-relevant N is the active parameter count (shared + top-k experts); the
    total count (what must fit in memory) is shown beside it. Arrays sweep.
    """
    if model is None and params is None and flops is None:
        raise LlmcalcError("chinchilla needs a MODEL, --params N or --flops C (e.g. --flops 5.76e23)")
    if model is not None and params is not None:
        raise LlmcalcError("give either a MODEL or --params, not both")
    figures: list[Figure] = []
    data: dict = {}
    notes = [
        "C = 6·N·D (forward 2 + backward 4 FLOPs per parameter per token; attention FLOPs ignored, as in "
        "Hoffmann et al. 2022)",
        "the 20 tokens/param rule and Approach 3 differ at large scale; every figure says which it uses",
        "the published (rounded) Approach 3 constants give N_opt ≈ 32B at the Gopher budget 5.76e23 FLOPs, "
        "not the paper's 40B (Figure 4 caption), and do not reproduce Table A3: the paper is inconsistent "
        "with its own rounded constants",
        "loss is Approach 3's fit (nats/token on MassiveText), not transferable across data sets",
    ]
    title = "Chinchilla compute-optimal training"
    if model is not None:
        from .params import param_breakdown

        p = param_breakdown(model).data
        params = p["active"]
        title += f" for {model.display_name}"
        figures += [Figure("params_active", p["active"], "param", source="llmcalc.model.params",
                           label="N for compute: active parameters per token"),
                    Figure("params_total", p["total"], "param", source="llmcalc.model.params",
                           label="total parameters (what memory must hold)")]
        data.update(model=model.name, params_active=p["active"], params_total=p["total"])
        if model.moe:
            notes.append(f"{model.display_name} is MoE: FLOPs and the 20x rule use the active parameters "
                         f"({p['active']:,}), memory the total ({p['total']:,}); Chinchilla was fitted on dense "
                         "models only")
    if params is not None:
        params = _positive(params, "--params")
        rows = tokens_for_params(params)
        figures += [_prefix(r, "size/") for r in rows]
        by = {r.key: r.value for r in rows}
        data.update(params=params, tokens_rule20=by["rule20/tokens"], flops_rule20=by["rule20/flops"],
                    tokens_approach3=by["approach3/tokens"], flops_approach3=by["approach3/flops"],
                    loss_rule20=by["rule20/loss"], loss_approach3=by["approach3/loss"])
    if flops is not None:
        rows = optimal_for_budget(flops)
        figures += [_prefix(r, "budget/") for r in rows]
        by = {r.key: r.value for r in rows}
        data.update(flops_budget=flops, budget_params_rule20=by["rule20/params"],
                    budget_tokens_rule20=by["rule20/tokens"], budget_params_approach3=by["approach3/params"],
                    budget_tokens_approach3=by["approach3/tokens"], budget_loss_rule20=by["rule20/loss"],
                    budget_loss_approach3=by["approach3/loss"])
        title += f" (budget {flops:g} FLOPs)" if isinstance(flops, (int, float)) else " (FLOP budget sweep)"
    data.update(a=figures_by_key(figures, "approach3/a"), b=figures_by_key(figures, "approach3/b"),
                G=figures_by_key(figures, "approach3/G"))
    return Result(title, tuple(_dedupe(figures)), tuple(notes), data)


def _prefix(f: Figure, prefix: str) -> Figure:
    from dataclasses import replace

    if f.key.startswith("approach3/") and f.key.split("/")[1] in ("G", "a", "b"):
        return f  # constants: shared, not per question
    return replace(f, key=prefix + f.key)


def _dedupe(figures: list[Figure]) -> list[Figure]:
    seen, out = set(), []
    for f in figures:
        if f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out


def figures_by_key(figures: list[Figure], key: str):
    return next((f.value for f in figures if f.key.endswith(key)), None)
