"""KV-cache sizes against published figures (each test cites its source) and PagedAttention's bound."""

import numpy as np
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LayoutError, LlmcalcError
from llmcalc.inference.kv import fit, kv_bytes_per_request_per_gpu, kv_cache, max_context

runner = CliRunner()


def test_llama3_70b_bf16_and_int8_per_token():
    # jax-ml/scaling-book applied-inference: "2 * 8 * 128 * 80 = 160kB" per token at int8 (exact 163,840);
    # bf16 doubles it: 327,680 B. Llama-3.1-70B has Llama-3-70B's attention (80 layers, 8 KV heads, K = 128).
    m = load_model("llama-3.1-70b")
    assert kv_cache(m, 32768).data["bytes_per_token"] == 327_680
    assert kv_cache(m, 32768, kv_dtype="int8").data["bytes_per_token"] == 163_840
    assert kv_cache(m, 32768, kv_dtype="int4").data["bytes_per_token"] == 81_920  # book's table: int4 81 kB


def test_llama3_70b_int8_32k_sequence_is_5_3_gb():
    # scaling-book applied-inference: "162e3 * 32,768 = 5.3GB / sequence" (int8); tolerance 2% for its rounding.
    r = kv_cache(load_model("llama-3.1-70b"), 32768, kv_dtype="int8")
    assert r.data["bytes_per_request"] == pytest.approx(5.3e9, rel=0.02)
    # "For BS=240, this is 1.3TB"
    assert kv_cache(load_model("llama-3.1-70b"), 32768, batch=240, kv_dtype="int8").data["bytes_total"] == \
        pytest.approx(1.3e12, rel=0.02)


def test_deepseek_v3_mla_576_elements_no_factor_two():
    # DeepSeek-V2 report §2.1.2-2.1.3: MLA caches (d_c + d_h^R) = 512 + 64 = 576 elements per token per layer;
    # DeepSeek-V3 config: 61 layers -> 576 * 61 * 2 B = 70,272 B in bf16.
    r = kv_cache(load_model("deepseek-v3"), 4096)
    assert r.data["bytes_per_token_per_layer"] == 576 * 2
    assert r.data["bytes_per_token"] == 70_272


def test_gemma2_9b_local_layers_cap_at_4096():
    # Gemma 2 report (arXiv 2408.00118) Table 1: 42 layers, 8 KV heads, head size 256, sliding window 4096,
    # alternating local/global layers (21 each).
    m = load_model("gemma-2-9b")
    per_layer = 2 * 8 * 256 * 2
    short = kv_cache(m, 4096).data
    assert short["bytes_per_token"] == short["bytes_per_token_uncapped"] == 42 * per_layer  # 336 KiB
    long = kv_cache(m, 8192).data
    assert long["bytes_per_request"] == (21 * 8192 + 21 * 4096) * per_layer
    assert long["bytes_per_token"] == (21 * 8192 + 21 * 4096) * per_layer / 8192
    assert long["bytes_per_token_uncapped"] == 344_064


# Fact sheet (shared/reference/hardware-and-models.md) table B3: bf16 KV per token, full context, all layers.
B3 = {"gpt2": 36 * 1024, "gpt2-xl": 300 * 1024, "gpt-3-175b": 4.5 * 2**20, "llama-2-7b": 512 * 1024,
      "llama-2-13b": 800 * 1024, "llama-2-70b": 320 * 1024, "llama-3.1-8b": 128 * 1024,
      "llama-3.1-405b": 504 * 1024, "mixtral-8x7b": 128 * 1024, "mixtral-8x22b": 224 * 1024,
      "qwen2.5-7b": 56 * 1024, "qwen2.5-72b": 320 * 1024, "gemma-2-9b": 336 * 1024, "gemma-2-27b": 368 * 1024}


@pytest.mark.parametrize("name,expected", sorted(B3.items()))
def test_fact_sheet_b3(name, expected):
    assert kv_cache(load_model(name), 1024).data["bytes_per_token_uncapped"] == expected


