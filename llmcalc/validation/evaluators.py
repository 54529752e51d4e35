"""Evaluators: each turns a case's ``inputs`` into our number by calling the calculators.

An evaluator is a function ``inputs -> float`` registered under a name; a case names its evaluator. To add
a case, add a YAML entry under ``cases/``; to add a kind of case, add an evaluator here. Every evaluator
calls a calculator: a row that only does arithmetic on the source's numbers is not a validation row.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from ..core.errors import LlmcalcError

CASES_DIR = Path(__file__).resolve().parent / "cases"
EVALUATORS: dict[str, Callable[[dict], float]] = {}


def evaluator(name: str):
    def register(fn):
        EVALUATORS[name] = fn
        return fn

    return register


# ---------------------------------------------------------------- specs named by a case


@lru_cache(maxsize=64)
def _catalogue_model(name: str):
    from ..core.catalogue import load_model

    local = CASES_DIR / "models" / f"{name}.yaml"  # models only the cases use (e.g. GPT-J-6B)
    return load_model(str(local) if local.is_file() else name)


def model(spec):
    """A catalogue name, a case-local model, or {gpt: [layers, hidden, heads], vocab, seq} / {base, overrides}."""
    if isinstance(spec, str):
        return _catalogue_model(spec)
    if "gpt" in spec:
        return gpt_block(*spec["gpt"], vocab=spec.get("vocab", 51200), seq=spec.get("seq", 2048))
    from ..core.specs import Model

    d = _catalogue_model(spec["base"]).model_dump()
    for k, v in spec.get("overrides", {}).items():
        d[k] = v
    return Model.model_validate(d)


def gpt_block(layers: int, hidden: int, heads: int, vocab: int = 51200, seq: int = 2048):
    """A GPT-3-style model (4h GELU MLP, LayerNorm, learned positions, tied embeddings) with these sizes, the
    architecture of the Megatron-LM papers' models (Narayanan et al. 2021 Table 1; Korthikanti et al. 2022
    Table 3)."""
    from ..core.specs import Model

    d = _catalogue_model("gpt-3-175b").model_dump()
    d.update(name=f"gpt-{layers}x{hidden}", display_name=f"GPT {layers}L×{hidden}", n_layers=layers,
             d_model=hidden, vocab_size=vocab, max_seq_len=seq, sources={"architecture": "published case inputs"})
    d["attention"].update(n_heads=heads, n_kv_heads=heads, head_dim=hidden // heads)
    d["mlp"].update(d_ff=4 * hidden)
    return Model.model_validate(d)


@lru_cache(maxsize=32)
def hardware(name: str):
    """A catalogue name, or an accelerator only the cases use (cases/hardware/NAME.yaml, e.g. H20, H800)."""
    from ..core.catalogue import load_hardware

    local = CASES_DIR / "hardware" / f"{name}.yaml"
    return load_hardware(str(local) if local.is_file() else name)


# ---------------------------------------------------------------- evaluators


@evaluator("params")
def params(i: dict) -> float:
    """Parameter count: part = total | active | non_embedding."""
    from ..model.params import param_breakdown

    p = param_breakdown(model(i["model"])).data
    part = i.get("part", "total")
    if part == "non_embedding":
        return p["total"] - p["breakdown"]["embedding"]
    return p[part]


@evaluator("training_cost")
def training_cost(i: dict) -> float:
    """A figure of llmcalc.training.cost.training_cost (model_flops, days, mfu_achieved, ...)."""
    from ..training.cost import training_cost as cost

    kw = {k: i[k] for k in ("params", "mfu", "achieved_flops_per_s", "flops_per_token_factor", "step_time_s",
                            "batch_tokens", "recompute", "dtype") if k in i}
    r = cost(model(i["model"]) if "model" in i else None, i["tokens"], hardware(i.get("hardware", "h100-sxm")),
             i.get("gpus", 1024), **kw)
    return r.value(i["figure"])


@evaluator("chinchilla")
def chinchilla(i: dict) -> float:
    """A data key of llmcalc.model.scaling.chinchilla for --params or --flops under a law."""
    from ..model.scaling import chinchilla as ch

    r = ch(model(i["model"]) if "model" in i else None, params=i.get("params"), flops=i.get("flops"),
           law=i.get("law"))
    return r.data[i["key"]]


@evaluator("model_states")
def model_states(i: dict) -> float:
    from ..training.memory import model_state_bytes

    kw = {k: i[k] for k in ("dp", "zero", "optimizer") if k in i}
    return model_state_bytes(i["params"], **kw).data["model_states_bytes"]


@evaluator("activations_layer")
def activations_layer(i: dict) -> float:
    from ..training.activations import korthikanti_layer_bytes

    return korthikanti_layer_bytes(i["seq"], i["micro_batch"], i["hidden"], i["heads"], t=i.get("tp", 1),
                                   sp=i.get("sp", False), recompute=i.get("recompute", "none")).value


@evaluator("kv_cache")
def kv_cache(i: dict) -> float:
    from ..inference.kv import kv_cache as kv

    return kv(model(i["model"]), i.get("context", 1), i.get("batch", 1), i.get("kv_dtype", "bf16")).data[i["key"]]


@evaluator("kv_reduction")
def kv_reduction(i: dict) -> float:
    """1 − (ours per token × bits_ours/16) / (baseline per token × bits_baseline/16), both from kv_cache in bf16."""
    from ..inference.kv import kv_cache as kv

    ours = kv(model(i["model"]), 1).data["bytes_per_token"] * i["bits"] / 16
    base = kv(model(i["baseline"]), 1).data["bytes_per_token"] * i["baseline_bits"] / 16
    return 1 - ours / base


@evaluator("latency")
def latency(i: dict) -> float:
    """A data key of llmcalc.inference.latency.latency (ttft_s, tpot_mean_s, ...)."""
    from ..core.efficiency import DEFAULT_EFFICIENCY, ROOFLINE
    from ..inference.latency import Deployment
    from ..inference.latency import latency as lat

    eff = ROOFLINE if i.get("efficiency") == "roofline" else DEFAULT_EFFICIENCY
    dep = Deployment(model(i["model"]), hardware(i["hardware"]), i.get("tp", 1), i.get("weights", "bf16"), None,
                     i.get("kv_dtype", "bf16"), i.get("activations", "bf16"), eff,
                     cuda_graphs=i.get("cuda_graphs", True))
    return lat(dep, i.get("batch", 1), i["prompt"], i.get("output", 1)).data[i["key"]]


@evaluator("max_throughput")
def max_throughput(i: dict) -> float:
    """Offline maximum output tokens/s of one replica: continuous batching in steady state at the KV-cache cap
    (the most sequences the memory holds), λ = N/T(N) × output tokens (llmcalc.inference.batching)."""
    from ..core.efficiency import DEFAULT_EFFICIENCY
    from ..inference.batching import curve, kv_cap
    from ..inference.latency import Deployment

    dep = Deployment(model(i["model"]), hardware(i["hardware"]), i.get("tp", 1), i.get("weights", "bf16"), None,
                     i.get("kv_dtype", "bf16"), i.get("activations", "bf16"), DEFAULT_EFFICIENCY)
    cap = kv_cap(dep, i["prompt"], i["output"], i.get("reserve", 0.1))
    if cap < 1:
        raise LlmcalcError("no room for one sequence's KV cache")
    return float(curve(dep, i["prompt"], i["output"], float(cap))["qps"]) * i["output"]


def _rl(i: dict, over: dict | None = None):
    from ..rl.lengths import lognormal
    from ..rl.step import rl_step

    kw = dict(i["rl"], **(over or {}))
    mean, cv, cap = kw.pop("response")
    if "settings" in kw:  # recipe inputs that live in RLSettings, e.g. NeMo-RL's packed micro-batch tokens
        from dataclasses import fields, replace

        from ..rl.phases import DEFAULT_SETTINGS
        unknown = set(kw["settings"]) - {f.name for f in fields(DEFAULT_SETTINGS)}
        if unknown:
            raise LlmcalcError(f"unknown RL settings in a case: {', '.join(sorted(unknown))}")
        kw["settings"] = replace(DEFAULT_SETTINGS, **kw["settings"])
    return rl_step(model(i["model"]), hardware(i["hardware"]), response=lognormal(mean, cv, cap), **kw).data


def _path(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d


@evaluator("rl_step")
def rl_step(i: dict) -> float:
    """A data path of llmcalc.rl.step.rl_step (e.g. regimes.fully_async.step_s); with ``divide_by`` (overrides of
    the rl inputs) the ratio of the two runs, e.g. a sync/async speed-up."""
    v = _path(_rl(i), i["key"])
    if "divide_by" in i:
        v = v / _path(_rl(i, i["divide_by"]), i["key"])
    return v


@evaluator("weight_sync")
def weight_sync(i: dict) -> float:
    """Seconds of one trainer -> inference weight broadcast (llmcalc.rl.phases.weight_sync, total row); ``owners``:
    ranks holding an equal share of the checkpoint (buckets never span two of them), None for one stream."""
    from ..rl.phases import RLSettings
    from ..rl.phases import weight_sync as ws

    s = RLSettings(bucket_bytes=i["bucket_gib"] * 2**30)
    return ws(model(i.get("model", "qwen2.5-7b")), hardware(i["hardware"]), colocated=False, trainer_gpus=0,
              rollout_gpus=i["gpus"], settings=s, size_bytes=i["size_bytes"], owners=i.get("owners"))[-1].value


def narayanan_eq3_flops(B, s, layers, h, V):
    """Narayanan et al. 2021 eq. 3: F = 96·B·s·l·h²(1 + s/6h + V/16lh), FLOPs per iteration with recompute."""
    return 96 * B * s * layers * h**2 * (1 + s / (6 * h) + V / (16 * layers * h))


@evaluator("training_step")
def training_step(i: dict) -> float:
    """A data key of llmcalc.training.step.training_step with the published layout and the defaults (no
    per-case efficiency). key 'eq3_tflops_per_gpu' converts our step time into Narayanan et al. 2021's
    reported unit: their eq. 3 FLOPs / (GPUs × our step time)."""
    from ..training.layout import Layout
    from ..training.step import training_step as step

    m = model(i["model"])
    lay = Layout(**i["layout"])
    kw = {k: i[k] for k in ("micro_batch", "recompute", "dtype", "causal", "attention", "tp_comm_overlap", "optimizer",
                            "overlap_grad_reduce", "overlap_param_gather", "zero3_prefetch", "latency_scale",
                            "reserve")
          if k in i}
    r = step(m, hardware(i["hardware"]), lay, global_batch=i["global_batch"], seq=i.get("seq", 2048),
             gpus=lay.gpus, **kw)
    if not r.data["fits"]:  # a published run fitted; our memory model saying otherwise is a failed row
        raise LlmcalcError(f"the published layout does not fit in our memory model: {r.title}")
    key = i["key"]
    if key == "eq3_tflops_per_gpu":
        L, h, _ = i["model"]["gpt"]
        f = narayanan_eq3_flops(i["global_batch"], i.get("seq", 2048), L, h, i["model"].get("vocab", 51200))
        return f / (lay.gpus * r.data["step_time_s"]) / 1e12
    if key == "model_tflops_per_gpu":
        return r.data["model_flops"] / (lay.gpus * r.data["step_time_s"]) / 1e12
    return r.data[key]


def evaluate(name: str, inputs: dict) -> float:
    if name not in EVALUATORS:
        raise LlmcalcError(f"unknown evaluator {name!r}; known: {', '.join(sorted(EVALUATORS))}")
    return float(EVALUATORS[name](inputs))


@evaluator("collective")
def collective(i: dict) -> float:
    """A figure of one collective from llmcalc.network.collectives.collective_time: key 'busbw_GBps' (nccl-tests
    bus bandwidth), 'time_us', or 'bus_factor' (bytes per rank / S). Optional: algorithms (restrict the candidates),
    ranks_per_node."""
    from ..network.collectives import collective_time

    kw = {k: i[k] for k in ("ranks_per_node", "link_efficiency", "latency_scale") if k in i}
    if "algorithms" in i:
        kw["algorithms"] = tuple(i["algorithms"])
    t = collective_time(hardware(i["hardware"]), i["collective"], float(i["bytes"]), i["ranks"], **kw)
    key = i["key"]
    if key == "busbw_GBps":
        return t.bus_bandwidth_bytes_per_s / 1e9
    if key == "time_us":
        return t.time_s * 1e6
    if key == "bus_factor":
        return t.bytes_per_rank / float(i["bytes"])
    raise LlmcalcError(f"collective evaluator: unknown key {key!r}")


@evaluator("tp_allreduce")
def tp_allreduce(i: dict) -> float:
    """One TP all-reduce of a serving engine (µs): inference.latency.Deployment.tp_allreduce with ``allreduce``
    nccl or custom (vLLM/TensorRT-LLM one-shot kernel) and ``cuda_graphs`` as measured."""
    from ..core.efficiency import DEFAULT_EFFICIENCY
    from ..inference.latency import Deployment

    dep = Deployment(model(i.get("model", "llama-3.1-8b")), hardware(i["hardware"]), i["tp"], eff=DEFAULT_EFFICIENCY,
                     allreduce=i.get("allreduce", "nccl"), cuda_graphs=bool(i.get("cuda_graphs", True)))
    return float(dep.tp_allreduce(float(i["bytes"])).time_s) * 1e6
