"""llmcalc: back-of-envelope calculator for LLM systems.

The public API is re-exported lazily (PEP 562) so that ``import llmcalc`` stays cheap: a name's
module is imported the first time the name is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # specs and catalogue
    "Model": "specs", "Hardware": "specs", "Link": "specs",
    "load_model": "catalogue", "load_hardware": "catalogue", "load_spec": "catalogue",
    "all_models": "catalogue", "all_hardware": "catalogue", "names": "catalogue",
    "model_from_config": "hf_config", "model_from_config_file": "hf_config",
    # results and units
    "Figure": "results", "Result": "results", "derive": "results",
    "parse_quantity": ("units", "parse"), "fmt": "units", "to_pint": "units",
    "LlmcalcError": "errors", "SpecError": "errors", "LayoutError": "errors", "UnknownNameError": "errors",
    # calculators: model size and FLOPs
    "param_breakdown": "params", "count_params": "params",
    "forward_flops": "flops", "chinchilla": "scaling", "training_cost": "train_cost",
    # training memory, communication, step time
    "Layout": "layout", "LoRA": "train_memory", "training_memory": "train_memory",
    "model_state_bytes": "train_memory", "korthikanti_layer_bytes": "activations",
    "comm_ledger": "comms", "training_step": "step",
    # inference and serving
    "Efficiency": "efficiency", "DEFAULT_EFFICIENCY": "efficiency", "ROOFLINE": "efficiency",
    "kv_cache": "kv", "fit": "kv", "weight_bytes": "quant",
    "Deployment": "inference", "latency": "inference", "batch_sweep": "sweeps", "context_sweep": "sweeps",
    "speculative": "spec_decode", "continuous_batching": "batching", "serve": "serving",
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