def test_tp_splits_kv_heads_then_replicates():
    m = load_model("llama-3.1-70b")  # 8 KV heads
    full = kv_cache(m, 1000).data["bytes_total"]
    assert kv_cache(m, 1000, tp=8).data["bytes_per_gpu"] == full / 8
    r = kv_cache(m, 1000, tp=16)
    assert r.data["kv_heads_per_gpu"] == 1 and r.data["bytes_per_gpu"] == full / 8  # replicated, not /16
    assert any("replicated" in a for a in r.assumptions)
    assert kv_cache(load_model("deepseek-v3"), 1000, tp=8).data["bytes_per_gpu"] == 70_272 * 1000  # MLA whole


def test_pp_splits_layers():
    m = load_model("llama-3.1-70b")
    assert kv_cache(m, 1000, pp=4).data["bytes_per_gpu"] == kv_cache(m, 1000).data["bytes_total"] / 4


def test_bad_tp_names_option_and_value():
    with pytest.raises(LayoutError, match=r"--tp 3 does not divide the 64 attention heads"):
        kv_cache(load_model("llama-3.1-70b"), 1000, tp=3)
    with pytest.raises(LlmcalcError, match="--kv-dtype"):
        kv_cache(load_model("llama-3.1-70b"), 1000, kv_dtype="fp6")


def test_paged_waste_below_one_block():
    # Kwon et al. 2023 (vLLM) §4.3: at most one partially filled block per sequence; block size 16.
    m = load_model("llama-3.1-8b")
    ctx = np.arange(1, 200)
    waste = kv_cache(m, ctx).data["paged_waste_bytes_per_request"]
    per_token = 131_072
    assert np.all(waste < 16 * per_token)
    assert np.array_equal(waste, ((16 - ctx % 16) % 16) * per_token)


def test_context_and_batch_broadcast():
    m = load_model("llama-3.1-8b")
    ctx, b = np.array([1024, 4096]), np.array([[1], [8]])
    out = kv_cache(m, ctx, batch=b).data["bytes_total"]
    assert out.shape == (2, 2) and out[1, 1] == 8 * 4096 * 131_072


