"""What-if architectures without a config file: a Model from a few flags, or a catalogue model with overrides.

``adhoc_model(None, {"d_model": 4096, "n_layers": 32, ...})`` builds a Llama-style decoder (RMSNorm, gated
MLP, RoPE, untied embeddings unless told otherwise); ``adhoc_model(base, sets=["num_kv_heads=1"])`` changes
one field of a catalogue model. Either way the result is validated exactly like a YAML file (the same
pydantic model, the same YAML context, the same error wording), with the flags named as the origin.

Keys for ``--set`` may be a dotted field path (``attention.n_kv_heads``), a field name that occurs once in
the schema (``n_kv_heads``, ``sliding_window``) or the Hugging Face config.json name
(``num_key_value_heads``, ``num_kv_heads``, ``intermediate_size``, …).
"""

from __future__ import annotations

import copy

from .errors import SpecError, close_matches
from .record import ValidationError
from .specs import Model

# Flag name (CLI) -> field path in the Model schema.
FLAG_FIELDS = {
    "d_model": "d_model", "layers": "n_layers", "heads": "attention.n_heads", "kv_heads": "attention.n_kv_heads",
    "head_dim": "attention.head_dim", "ffn": "mlp.d_ff", "vocab": "vocab_size", "experts": "moe.n_experts",
    "top_k": "moe.top_k", "expert_ffn": "moe.d_ff_expert", "max_seq": "max_seq_len",
}
REQUIRED_FLAGS = ("d_model", "layers", "heads", "ffn", "vocab")

# Hugging Face config.json names (transformers' LlamaConfig / MixtralConfig / DeepseekV3Config) -> our paths.
HF_ALIASES = {
    "hidden_size": "d_model", "num_hidden_layers": "n_layers", "num_attention_heads": "attention.n_heads",
    "num_key_value_heads": "attention.n_kv_heads", "num_kv_heads": "attention.n_kv_heads",
    "head_dim": "attention.head_dim", "intermediate_size": "mlp.d_ff", "vocab_size": "vocab_size",
    "max_position_embeddings": "max_seq_len", "tie_word_embeddings": "tie_embeddings",
    "sliding_window": "attention.sliding_window", "num_local_experts": "moe.n_experts",
    "n_routed_experts": "moe.n_experts", "num_experts_per_tok": "moe.top_k",
    "moe_intermediate_size": "moe.d_ff_expert", "kv_lora_rank": "attention.mla.kv_lora_rank",
    "q_lora_rank": "attention.mla.q_lora_rank", "qk_rope_head_dim": "attention.mla.qk_rope_head_dim",
    "qk_nope_head_dim": "attention.mla.qk_nope_head_dim", "v_head_dim": "attention.v_head_dim",
}


def _paths(cls=Model, prefix: str = "") -> list[str]:
    """Every settable field path of the schema (nested specs expanded)."""
    out = []
    for name, info in cls.model_fields.items():
        if name in ("sources", "notes", "name", "display_name"):
            continue
        nested = [c for c in getattr(info.annotation, "__args__", (info.annotation,)) if hasattr(c, "model_fields")]
        if nested:
            out += _paths(nested[0], f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def resolve_key(key: str) -> str:
    """The field path ``key`` names (dotted path, unique leaf name or HF alias); else a SpecError with hints."""
    paths = _paths()
    if key in paths:
        return key
    if key in HF_ALIASES:
        return HF_ALIASES[key]
    leaf = [p for p in paths if p.rsplit(".", 1)[-1] == key]
    if len(leaf) == 1:
        return leaf[0]
    if len(leaf) > 1:
        raise SpecError(f"--set {key}: ambiguous, write one of {', '.join(leaf)}")
    hint = close_matches(key, paths + list(HF_ALIASES))
    raise SpecError(f"--set {key}: unknown model field" + (f"; did you mean {', '.join(hint)}?" if hint else
                                                          "; `llmcalc show MODEL` lists the fields"))


def _put(data: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    node = data
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}  # e.g. moe.* on a dense model: the validator then names what else moe needs
        node = node[p]
    node[leaf] = value


def parse_set(item: str) -> tuple[str, object]:
    """'num_kv_heads=1' -> ('attention.n_kv_heads', 1); the value is read as YAML (1, true, null, [0, 2])."""
    import yaml

    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set expects key=value (e.g. --set num_kv_heads=1), got {item!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise SpecError(f"--set {item}: cannot read {text!r} as a value") from None
    return resolve_key(key.strip()), value


def adhoc_model(base: Model | None, flags: dict | None = None, sets: list[str] | tuple[str, ...] = ()) -> Model:
    """A Model from ``flags`` (keys of FLAG_FIELDS) and ``--set`` overrides, on ``base`` or from scratch."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    if base is None:
        missing = [k for k in REQUIRED_FLAGS if k not in flags]
        if missing:
            raise SpecError("an ad-hoc model needs " + ", ".join("--" + k.replace("_", "-") for k in REQUIRED_FLAGS)
                            + f" (missing: {', '.join('--' + k.replace('_', '-') for k in missing)}), or a MODEL "
                            "name to override")
        d, h = flags["d_model"], flags["heads"]
        if "head_dim" not in flags and isinstance(d, int) and isinstance(h, int) and h > 0 and d % h:
            raise SpecError(f"--heads {h} does not divide --d-model {d}, so the head width is not d_model/heads; "
                            "give --head-dim")
        data: dict = {"name": "ad-hoc", "display_name": "", "d_model": d, "n_layers": flags["layers"],
                      "vocab_size": flags["vocab"], "max_seq_len": 131072, "tie_embeddings": False,
                      "attention": {"n_heads": h, "n_kv_heads": h, "head_dim": d // h if h and d % h == 0 else 0},
                      "mlp": {"d_ff": flags["ffn"], "gated": True}, "norm": {"kind": "rmsnorm"},
                      "sources": {"architecture": "ad-hoc model from command-line flags (Llama-style decoder: "
                                                  "RMSNorm, SwiGLU MLP, RoPE, untied embeddings)"}}
        if "experts" in flags or "top_k" in flags:
            data["moe"] = {"d_ff_expert": flags["ffn"]}
    else:
        data = copy.deepcopy(base.model_dump(mode="json", exclude_none=True))
    changes = []
    for k, v in flags.items():
        _put(data, FLAG_FIELDS[k], v)
        changes.append(f"{FLAG_FIELDS[k].rsplit('.', 1)[-1]}={v}")
    for item in sets:
        path, value = parse_set(item)
        _put(data, path, value)
        changes.append(f"{path.rsplit('.', 1)[-1]}={value}")
    if base is None:
        a = data["attention"]
        data["display_name"] = (f"ad-hoc D{data['d_model']} L{data['n_layers']} H{a['n_heads']}/{a['n_kv_heads']} "
                                f"F{data['mlp']['d_ff']}" + (f" E{data['moe'].get('n_experts')}"
                                                             f"k{data['moe'].get('top_k')}" if "moe" in data else ""))
    else:
        data["name"] = f"{base.name}+custom"
        data["display_name"] = f"{base.display_name} ({', '.join(changes)})"
    origin = "ad-hoc model flags" if base is None else f"{base.display_name} with " + ", ".join(
        f"--set {s}" for s in sets) if sets else f"{base.display_name} with flags"
    return validate_model(data, origin)


def validate_model(data: dict, origin: str) -> Model:
    """Validate like a YAML file (bare numbers read in YAML context) and explain failures the same way."""
    from .catalogue import _explain_validation

    try:
        return Model.model_validate(data, context={"yaml": True})
    except ValidationError as e:
        raise _explain_validation(e, Model, origin, None) from None
