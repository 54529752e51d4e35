"""forward_flops against an independent reference: PyTorch's FlopCounterMode on the HF implementations.

Each model is built by ``transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")``
under ``torch.device("meta")`` (no weights are allocated, no download), run on meta ``input_ids``, and
``torch.utils.flop_counter.FlopCounterMode`` counts 2 FLOPs per multiply-add of every mm/bmm/addmm. Our
count must match it exactly, for shrunken configs of each supported dense model type and for
Llama-3.1-8B at full size.

MoE models (mixtral, qwen3_moe, deepseek_v3 MoE layers) are NOT checked here: HF's eager MoE loops over
the experts that the router actually picked (``expert_mask.nonzero()`` / ``torch.where`` on the routing
result), which is data-dependent control flow that meta tensors (no values) cannot run. Their FLOPs are
checked against hand-derived formulas in tests/test_flops.py instead. DeepSeek-V3's MLA attention is
checked here with every layer dense (first_k_dense_replace = n_layers), which avoids the routed MLP.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from llmcalc.core.hf_config import model_from_config, model_from_config_file  # noqa: E402
from llmcalc.model.flops import forward_flops  # noqa: E402

pytestmark = pytest.mark.reference

CONFIGS = Path(__file__).parent / "data" / "configs"

# Small widths keep the meta-device build fast; heads, kv heads and head_dim stay distinct so that a
# formula mixing them up cannot pass by accident.
_SMALL = {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
          "head_dim": 48, "intermediate_size": 352, "vocab_size": 1000}


def _small(name: str, **over) -> dict:
    cfg = json.loads((CONFIGS / name / "config.json").read_text())
    cfg.update(_SMALL)
    cfg.update(over)
    return cfg


SHRUNKEN = {
    "llama": _small("llama-3.1-8b"),
    "mistral": _small("mistral-7b", sliding_window=8),  # window < seq: masked, still counted in full
    "qwen2": _small("qwen2.5-7b", attention_bias=True),
    "qwen3": _small("qwen2.5-7b", model_type="qwen3", architectures=["Qwen3ForCausalLM"]),
    "gemma2": _small("gemma-2-9b", num_hidden_layers=4, sliding_window=8, head_dim=64),
    "phi3": _small("phi-3-mini", num_key_value_heads=8, sliding_window=8, pad_token_id=0),  # default pad 32000
    "gpt2": {**json.loads((CONFIGS / "gpt2" / "config.json").read_text()), "n_embd": 192, "n_layer": 2,
             "n_head": 6, "vocab_size": 1000, "n_positions": 64},
    "deepseek_v3_mla_no_q_lora": _small("deepseek-v3", num_hidden_layers=2, first_k_dense_replace=2,
                                        num_key_value_heads=8, q_lora_rank=None, kv_lora_rank=64,
                                        qk_nope_head_dim=32, qk_rope_head_dim=16, head_dim=16, v_head_dim=24,
                                        n_group=1, topk_group=1),
    "deepseek_v3_mla_dense": _small("deepseek-v3", num_hidden_layers=2, first_k_dense_replace=2,
                                    num_key_value_heads=8, q_lora_rank=96, kv_lora_rank=64, qk_nope_head_dim=32,
                                    qk_rope_head_dim=16, head_dim=16, v_head_dim=24,  # HF: head_dim = rope width
                                    moe_intermediate_size=64,
                                    n_routed_experts=4, num_experts_per_tok=2, n_group=1, topk_group=1),
}


def _hf_flops(cfg: dict, batch: int, seq: int, past: int = 0) -> int:
    """FlopCounterMode's total for one forward of ``seq`` new tokens after ``past`` cached ones."""
    config = transformers.AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "architectures"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
            model.eval()
            cache = None
            if past:
                out = model(input_ids=torch.zeros(batch, past, dtype=torch.long), use_cache=True)
                cache = out.past_key_values
            ids = torch.zeros(batch, seq, dtype=torch.long)
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                # use_cache=True even without a past: with no cache and no mask, HF probes position_ids for packed
                # sequences with .item(), which meta tensors cannot answer. A fresh cache changes no matmul.
                model(input_ids=ids, past_key_values=cache, use_cache=True)
    return counter.get_total_flops()


@pytest.mark.parametrize("kind", sorted(SHRUNKEN))
def test_shrunken_config_matches_flop_counter(kind):
    cfg = SHRUNKEN[kind]
    ours = forward_flops(model_from_config(cfg, kind), batch=2, seq=16).data["forward_flops"]
    assert ours == _hf_flops(cfg, batch=2, seq=16)


@pytest.mark.parametrize("kind", ["llama", "mistral", "gemma2", "phi3", "deepseek_v3_mla_dense"])
@pytest.mark.parametrize("seq, past", [(1, 16), (4, 12)])
def test_with_kv_cache_matches_flop_counter(kind, seq, past):
    """Decode (1 new token after 16 cached) and chunked prefill (4 after 12): kv_len = past + seq. This
    exercises the sliding-window cache (W = 8 < past) and MLA's per-step up-projection of the latent cache."""
    cfg = SHRUNKEN[kind]
    ours = forward_flops(model_from_config(cfg, kind), batch=3, seq=seq, kv_len=past + seq).data["forward_flops"]
    assert ours == _hf_flops(cfg, batch=3, seq=seq, past=past)


def test_llama_3_1_8b_full_size_matches_flop_counter():
    path = CONFIGS / "llama-3.1-8b" / "config.json"
    ours = forward_flops(model_from_config_file(path), batch=1, seq=8).data["forward_flops"]
    assert ours == _hf_flops(json.loads(path.read_text()), batch=1, seq=8)
