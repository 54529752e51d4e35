"""config.json import: which layers slide, which layers are MoE, and field defaults, checked against
transformers' own config classes (the independent reference) where they expose the answer."""

import pytest

from llmcalc.core.errors import SpecError
from llmcalc.core.hf_config import model_from_config


def _hf_layer_types(mt: str, **kw) -> list[str]:
    transformers = pytest.importorskip("transformers")
    return list(transformers.AutoConfig.for_model(mt, **kw).layer_types)


BASE = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        "vocab_size": 100}


@pytest.mark.reference
@pytest.mark.parametrize("mt, kw", [
    ("gemma2", {"num_hidden_layers": 6}),  # alternating local/global, layer 0 local
    ("qwen2", {"num_hidden_layers": 6, "use_sliding_window": True, "max_window_layers": 4, "sliding_window": 128}),
    ("qwen2", {"num_hidden_layers": 4, "use_sliding_window": False, "sliding_window": 128}),
])
def test_sliding_layers_match_transformers(mt, kw):
    m = model_from_config({"model_type": mt, **BASE, **kw}, "t")
    expected = _hf_layer_types(mt, **BASE, **kw)
    assert [("sliding_attention" if m.is_sliding(i) else "full_attention") for i in range(m.n_layers)] == expected


def test_gemma2_layer_types_field_wins():
    types = ["full_attention", "sliding_attention", "full_attention"]
    m = model_from_config({"model_type": "gemma2", **BASE, "num_hidden_layers": 3, "layer_types": types,
                           "sliding_window": 512}, "t")
    assert [m.is_sliding(i) for i in range(3)] == [False, True, False]
    assert m.attention.sliding_window == 512


def test_mistral_window_applies_to_all_layers():
    # Mistral-7B-v0.1 config: sliding_window 4096 (Jiang et al. 2023 §2); v0.3 sets it to null.
    m = model_from_config({"model_type": "mistral", **BASE, "num_hidden_layers": 2, "sliding_window": 4096}, "t")
    assert m.n_sliding_layers == 2 and m.attention.sliding_window == 4096
    m = model_from_config({"model_type": "mistral", **BASE, "num_hidden_layers": 2, "sliding_window": None}, "t")
    assert m.n_sliding_layers == 2  # MistralConfig's default window (4096) applies when the field is null


def test_deepseek_dense_first_layers_and_mla():
    # DeepSeek-V3 config: first_k_dense_replace 3 -> layers 0-2 dense (HF DeepseekV3DecoderLayer).
    cfg = {"model_type": "deepseek_v3", **BASE, "num_hidden_layers": 5, "first_k_dense_replace": 3,
           "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "n_shared_experts": 1,
           "kv_lora_rank": 16, "q_lora_rank": None, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8}
    m = model_from_config(cfg, "t")
    assert m.moe.dense_layers == [0, 1, 2] and m.n_moe_layers == 2
    assert m.attention.mla.q_lora_rank is None and m.attention.qk_dim == 12 and m.attention.v_dim == 8


def test_qwen3_moe_sparse_step_and_mlp_only_layers():
    # HF Qwen3MoeDecoderLayer: MoE when layer not in mlp_only_layers and (layer + 1) % decoder_sparse_step == 0.
    cfg = {"model_type": "qwen3_moe", **BASE, "num_hidden_layers": 6, "num_experts": 4, "num_experts_per_tok": 2,
           "moe_intermediate_size": 16, "decoder_sparse_step": 2, "mlp_only_layers": [3]}
    m = model_from_config(cfg, "t")
    assert m.moe.dense_layers == [0, 2, 3, 4]


def test_mixtral_top_k_cannot_exceed_experts():
    cfg = {"model_type": "mixtral", **BASE, "num_hidden_layers": 2, "num_local_experts": 2, "num_experts_per_tok": 3}
    with pytest.raises(SpecError, match="top_k"):
        model_from_config(cfg, "t")


def test_missing_model_type():
    with pytest.raises(SpecError, match="model_type"):
        model_from_config(dict(BASE), "t")
