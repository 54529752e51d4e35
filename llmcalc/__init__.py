"""llmcalc: back-of-envelope calculator for LLM systems.

The public API is re-exported lazily (PEP 562) so that ``import llmcalc`` stays cheap: a name's
module is imported the first time the name is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # specs and catalogue
    "Model": "core.specs", "Hardware": "core.specs", "Link": "core.specs",
    "load_model": "core.catalogue", "load_hardware": "core.catalogue", "load_spec": "core.catalogue",
    "all_models": "core.catalogue", "all_hardware": "core.catalogue", "names": "core.catalogue",
    "model_from_config": "core.hf_config", "model_from_config_file": "core.hf_config",
    # results and units
    "Figure": "core.results", "Result": "core.results", "derive": "core.results",
    "parse_quantity": ("core.units", "parse"), "fmt": "core.units", "to_pint": "core.units",
    "LlmcalcError": "core.errors", "SpecError": "core.errors", "LayoutError": "core.errors",
    "UnknownNameError": "core.errors",
    # calculators: model size and FLOPs
    "param_breakdown": "model.params", "count_params": "model.params",
    "forward_flops": "model.flops", "chinchilla": "model.scaling", "training_cost": "training.cost",
    # training memory, communication, step time
    "Layout": "training.layout", "LoRA": "training.memory", "training_memory": "training.memory",
    "model_state_bytes": "training.memory", "korthikanti_layer_bytes": "training.activations",
    "comm_ledger": "training.comms", "training_step": "training.step",
    # inference and serving
    "Efficiency": "core.efficiency", "DEFAULT_EFFICIENCY": "core.efficiency", "ROOFLINE": "core.efficiency",
    "kv_cache": "inference.kv", "fit": "inference.kv", "weight_bytes": "model.quant",
    "Deployment": "inference.latency", "latency": "inference.latency",
    "batch_sweep": "inference.sweeps", "context_sweep": "inference.sweeps",
    "speculative": "inference.spec_decode", "continuous_batching": "inference.batching", "serve": "inference.serving",
    # RL post-training (sync vs async)
    "rl_step": "rl.step", "RLSettings": "rl.phases",
    # the one-page summary (the CLI's main job)
    "summary": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'llmcalc' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__
