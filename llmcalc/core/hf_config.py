"""Hugging Face ``config.json`` (read from disk, never downloaded) -> :class:`Model`.

Each supported ``model_type`` maps the fields its transformers ``*Config`` class defines, with that
class's defaults for optional fields. The structural fields (widths, layer and head counts,
vocabulary, expert counts) are required: a config without them is an error, not a silent default.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .errors import SpecError
from .record import ValidationError
from .specs import Model

Builder = Callable[["_Cfg"], dict]
MAX_FIELD = 2**53
MAX_LAYERS = 1 << 16  # as Model.n_layers


class _Cfg:
    """Field access that reports a missing required field by name."""

    def __init__(self, data: dict, origin: str):
        self.data, self.origin = data, origin

    def req(self, key: str) -> int:
        """A required structural field: a whole number >= 1 (never a bool, a float or a string)."""
        if self.data.get(key) is None:
            raise SpecError(f"{self.origin}: model_type {self.data.get('model_type')!r} needs field {key!r}, "
                            "which is missing")
        v = self.count(key, self.data[key])
        if key in ("num_hidden_layers", "n_layer") and v > MAX_LAYERS:  # lists of layers are built from it
            raise SpecError(f"{self.origin}: field {key!r} is out of range (at most {MAX_LAYERS}), got {v}")
        return v

    def count(self, key: str, v, minimum: int = 1) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise SpecError(f"{self.origin}: field {key!r} expects a whole number >= {minimum}, got {v!r}")
        if v > MAX_FIELD:  # layer lists are built from these before the spec validates them
            raise SpecError(f"{self.origin}: field {key!r} is out of range (at most 2**53), got {v!r}")
        return v

    def get(self, key: str, default=None):
        v = self.data.get(key)
        return default if v is None else v

    def get_count(self, key: str, default, minimum: int = 1):
        """An optional whole-number field (checked here because it feeds arithmetic before validation)."""
        v = self.data.get(key)
        return default if v is None else self.count(key, v, minimum)


def _sliding(c: _Cfg, n_layers: int, default_window=None, *, enabled: bool = True) -> dict:
    """sliding_window / sliding_layers from ``layer_types`` (newer configs) or the type's convention."""
    window = c.get("sliding_window", default_window) if enabled else None
    types = c.get("layer_types")
    if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
        raise SpecError(f"{c.origin}: field 'layer_types' expects a list of strings, got {types!r}")
    if types and window:
        layers = [i for i, t in enumerate(types) if t == "sliding_attention"]
        if not layers:
            return {}
        return {"sliding_window": window, "sliding_layers": "all" if len(layers) == n_layers else layers}
    return {"sliding_window": window} if window else {}


