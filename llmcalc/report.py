"""One page per model and accelerator: the headline answers, each figure still carrying its derivation.

Nothing is computed here: the figures are taken from the calculators (params, scaling, train_cost,
inference, serving, kv_cache) and re-keyed by section, so ``--explain`` shows the original formula.
"""

from __future__ import annotations

from .core.results import Figure, Result, relabel
from .core.specs import Hardware, Model

# (section, calculator result key, label) in the order a reader asks the questions.
_PICK = {
    "params": [("total", "total parameters"), ("active", "active parameters per token")],
    "chinchilla": [("size/rule20/tokens", "compute-optimal tokens (20 per parameter)")],
    "train": [("model_flops", "training FLOPs (6·N·D)"), ("days", "wall-clock days"), ("gpu_hours", "GPU-hours"),
              ("cost", "cost")],
    "fit": [("weight_bytes_per_gpu", "weights per GPU"), ("max_batch", "largest batch at prompt + output tokens")],
    "latency": [("ttft_s", "TTFT"), ("tpot_mean_s", "TPOT (mean)"),
                ("tokens_per_s_per_request", "tokens/s per request")],
    "serve": [("tp", "TP per replica"), ("gpus", "GPUs in total"),
              ("usd_per_million_output_tokens", "$ per million output tokens")],
}


def _take(section: str, r: Result) -> list[Figure]:
    out = []
    for key, label in _PICK[section]:
        if key in r.keys():
            out.append(relabel(r[key], key=f"{section}/{key}", label=f"{section}: {label}"))
    return out


def summary(model: Model, hw: Hardware, *, gpus: int = 1024, mfu: float = 0.4, tokens: float | None = None,
            prompt: int = 1000, output: int = 300, users: float = 10_000, context: int | None = None,
            price_usd_per_hour: float | None = None, eff=None) -> Result:
    """Parameters, compute-optimal data, training time and cost, fit, batch-1 latency and a serving plan.
    ``eff``: the inference Efficiency of the latency and serving parts (None: the default)."""
    import numpy as np

    from .core.checks import check_number, check_price
    from .core.errors import LlmcalcError, NoDeploymentError
    from .inference.kv import fit
    from .inference.latency import Deployment, latency
    from .inference.serving import serve
    from .model.params import param_breakdown
    from .model.scaling import chinchilla
    from .training.cost import training_cost

    for opt, v in (("--gpus", gpus), ("--mfu", mfu), ("--tokens", tokens), ("--prompt", prompt),
                   ("--output", output), ("--users", users), ("--context", context), ("--price", price_usd_per_hour)):
        if np.ndim(v):  # one page, one scenario: sweeps go to the calculators themselves
            raise LlmcalcError(f"summary takes one value per input; {opt} got an array of {np.size(v)}")
        (check_price if opt == "--price" else check_number)(v, opt)  # finite (and > 0; a price >= 0)
    ch = chinchilla(model)
    tokens = ch.value("size/rule20/tokens") if tokens is None else tokens
    parts = [("params", param_breakdown(model)), ("chinchilla", ch),
             ("train", training_cost(model, tokens, hw, gpus, mfu=mfu, price_usd_per_hour=price_usd_per_hour))]
    notes = [f"training: {tokens:.3g} tokens on {gpus} x {hw.display_name} at MFU {mfu:g}",
             f"inference: prompt {prompt}, output {output}; serving {users:g} users"]
    if parts[-1][1].data.get("fits") is False:  # as `train` titles it: the days and cost below cannot happen
        notes.insert(0, f"WARNING: training DOES NOT FIT: {parts[-1][1].data['memory_verdict']}; its days and cost "
                        "are hypothetical")
    from .core.efficiency import DEFAULT_EFFICIENCY

    eff = DEFAULT_EFFICIENCY if eff is None else eff
    try:
        sv = serve(model, hw, prompt=prompt, output=output, users=users, price_usd_per_hour=price_usd_per_hour,
                   eff=eff)
    except NoDeploymentError as single_node:  # no TP inside one node serves it: the serving planner spans nodes
        parts.append(("serve", _across_nodes(model, hw, prompt, output, users, price_usd_per_hour, eff, notes,
                                             str(single_node))))
    else:
        tp = sv.data["tp"]
        parts += [("fit", fit(model, hw, tp=tp, context=context or prompt + output)),
                  ("latency", latency(Deployment(model, hw, tp, eff=eff), batch=1, prompt=prompt, output=output,
                                      knee=False)),
                  ("serve", sv)]
        notes.append(f"fit and latency at the TP the serving plan picked ({tp}); batch 1 for latency")
    for name, r in parts:
        notes += [f"{name}: {a}" for a in r.assumptions]
    figures = tuple(f for name, r in parts for f in _take(name, r))
    data = {"model": model.name, "hardware": hw.name, **{f.key: f.value for f in figures}}
    return Result(f"Summary: {model.display_name} on {hw.display_name}", figures, tuple(notes), data)


def _across_nodes(model: Model, hw: Hardware, prompt, output, users, price, eff, notes: list, why: str) -> Result:
    """The serving section when one node cannot hold a replica: `plan-serve`'s cheapest deployment (TP×PP across
    nodes, EP, precision), at serve's default targets; fit and batch-1 latency are left to `plan-serve`."""
    from .core.errors import LlmcalcError
    from .core.results import derive
    from .inference.plan_serve import plan_serve
    from .inference.serving import DEFAULT_TPOT_S, DEFAULT_TTFT_S

    # no scale-out link recorded: plan-serve searches one scale-up domain only (other precisions, TP×PP, EP there)
    where = "across nodes" if hw.scale_out is not None else "within one scale-up domain"
    try:
        ps = plan_serve(model, hw, prompt=prompt, output=output, ttft_s=DEFAULT_TTFT_S, tpot_s=DEFAULT_TPOT_S,
                        users=users, eff=eff, price_usd_per_hour=price)
    except LlmcalcError as e:
        notes.append(f"serving: not possible on {hw.display_name}: {why}; {where}: {e}")
        return Result("serving", (), (), {})
    b = ps.data["ranked"][0]
    if hw.scale_out is not None:
        notes.append(f"serving: one node cannot hold a replica ({why.split(' (')[0]}); the cheapest deployment "
                     f"across nodes from `llmcalc plan-serve` is {b['config']}; fit and batch-1 latency: see "
                     "plan-serve")
    else:
        notes.append(f"serving: no TP-only replica at serve's precision serves it ({why.split(' (')[0]}); the "
                     f"cheapest deployment within one scale-up domain from `llmcalc plan-serve` (other precisions, "
                     f"TP×PP, EP) is {b['config']}; fit and batch-1 latency: see plan-serve")
    figs = [derive("gpus", "g", "GPU", f"llmcalc plan-serve: fewest GPUs meeting TTFT {DEFAULT_TTFT_S:g} s and TPOT "
                   f"{DEFAULT_TPOT_S * 1e3:g} ms",
                   label="GPUs in total", g=b["gpus"])]
    if b["usd_per_million_output"] is not None:
        figs.append(derive("usd_per_million_output_tokens", "x", "USD", "llmcalc plan-serve",
                           label="$ per million output tokens", x=b["usd_per_million_output"]))
    return Result(f"serving {where}", tuple(figs), tuple(ps.assumptions), {"config": b["config"]})
