"""The headline figures of a scenario, shared by the A vs B page and the benchmark.

Each entry is a calculator Result and the keys of its figures worth comparing. A calculator that
rejects the scenario (a layout that does not divide) adds its message to ``errors`` so the other
figures still compare.
"""

from __future__ import annotations

from ..core.errors import LlmcalcError
from ..core.results import Result
from ..model.params import param_breakdown

# which way is better, per figure key (absent: neither, e.g. parameter counts)
LOWER_IS_BETTER = {"memory/total", "time/step", "ttft_s", "tpot_mean_s", "gpus", "usd_per_million_output_tokens"}
HIGHER_IS_BETTER = {"throughput/tokens_per_s", "mfu", "tokens_per_s_per_gpu"}


def _training(model, hardware, scen: dict) -> list[tuple[Result, tuple[str, ...]]]:
    from ..training.layout import Layout
    from ..training.memory import training_memory
    from ..training.step import training_step

    layout = Layout(tp=int(scen["tp"]), pp=int(scen["pp"]), dp=int(scen["dp"]), ep=int(scen["ep"]),
                    cp=int(scen["cp"]), sp=bool(scen["sp"]), zero=int(scen["zero"]))
    kw = dict(micro_batch=int(scen["mbs"]), seq=int(scen["seq"]), recompute=scen["recompute"],
              global_batch=int(scen["gbs"]))
    return [(training_memory(model, hardware, layout, **kw), ("memory/total",)),
            (training_step(model, hardware, layout, dtype=scen["dtype"], **kw),
             ("time/step", "throughput/tokens_per_s", "mfu"))]


def _inference(model, hardware, scen: dict) -> list[tuple[Result, tuple[str, ...]]]:
    from ..inference import latency as inf
    from .state import activations

    dep = inf.Deployment(model, hardware, tp=int(scen["tp"]), weights=scen["dtype"], kv_dtype=scen["kv_dtype"],
                         activations=activations(scen))
    r = inf.latency(dep, batch=int(scen["batch"]), prompt=int(scen["prompt"]), output=int(scen["gen"]))
    return [(r, ("ttft_s", "tpot_mean_s", "tokens_per_s_per_gpu"))]


def _serving(model, hardware, scen: dict) -> list[tuple[Result, tuple[str, ...]]]:
    from ..inference.serving import serve
    from .state import activations

    r = serve(model, hardware, prompt=int(scen["prompt"]), output=int(scen["gen"]), ttft_s=float(scen["ttft_slo"]),
              tpot_s=float(scen["tpot_slo"]), qps=float(scen["rate"]), weights=scen["dtype"],
              kv_dtype=scen["kv_dtype"], activations=activations(scen),
              price_usd_per_hour=float(scen["price"]) or None)
    return [(r, ("gpus", "usd_per_million_output_tokens"))]


def results(model, hardware, scen: dict) -> tuple[list[tuple[Result, tuple[str, ...]]], list[str]]:
    out = [(param_breakdown(model), ("total", "active"))]
    errors = []
    for part, name in ((_training, "training"), (_inference, "inference"), (_serving, "serving")):
        try:
            out += part(model, hardware, scen)
        except LlmcalcError as e:
            errors.append(f"{name}: {e}")
    return out, errors
