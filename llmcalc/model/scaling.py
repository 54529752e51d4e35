"""Compute-optimal training and loss laws: the 20x rule, Chinchilla-form loss laws, the Llama 3 token law.

Three answers are given side by side, always labelled, because they differ a lot at large scale:

- the 20 tokens-per-parameter rule (Hoffmann et al. 2022 Table 3, Approach 1 projections: 1B params ->
  20.2B tokens) with C = 6·N·D, so N = sqrt(C / (6·20)) and D = 20·N;
- a parametric loss law L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022 §3.3, Approach 3) and its
  closed-form optimum N_opt = G·(C/6)^a, D_opt = G⁻¹·(C/6)^b with G = (αA/(βB))^(1/(α+β)),
  a = β/(α+β), b = α/(α+β). The constants are selectable (:data:`LAWS`, or the user's own):
  ``epoch`` (default) — Besiroglu et al. 2024's refit on data extracted from Hoffmann's Figure 4;
  ``hoffmann`` — the paper's own fit, unrounded, from its arXiv TeX source; ``hoffmann-rounded`` — the
  rounded constants printed in App. D.2, kept to show why they mislead;
- the Llama 3 law (Llama 3 Herd paper §3.2.1): compute-optimal training tokens D*(C) = A·C^α.

MoE: C = 6·N·D counts the parameters each token touches, so N is the active count; the laws were fitted
on dense models, so for an MoE they are evaluated at N = active parameters and that is said in a figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import LlmcalcError
from ..core.results import Figure, Result, derive
from ..core.specs import Model

SRC_T3 = "Hoffmann et al. 2022 (Chinchilla), Table 3: ~20 tokens per parameter (1B -> 20.2B tokens)"
SRC_6ND = "C = 6·N·D (Kaplan et al. 2020 §2.1; Hoffmann et al. 2022 §3)"
SRC_CLOSED = "Hoffmann et al. 2022 §3.3 closed form (eq. 4) for L(N,D) = E + A/N^α + B/D^β"
SRC_LLAMA3 = ("Llama 3 Herd of Models (arXiv 2407.21783) §3.2.1: D*(C) = A·C^α, Figure 3 legend α = 0.537, "
              "A = 0.299 (the text rounds to 0.53, 0.29)")
SRC_MOE = ("MoE: C = 6·N·D counts parameters touched per token (active); dense-fitted laws at N = active are "
           "an upper bound on MoE loss: at equal active size more experts lower the loss (Clark et al. 2022, "
           "arXiv 2202.01169 §4, 'effective parameter count'; Ludziejewski et al. 2025, arXiv 2502.05172); the "
           "numeric MoE law is Krajewski et al. 2024 (llmcalc.model.moe_scaling, `llmcalc loss --total`)")
TOKENS_PER_PARAM = 20.0


@dataclass(frozen=True)
class LossLaw:
    """L(N, D) = E + A/N^alpha + B/D^beta (nats per token on the fit's own data set)."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    def describe(self) -> str:
        return (f"{self.name}: E={self.E:.4g}, A={self.A:.5g}, B={self.B:.6g}, α={self.alpha:.5g}, "
                f"β={self.beta:.5g} ({self.source})")


LAWS = {
    # Besiroglu, Erdil, Barnett, You 2024, "Chinchilla Scaling: A replication attempt" (arXiv 2404.10102),
    # their estimates (§3, Table 1): a = β/(α+β) = 0.513, i.e. ~20 tokens per parameter, in line with
    # Hoffmann's Approaches 1 and 2.
    "epoch": LossLaw("epoch", 1.8172, 482.01, 2085.43, 0.3478, 0.3658,
                     "Besiroglu et al. 2024 (arXiv 2404.10102) refit of Hoffmann's Approach 3, Table 1"),
    # Hoffmann et al. 2022 arXiv TeX source, comment after eq. 10: log-space fit (e, a, b) =
    # (0.5267228, 6.0073404, 6.0179186), α = 0.33917084, β = 0.2849083; E, A, B are their exponentials.
    # Besiroglu et al. 2024 §2 point out the printed (rounded) values bias the projections; these are
    # the values their code starts from (epoch-research/analyzing-chinchilla, true_params).
    "hoffmann": LossLaw("hoffmann", math.exp(0.5267228), math.exp(6.0073404), math.exp(6.0179186),
                        0.33917084, 0.2849083,
                        "Hoffmann et al. 2022 Approach 3, unrounded constants of the arXiv TeX source"),
    "hoffmann-rounded": LossLaw("hoffmann-rounded", 1.69, 406.4, 410.7, 0.34, 0.28,
                                "Hoffmann et al. 2022 App. D.2 as printed (rounded; do not reproduce Table A3)"),
}
DEFAULT_LAW = "epoch"


@dataclass(frozen=True)
class TokenLaw:
    """Compute-optimal training tokens D*(C) = A·C^alpha."""

    name: str
    A: float
    alpha: float
    source: str


LLAMA3 = TokenLaw("llama3", 0.299, 0.537, SRC_LLAMA3)


# ---------------------------------------------------------------- where the laws were fitted

# Hoffmann et al. 2022 abstract: "over 400 language models ranging from 70 million to over 16 billion parameters
# on 5 to 500 billion tokens"; Besiroglu et al. 2024 refit the same runs (data read off Hoffmann's Figure 4).
FIT_PARAMS = (7e7, 1.6e10)
FIT_TOKENS = (5e9, 5e11)
# Llama 3 Herd (arXiv 2407.21783) §3.2.1: IsoFLOP runs at budgets from 6e18 to 1e22 FLOPs, then extrapolated by
# Meta to its 3.8e25-FLOP flagship (and checked there): the law's range as used, fitted + its own extrapolation.
FIT_LLAMA3_FLOPS = (6e18, 3.8e25)
FAR = 10.0  # more than this factor outside the fitted range: said in the first line
MIN_PARAMS = 1e6  # fewer parameters than any language model the laws describe: an input error, not a warning
MIN_TOKENS = 1e6


def _outside(value, lo: float, hi: float, what: str, unit: str, law: str) -> str | None:
    """'N = 405B is 25× above the largest model the epoch law was fitted on (16B)' when ``value`` (a scalar or the
    extreme of a sweep) lies more than FAR× outside [lo, hi]; None inside."""
    v = np.asarray(value, dtype=float)
    top, bottom = float(np.max(v)), float(np.min(v))

    def num(x: float) -> str:
        return f"{x:.3g}" if unit == " FLOPs" or x >= 1e15 else _fmt_count(x)

    def times(f: float) -> str:
        return f"{f:,.0f}×" if f < 1e6 else f"{f:.1e}×".replace("e+", "e")

    basis = "fitted or checked on" if law == "Llama 3" else "fitted on"
    if top > FAR * hi:
        return f"{what} = {num(top)}{unit} is {times(top / hi)} above the largest the {law} law was {basis} " \
               f"({num(hi)}{unit})"
    if bottom < lo / FAR:
        return f"{what} = {num(bottom)}{unit} is {times(lo / bottom)} below the smallest the {law} law was {basis} " \
               f"({num(lo)}{unit})"
    return None


def range_warnings(law: str, params=None, tokens=None, flops_llama3=None) -> list[str]:
    """Extrapolations far outside each law's fitted range (FIT_PARAMS/FIT_TOKENS for the Chinchilla-form laws,
    FIT_LLAMA3_FLOPS for Llama 3's token law)."""
    out = [_outside(params, *FIT_PARAMS, "N", " params", law) if params is not None else None,
           _outside(tokens, *FIT_TOKENS, "D", " tokens", law) if tokens is not None else None,
           _outside(flops_llama3, *FIT_LLAMA3_FLOPS, "C", " FLOPs", "Llama 3") if flops_llama3 is not None
           else None]
    return [w for w in out if w]


def check_plausible(params=None, tokens=None, flops=None) -> None:
    """Inputs no scaling law describes are errors: under a million parameters or tokens, or a budget whose
    20-tokens-per-parameter optimum has under a million parameters (C < 6·20·1e12 = 1.2e14 FLOPs). A bare
    parameter count that reads as billions ('7') asks whether 7B was meant."""
    if params is not None and float(np.min(np.asarray(params, dtype=float))) < MIN_PARAMS:
        n = float(np.min(np.asarray(params, dtype=float)))
        hint = f" — did you mean {n:g}B?" if n < 1e4 else ""
        raise LlmcalcError(f"--params {n:g} is {n:g} parameters{hint} No scaling law describes models under "
                           "a million parameters (they were fitted on 70M–16B); write 7B, 70M or 7e9")
    if tokens is not None and float(np.min(np.asarray(tokens, dtype=float))) < MIN_TOKENS:
        d = float(np.min(np.asarray(tokens, dtype=float)))
        hint = f" — did you mean {d:g}B or {d:g}T?" if d < 1e4 else ""
        raise LlmcalcError(f"--tokens {d:g} is {d:g} tokens{hint} No scaling law describes training on under "
                           "a million tokens (they were fitted on 5B–500B); write 300B or 1.4T")
    if flops is not None:
        c = float(np.min(np.asarray(flops, dtype=float)))
        if c < 6 * TOKENS_PER_PARAM * MIN_PARAMS**2:
            raise LlmcalcError(f"--flops {c:g} buys a compute-optimal model of under a million parameters "
                               f"(C < 6·20·(1e6)² = {6 * TOKENS_PER_PARAM * MIN_PARAMS**2:g} FLOPs), far below "
                               "anything the laws were fitted on (about 1e18–1e22 FLOPs); did you mean e.g. 1e23?")


def _warned(title: str, warnings: list[str]) -> str:
    """The title, led by the extrapolation warnings when there are any (the first line a user reads)."""
    if not warnings:
        return title
    return f"EXTRAPOLATED far outside the fitted range ({'; '.join(warnings)}): {title}"


def parse_law(text: str | LossLaw | None) -> LossLaw:
    """A law by name (epoch, hoffmann, hoffmann-rounded), 'E,A,B,alpha,beta', or a YAML file with those keys."""
    if text is None:
        return LAWS[DEFAULT_LAW]
    if isinstance(text, LossLaw):
        return text
    key = text.strip().lower()
    if key in LAWS:
        return LAWS[key]
    if "," in key:
        parts = [p.strip() for p in key.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 5:
            raise LlmcalcError(f"--law expects 5 numbers E,A,B,alpha,beta (e.g. 1.8172,482.01,2085.43,0.3478,0.3658), "
                               f"got {text!r}")
        return _user_law(dict(zip(("E", "A", "B", "alpha", "beta"), values, strict=True)), "--law", "given")
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():  # a file (read safely, whatever it is)
        from ..core.catalogue import load_user_yaml

        data = load_user_yaml(path, "--law")
        if not isinstance(data, dict):
            raise LlmcalcError(f"--law {text}: expected a mapping with keys E, A, B, alpha, beta")
        extra = set(data) - {"E", "A", "B", "alpha", "beta", "name", "source"}
        if extra:
            raise LlmcalcError(f"--law {text}: unknown keys {sorted(extra)}; expected E, A, B, alpha, beta "
                               "(and optionally name, source)")
        return _user_law(data, f"--law {text}", str(data.get("source", text)), str(data.get("name", path.stem)))
    raise LlmcalcError(f"--law: unknown law {text!r}; expected one of {', '.join(LAWS)}, five numbers "
                       "E,A,B,alpha,beta, or a YAML file with those keys")


def _user_law(d: dict, where: str, source: str, name: str = "user") -> LossLaw:
    from ..core.checks import check_number

    missing = [k for k in ("E", "A", "B", "alpha", "beta") if k not in d]
    if missing:
        raise LlmcalcError(f"{where}: missing {', '.join(missing)}")
    vals = {}
    for k in ("E", "A", "B", "alpha", "beta"):
        try:
            vals[k] = float(check_number(d[k], f"{where} {k}", low=0.0, low_ok=(k == "E")))
        except (TypeError, ValueError):
            raise LlmcalcError(f"{where} {k} expects a number, got {d[k]!r}") from None
    return LossLaw(name, vals["E"], vals["A"], vals["B"], vals["alpha"], vals["beta"], f"user-supplied ({source})")


def _positive(x, option: str):
    if x is None:
        return None
    from ..core.checks import check_number

    v = x if isinstance(x, (int, float)) else np.asarray(x, dtype=float)
    return check_number(v, option)  # finite and > 0: NaN would otherwise flow through every formula


def law_constants(law: LossLaw | str | None = None) -> list[Figure]:
    """G, a and b of the closed form, from the law's constants."""
    c = parse_law(law)
    src = f"{SRC_CLOSED}; constants: {c.describe()}"
    g = derive("approach3/G", "(alpha*A/(beta*B))**(1/(alpha+beta))", "ratio", src, label=f"G ({c.name} law)",
               alpha=c.alpha, beta=c.beta, A=c.A, B=c.B)
    a = derive("approach3/a", "beta/(alpha+beta)", "ratio", src, label="a: N_opt ∝ C^a", alpha=c.alpha, beta=c.beta)
    b = derive("approach3/b", "alpha/(alpha+beta)", "ratio", src, label="b: D_opt ∝ C^b", alpha=c.alpha,
               beta=c.beta)
    return [g, a, b]


def approach3_constants() -> list[Figure]:  # kept for callers of the old name
    return law_constants()


def loss(params, tokens, key: str = "loss", label: str = "predicted loss L(N, D)",
         law: LossLaw | str | None = None) -> Figure:
    """The law's fitted loss (nats per token on the fit's data set) for N parameters trained on D tokens."""
    c = parse_law(law)
    return derive(key, "E + A/N**alpha + B/D**beta", "nats", f"Hoffmann et al. 2022 eq. 2; {c.describe()}",
                  label=label, E=c.E, A=c.A, B=c.B, alpha=c.alpha, beta=c.beta, N=params, D=tokens)


def llama3_tokens_for_budget(flops) -> list[Figure]:
    """Llama 3's compute-optimal tokens for a budget, and the parameter count C/(6·D) that spends it."""
    C = _positive(flops, "--flops")
    d = derive("llama3/tokens", "A*C**alpha", "token", SRC_LLAMA3, label="D_opt (Llama 3 law)", A=LLAMA3.A, C=C,
               alpha=LLAMA3.alpha)
    n = derive("llama3/params", "C/(6*D)", "param", f"{SRC_6ND}; {SRC_LLAMA3}", label="N_opt (Llama 3 law)", C=C,
               D=d.value)
    return [n, d]


def llama3_tokens_for_params(params) -> list[Figure]:
    """Llama 3 law for a model size: C = 6·N·A·C^α solved for C, then D = C/(6·N)."""
    N = _positive(params, "--params")
    c = derive("llama3/flops", "(6*N*A)**(1/(1-alpha))", "FLOP", f"{SRC_LLAMA3}; C = 6·N·D solved for C",
               label="training FLOPs at the Llama 3 optimum", N=N, A=LLAMA3.A, alpha=LLAMA3.alpha)
    d = derive("llama3/tokens", "C/(6*N)", "token", SRC_LLAMA3, label="compute-optimal tokens (Llama 3 law)",
               C=c.value, N=N)
    return [d, c]


def optimal_for_budget(flops, law: LossLaw | str | None = None) -> list[Figure]:
    """Compute-optimal N and D for a FLOP budget: the 20x rule, the loss law, Llama 3's law."""
    c = parse_law(law)
    C = _positive(flops, "--flops")
    n20 = derive("rule20/params", "sqrt(C/(6*r))", "param", f"{SRC_6ND} with D = r·N; {SRC_T3}",
                 label="N_opt (20 tokens/param rule)", C=C, r=TOKENS_PER_PARAM)
    d20 = derive("rule20/tokens", "r*N", "token", SRC_T3, label="D_opt (20 tokens/param rule)",
                 r=TOKENS_PER_PARAM, N=n20.value)
    g, a, b = law_constants(c)
    n3 = derive("approach3/params", "G*(C/6)**a", "param", SRC_CLOSED, label=f"N_opt ({c.name} law)", G=g.value,
                C=C, a=a.value)
    d3 = derive("approach3/tokens", "(C/6)**b/G", "token", SRC_CLOSED, label=f"D_opt ({c.name} law)", G=g.value,
                C=C, b=b.value)
    return [n20, d20, loss(n20.value, d20.value, "rule20/loss", f"loss at the 20x optimum ({c.name} law)", c),
            g, a, b, n3, d3, loss(n3.value, d3.value, "approach3/loss", f"loss at the {c.name} optimum", c),
            *llama3_tokens_for_budget(C)]


def tokens_for_params(params, law: LossLaw | str | None = None) -> list[Figure]:
    """Compute-optimal tokens (and the FLOPs they cost) for a model of N parameters, by each law."""
    c = parse_law(law)
    N = _positive(params, "--params")
    d20 = derive("rule20/tokens", "r*N", "token", SRC_T3, label="compute-optimal tokens (20 tokens/param)",
                 r=TOKENS_PER_PARAM, N=N)
    c20 = derive("rule20/flops", "6*N*D", "FLOP", SRC_6ND, label="training FLOPs at 20 tokens/param", N=N,
                 D=d20.value)
    g, a, b = law_constants(c)
    # Invert N_opt = G·(C/6)^a for C/6, then D_opt = G⁻¹·(C/6)^b.
    d3 = derive("approach3/tokens", "(N/G)**(b/a)/G", "token", SRC_CLOSED + "; N_opt(C) inverted for C",
                label=f"compute-optimal tokens ({c.name} law)", N=N, G=g.value, a=a.value, b=b.value)
    c3 = derive("approach3/flops", "6*N*D", "FLOP", SRC_6ND, label=f"training FLOPs at the {c.name} optimum",
                N=N, D=d3.value)
    return [d20, c20, loss(N, d20.value, "rule20/loss", f"loss at 20 tokens/param ({c.name} law)", c),
            g, a, b, d3, c3, loss(N, d3.value, "approach3/loss", f"loss at the {c.name} optimum", c),
            *llama3_tokens_for_params(N)]


def chinchilla(model: Model | None = None, *, params=None, flops=None, law: LossLaw | str | None = None) -> Result:
    """Compute-optimal answers for a model (or a bare parameter count) and/or a FLOP budget.

    For MoE models the compute-relevant N is the active parameter count (shared + top-k experts); the
    total count (what must fit in memory) is shown beside it. Arrays sweep.
    """
    c = parse_law(law)
    if model is None and params is None and flops is None:
        raise LlmcalcError("chinchilla needs a MODEL, --params N or --flops C (e.g. --flops 5.76e23)")
    if model is not None and params is not None:
        raise LlmcalcError("give either a MODEL or --params, not both")
    figures: list[Figure] = []
    data: dict = {"law": c.name, "law_constants": {"E": c.E, "A": c.A, "B": c.B, "alpha": c.alpha, "beta": c.beta}}
    notes = [
        "C = 6·N·D (forward 2 + backward 4 FLOPs per parameter per token; attention FLOPs ignored, as in "
        "Hoffmann et al. 2022)",
        f"loss law: {c.describe()}",
        "three answers, each labelled: the 20 tokens/param rule, the loss law's closed-form optimum, and "
        "Llama 3's token law; they differ at large scale",
        "the printed (rounded) Approach 3 constants give ~32B at the Gopher budget 5.76e23 and ~110 tokens "
        "per parameter at 70B; the unrounded TeX constants (--law hoffmann) give the paper's 40B; Epoch's "
        "refit (default) gives ~20 tokens/param like Approaches 1 and 2 (Besiroglu et al. 2024)",
        "loss is in nats/token on the law's own data (MassiveText for Hoffmann/Epoch), not transferable "
        "across data sets or tokenizers",
    ]
    title = "Compute-optimal training"
    if model is not None:
        from .params import param_breakdown

        p = param_breakdown(model).data
        params = p["active"]
        title += f" for {model.display_name}"
        figures += [Figure("params_active", p["active"], "param", source="llmcalc.model.params",
                           label="N for compute and the laws: active parameters per token"),
                    Figure("params_total", p["total"], "param", source="llmcalc.model.params",
                           label="total parameters (what memory must hold)")]
        data.update(model=model.name, params_active=p["active"], params_total=p["total"])
        if model.moe:
            figures.append(derive("moe/total_over_active", "N_total/N_active", "ratio", SRC_MOE,
                                  label="MoE: total / active parameters (laws use active; loss is an upper bound)",
                                  N_total=p["total"], N_active=p["active"]))
            notes.append(f"{model.display_name} is MoE: FLOPs and the dense laws use the active parameters "
                         f"({p['active']:,}); memory the total ({p['total']:,}). {SRC_MOE}")
            from .moe_scaling import moe_figures

            mf, mn = moe_figures(model, TOKENS_PER_PARAM * p["active"])
            figures += mf
            notes += mn
            data["moe_krajewski_loss"] = mf[1].value
    if model is None:  # a model's own count is what it is; a typed count may be a slip ('7' for 7B)
        check_plausible(params=_positive(params, "--params") if params is not None else None,
                        flops=_positive(flops, "--flops") if flops is not None else None)
    elif flops is not None:
        check_plausible(flops=_positive(flops, "--flops"))
    warnings: list[str] = []
    if params is not None:
        params = _positive(params, "--params")
        rows = tokens_for_params(params, c)
        byk = {r.key: r.value for r in rows}
        warnings += range_warnings(c.name, params=params, tokens=byk["approach3/tokens"],
                                   flops_llama3=byk["llama3/flops"])
        figures += [_prefix(r, "size/") for r in rows]
        by = {r.key: r.value for r in rows}
        data.update(params=params, tokens_rule20=by["rule20/tokens"], flops_rule20=by["rule20/flops"],
                    tokens_approach3=by["approach3/tokens"], flops_approach3=by["approach3/flops"],
                    loss_rule20=by["rule20/loss"], loss_approach3=by["approach3/loss"],
                    tokens_llama3=by["llama3/tokens"], flops_llama3=by["llama3/flops"])
    if flops is not None:
        rows = optimal_for_budget(flops, c)
        figures += [_prefix(r, "budget/") for r in rows]
        by = {r.key: r.value for r in rows}
        warnings += [w for w in range_warnings(c.name, params=by["approach3/params"], tokens=by["approach3/tokens"],
                                               flops_llama3=flops) if w not in warnings]
        data.update(flops_budget=flops, budget_params_rule20=by["rule20/params"],
                    budget_tokens_rule20=by["rule20/tokens"], budget_params_approach3=by["approach3/params"],
                    budget_tokens_approach3=by["approach3/tokens"], budget_loss_rule20=by["rule20/loss"],
                    budget_loss_approach3=by["approach3/loss"], budget_params_llama3=by["llama3/params"],
                    budget_tokens_llama3=by["llama3/tokens"])
        title += f" (budget {flops:g} FLOPs)" if isinstance(flops, (int, float)) else " (FLOP budget sweep)"
    data.update(a=figures_by_key(figures, "approach3/a"), b=figures_by_key(figures, "approach3/b"),
                G=figures_by_key(figures, "approach3/G"), extrapolated=warnings)
    notes.insert(0, _FIT_NOTE)
    return Result(_warned(title, warnings), tuple(_dedupe(figures)), tuple(notes), data)


_FIT_NOTE = ("fitted ranges: Chinchilla-form laws 70M–16B parameters on 5B–500B tokens (Hoffmann et al. 2022; Epoch's "
             "refit uses the same runs); Llama 3's token law 6e18–1e22 FLOPs, used by Meta up to 3.8e25; beyond 10× "
             "outside, the first line says so")


def compare_losses(params, tokens, law: LossLaw | str | None = None) -> Result:
    """Predicted loss of each (N, D) pair, its FLOPs, and the loss the same FLOPs would reach at the law's
    optimum (e.g. "is 7B on 500B tokens better than 3B on 1T?")."""
    c = parse_law(law)
    ns = np.atleast_1d(np.asarray(params, dtype=float))
    ds = np.atleast_1d(np.asarray(tokens, dtype=float))
    if ns.shape != ds.shape:
        raise LlmcalcError(f"give as many --tokens as --params (got {ns.size} and {ds.size}), e.g. "
                           "--params 7B,3B --tokens 500B,1T")
    _positive(ns, "--params")
    _positive(ds, "--tokens")
    check_plausible(params=ns, tokens=ds)
    warnings = range_warnings(c.name, params=ns, tokens=ds)
    g, a, b = law_constants(c)
    figs, rows = [], []
    for i, (n, d) in enumerate(zip(ns.tolist(), ds.tolist(), strict=True)):
        tag = f"run{i + 1}"
        name = f"{_fmt_count(n)} params on {_fmt_count(d)} tokens"
        lf = loss(n, d, f"{tag}/loss", f"{name}: loss", c)
        cf = derive(f"{tag}/flops", "6*N*D", "FLOP", SRC_6ND, label=f"{name}: training FLOPs", N=n, D=d)
        nopt = derive(f"{tag}/params_opt", "G*(C/6)**a", "param", SRC_CLOSED,
                      label=f"{name}: N_opt for the same FLOPs", G=g.value, C=cf.value, a=a.value)
        dopt = derive(f"{tag}/tokens_opt", "C/(6*N)", "token", SRC_6ND, label=f"{name}: D_opt for the same FLOPs",
                      C=cf.value, N=nopt.value)
        lopt = loss(nopt.value, dopt.value, f"{tag}/loss_opt", f"{name}: loss at the optimum for the same FLOPs", c)
        figs += [lf, cf, nopt, dopt, lopt]
        rows.append({"params": n, "tokens": d, "loss": lf.value, "flops": cf.value, "params_opt": nopt.value,
                     "tokens_opt": dopt.value, "loss_opt": lopt.value, "label": name})
    best = min(range(len(rows)), key=lambda i: rows[i]["loss"])
    notes = [f"loss law: {c.describe()}",
             "loss in nats/token on the law's own data; differences between runs matter, absolute values "
             "do not transfer across data sets or tokenizers",
             "N counts the parameters each token touches (active parameters for an MoE)"]
    if len(rows) > 1:
        ordered = sorted(rows, key=lambda r: r["loss"])
        notes.insert(0, f"lowest predicted loss: {rows[best]['label']} ({rows[best]['loss']:.4f} nats vs "
                        + ", ".join(f"{r['loss']:.4f} for {r['label']}" for r in ordered[1:]) + ")")
    data = {"law": c.name, "runs": rows, "best": best, "extrapolated": warnings}
    notes.append(_FIT_NOTE)
    return Result(_warned(f"Predicted loss ({c.name} law)", warnings), tuple(figs + [g, a, b]), tuple(notes), data)


def _fmt_count(x: float) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if x >= div:
            return f"{x / div:.4g}{suffix}"
    return f"{x:g}"


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