def test_fit_llama70b_int4_on_two_h100():
    # independent arithmetic: H100 reports 81,559 MiB (nvidia-smi); Llama-3.1-70B has 70,553,706,496 parameters of
    # which 2 x 128,256 x 8,192 embedding/LM head (kept at 16 bit); int4 g128 with an fp16 scale and a packed
    # 4-bit zero per group (GPTQ/AWQ checkpoint format) = 4 + 20/128 bits.
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    r = fit(m, h, weights="int4", group_size=128, tp=2, context=8192, reserve=0.1)
    emb = 2 * 128_256 * 8_192
    weights = (70_553_706_496 - emb) * (4 + 20 / 128) / 8 + emb * 2
    # RMSNorm weights (2 per layer x 80 layers + the final one, 8,192 each) are whole on both ranks (vLLM)
    norms = (80 * 2 + 1) * 8_192 * (1 - 1 / 2) * (4 + 20 / 128) / 8
    free = 81_559 * 2**20 * 0.9 - (weights / 2 + norms)
    assert r.data["weight_bytes_per_gpu"] == pytest.approx(weights / 2 + norms, rel=1e-12)
    assert r.data["max_batch"] == int(free // (8192 * 327_680 / 2))
    assert not fit(m, h).data["fits"]  # 141 GB of bf16 weights on one 80 GB GPU


def test_fit_sliding_max_context_inverts_kv():
    m = load_model("gemma-2-9b")
    free = 3e9
    c = int(max_context(m, free, batch=2))
    assert 2 * kv_bytes_per_request_per_gpu(m, c) <= free < 2 * kv_bytes_per_request_per_gpu(m, c + 1)
    assert c > 4096  # past the window only global layers grow


def test_cli_kv_json():
    res = runner.invoke(app, ["kv", "llama-3.1-70b", "--context", "32768", "--json"])
    assert res.exit_code == 0, res.output
    import json

    data = json.loads(res.output)
    assert data["bytes_per_token"] == 327_680 and isinstance(data["bytes_per_request"], int)
    res = runner.invoke(app, ["kv", "llama-3.1-70b", "--context", "10", "--tp", "3"])
    assert res.exit_code == 2 and "--tp 3" in res.output


def test_cli_fit():
    res = runner.invoke(app, ["fit", "llama-3.1-70b", "-H", "h100-sxm", "--weights", "int4", "--group-size", "128",
                              "--tp", "2", "--context", "8192"])
    assert res.exit_code == 0, res.output
    assert "max batch" in res.output


def test_fit_expert_parallel_spreads_routed_experts():
    # DeepSeek-V3 (config_671B.json): 671,026,404,352 parameters; 58 MoE layers x 256 routed experts x 3 x 7168 x 2048;
    # embedding + LM head 2 x 129,280 x 7,168 kept at 16 bit; the rest fp8 (1 B).
    m, h = load_model("deepseek-v3"), load_hardware("h200-sxm")
    emb = 2 * 129_280 * 7_168
    experts = 58 * 256 * 3 * 7168 * 2048
    weights = (671_026_404_352 - emb) + 2 * emb
    r = fit(m, h, weights="fp8", tp=8, ep=4)
    # held whole by every TP rank (vLLM deepseek_v2.py): q_a_proj 7168 x 1536 and kv_a_proj_with_mqa 7168 x (512 + 64)
    # in each of 61 layers, the router 7168 x 256 in 58 MoE layers, RMSNorms (2 x 7168 + 1536 + 512 per layer, + 7168)
    whole = 61 * 7168 * (1536 + 512 + 64) + 58 * 7168 * 256 + 61 * (2 * 7168 + 1536 + 512) + 7168
    assert whole == 1_030_904_832
    replicated = whole * (1 - 1 / 8)  # fp8: 1 B each, beyond the 1/8 share
    assert r.data["weight_bytes_per_gpu"] == pytest.approx((weights - experts) / 8 + experts / 32 + replicated,
                                                           rel=1e-12)
    with pytest.raises(LayoutError, match="--ep 3"):
        fit(m, h, weights="fp8", tp=8, ep=3)


@pytest.mark.parametrize("args,needles", [
    (["fit", "llama-3.1-8b", "--context", "0"], ["--context", "got 0"]),
    (["fit", "llama-3.1-8b", "--context", "-5"], ["--context", "got -5"]),
    (["fit", "llama-3.1-8b", "--batch", "0"], ["--batch", "got 0"]),
    (["fit", "llama-3.1-8b", "--batch", "-1"], ["--batch", "got -1"]),
    (["fit", "llama-3.1-8b", "--reserve", "1"], ["--reserve", "got 1"]),
    (["kv", "llama-3.1-8b", "--context", "0"], ["--context", "got 0"]),
])
def test_fit_and_kv_reject_bad_numbers_in_one_line(args, needles):
    one_line_error(args, *needles)


@pytest.mark.parametrize("tp", [7, 14])
def test_tp_must_divide_or_be_a_multiple_of_the_kv_heads(tp):
    # Qwen2.5-7B: 28 query heads, 4 KV heads (HF config). tp 7 and 14 divide 28 but neither divide 4 nor are
    # multiples of it: Megatron-LM / vLLM require G % tp == 0 or tp % G == 0.
    m = load_model("qwen2.5-7b")
    with pytest.raises(LayoutError, match="4 KV heads"):
        kv_cache(m, 1000, tp=tp)
    one_line_error(["kv", "qwen2.5-7b", "--context", "1000", "--tp", str(tp)], f"--tp {tp}", "4 KV heads")


@pytest.mark.parametrize("tp,heads_per_gpu", [(2, 2), (4, 1), (28, 1)])
def test_tp_splitting_or_replicating_kv_heads_is_accepted(tp, heads_per_gpu):
    assert kv_cache(load_model("qwen2.5-7b"), 1000, tp=tp).data["kv_heads_per_gpu"] == heads_per_gpu


def test_fit_explain_shows_the_group_overhead_and_the_16bit_embeddings():
    # int4 g128: 4 + (16 + 4)/128 bits (GPTQ/AWQ packed zero); Llama-3.1-8B embeddings + LM head 1,050,673,152
    # params at 16 bit, the other 6,979,588,096 at 4.156 bits.
    res = runner.invoke(app, ["fit", "llama-3.1-8b", "--weights", "int4", "--group-size", "128", "--explain"])
    assert res.exit_code == 0
    assert "4+(16+4)/128" in res.output
    assert "(6979588096·4.156+1050673152·16)/8/(1·1)" in res.output
    r = fit(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), weights="int4", group_size=128)
    assert r.data["weight_bytes_per_gpu"] == pytest.approx(6_979_588_096 * (4 + 20 / 128) / 8 + 1_050_673_152 * 2)