def _decoder(c: _Cfg, *, tie_default: bool, qkv_bias: bool | None = None, max_pos_default: int = 2048) -> dict:
    """The fields every Llama-like decoder shares."""
    d, heads = c.req("hidden_size"), c.req("num_attention_heads")
    attn_bias = c.get("attention_bias", False)
    return {
        "d_model": d,
        "n_layers": c.req("num_hidden_layers"),
        "vocab_size": c.req("vocab_size"),
        "max_seq_len": c.get("max_position_embeddings", max_pos_default),
        "tie_embeddings": c.get("tie_word_embeddings", tie_default),
        "position": "rope",
        "attention": {
            "n_heads": heads,
            "n_kv_heads": c.get("num_key_value_heads", heads),
            "head_dim": c.get_count("head_dim", d // heads),
            "qkv_bias": attn_bias if qkv_bias is None else qkv_bias,
            "o_bias": attn_bias if qkv_bias is None else False,
        },
        "mlp": {"d_ff": c.req("intermediate_size"), "gated": True, "activation": c.get("hidden_act", "silu"),
                "bias": c.get("mlp_bias", False)},
        "norm": {"kind": "rmsnorm", "per_layer": 2, "final": True},
    }


def _llama(c: _Cfg) -> dict:
    return _decoder(c, tie_default=False)


def _mistral(c: _Cfg) -> dict:
    m = _decoder(c, tie_default=False, max_pos_default=4096 * 32)
    m["attention"].update(_sliding(c, m["n_layers"], 4096))
    return m


def _mixtral(c: _Cfg) -> dict:
    m = _decoder(c, tie_default=False, max_pos_default=4096 * 32)
    m["attention"].update(_sliding(c, m["n_layers"]))
    m["moe"] = {"n_experts": c.req("num_local_experts"), "top_k": c.req("num_experts_per_tok"),
                "d_ff_expert": c.req("intermediate_size")}
    return m


def _qwen2(c: _Cfg) -> dict:
    m = _decoder(c, tie_default=False, qkv_bias=True, max_pos_default=32768)
    m["attention"].update(_sliding(c, m["n_layers"], enabled=c.get("use_sliding_window", False)))
    if m["attention"].get("sliding_window") and "sliding_layers" not in m["attention"]:
        first = c.get_count("max_window_layers", 28, minimum=0)  # HF Qwen2: layers from max_window_layers on slide
        m["attention"]["sliding_layers"] = list(range(first, m["n_layers"]))
    return m


def _qwen3(c: _Cfg) -> dict:
    m = _decoder(c, tie_default=False, max_pos_default=32768)
    m["attention"]["qk_norm"] = True
    m["attention"].update(_sliding(c, m["n_layers"], enabled=c.get("use_sliding_window", False)))
    return m


def _qwen3_moe(c: _Cfg) -> dict:
    m = _qwen3(c)
    n, step = m["n_layers"], c.get_count("decoder_sparse_step", 1)
    only = c.get("mlp_only_layers", [])
    if not isinstance(only, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only):
        raise SpecError(f"{c.origin}: field 'mlp_only_layers' expects a list of layer indices, got {only!r}")
    only_dense = set(only)
    experts = c.req("num_experts")
    dense = [i for i in range(n) if i in only_dense or not (experts > 0 and (i + 1) % step == 0)]
    m["moe"] = {"n_experts": experts, "top_k": c.req("num_experts_per_tok"),
                "d_ff_expert": c.req("moe_intermediate_size"), "dense_layers": dense}
    return m


def _gemma2(c: _Cfg) -> dict:
    m = _decoder(c, tie_default=True, max_pos_default=8192)
    m["attention"]["head_dim"] = c.get("head_dim", 256)  # Gemma2Config default; not d_model / heads
    sl = _sliding(c, m["n_layers"], 4096)
    if sl and "layer_types" not in c.data:
        sl["sliding_layers"] = "alternate"
    m["attention"].update(sl)
    m["mlp"]["activation"] = c.get("hidden_activation", c.get("hidden_act", "gelu_pytorch_tanh"))
    m["norm"]["per_layer"] = 4  # input, post-attention, pre-feedforward, post-feedforward
    return m


def _phi3(c: _Cfg) -> dict:
    m = _decoder(c, tie_default=False, max_pos_default=4096)
    m["attention"].update(_sliding(c, m["n_layers"]))
    return m


def _deepseek_v3(c: _Cfg) -> dict:
    m = _decoder(c, tie_default=False, max_pos_default=4096)
    a = m["attention"]
    a["head_dim"] = c.req("qk_nope_head_dim") + c.req("qk_rope_head_dim")
    a["n_kv_heads"] = a["n_heads"]  # MLA: every head has its own k and v after the up-projection
    a["mla"] = {"q_lora_rank": c.get("q_lora_rank"), "kv_lora_rank": c.req("kv_lora_rank"),
                "qk_nope_head_dim": c.req("qk_nope_head_dim"), "qk_rope_head_dim": c.req("qk_rope_head_dim"),
                "v_head_dim": c.req("v_head_dim")}
    m["moe"] = {"n_experts": c.req("n_routed_experts"), "top_k": c.req("num_experts_per_tok"),
                "d_ff_expert": c.req("moe_intermediate_size"), "n_shared_experts": c.get("n_shared_experts", 0),
                "dense_layers": list(range(min(c.get_count("first_k_dense_replace", 0, minimum=0), m["n_layers"])))}
    return m


def _gpt2(c: _Cfg) -> dict:
    d, heads = c.req("n_embd"), c.req("n_head")
    return {
        "d_model": d,
        "n_layers": c.req("n_layer"),
        "vocab_size": c.req("vocab_size"),
        "max_seq_len": c.req("n_positions"),
        "tie_embeddings": c.get("tie_word_embeddings", True),
        "position": "learned",
        "attention": {"n_heads": heads, "n_kv_heads": heads, "head_dim": d // heads, "qkv_bias": True,
                      "o_bias": True},
        "mlp": {"d_ff": c.get_count("n_inner", 4 * d), "gated": False,
                "activation": c.get("activation_function", "gelu_new"), "bias": True},
        "norm": {"kind": "layernorm", "per_layer": 2, "final": True},
    }


BUILDERS: dict[str, Builder] = {
    "llama": _llama, "mistral": _mistral, "mixtral": _mixtral, "qwen2": _qwen2, "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe, "gemma2": _gemma2, "phi3": _phi3, "gpt2": _gpt2, "deepseek_v3": _deepseek_v3,
}


def model_from_config(data: dict, name: str, origin: str = "<config.json>") -> Model:
    mt = data.get("model_type")
    if mt is None:
        raise SpecError(f"{origin}: no 'model_type' field; is this a Hugging Face config.json?")
    if not isinstance(mt, str) or mt not in BUILDERS:
        raise SpecError(f"{origin}: model_type {mt!r} is not supported; supported: {', '.join(sorted(BUILDERS))}")
    fields = BUILDERS[mt](_Cfg(data, origin))
    fields.update(name=name.lower(), display_name=name, hf_model_type=mt,
                  sources={"*": f"Hugging Face config.json ({origin}), read with transformers' {mt} defaults"})
    try:
        return Model.model_validate(fields)
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg'].removeprefix('Value error, ')}"
                         for x in e.errors())
        raise SpecError(f"{origin}: {msgs}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose keys are distinct (RFC 8259 §4: names SHOULD be unique; json keeps the last one
    silently, so `"hidden_size"` given twice would pick one quietly); as the YAML loader refuses a duplicate."""
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate key {dup!r}")
    return out


def config_object(text: str, origin: str) -> dict:
    """A config.json's text as its JSON object (no NaN/Infinity, no key given twice), or one SpecError."""
    try:
        data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise SpecError(f"{origin}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise SpecError(f"{origin}: invalid JSON: nested too deeply") from None
    except ValueError as e:  # NaN / Infinity, which JSON does not allow; a duplicate key
        raise SpecError(f"{origin}: invalid JSON: {e}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a JSON object")
    return data


def model_from_config_file(path: str | Path) -> Model:
    from .textfile import read_spec_text

    path = Path(path)
    data = config_object(read_spec_text(path), str(path))
    name = path.parent.name if path.name == "config.json" and path.parent.name else path.stem
    return model_from_config(data, name, str(path))
