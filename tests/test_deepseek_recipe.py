"""DeepSeek-V3's training memory recipe and FP8 conventions (arXiv 2412.19437), each checked by hand from the
published shapes (config.json: d_model 7168, 128 heads, q_lora 1536, kv_lora 512, rope 64, nope 128, v 128,
256 routed experts of 2048 with top-8, one shared expert of 2048, 3 dense layers of d_ff 18432, 61 layers).

- §3.2.3: RMSNorm outputs and MLA up-projections are recomputed in backward, not stored;
- §3.3.2: Linear inputs cached in FP8 (1 byte), the attention output in E5M6 (12 bits), the SwiGLU inputs in FP8
  and its output recomputed;
- §3.3.3: AdamW moments in BF16, master weights and gradients in FP32 (2 + 4 + 4 + 2 + 2 = 14 B/param)."""

from __future__ import annotations

import pytest

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.training.activations import layer_activation_bytes
from llmcalc.training.layout import Layout
from llmcalc.training.memory import optimizer_bytes
from llmcalc.training.step import training_step

M = load_model("deepseek-v3")
L, D, H = 4096, 7168, 128


def test_per_layer_bytes_under_the_recipe():
    norms = 2 * (2 * L * D)  # the two norm inputs (residual stream), bf16: kept to recompute the norms
    latents = L * 1536 + L * (512 + 64)  # q and kv latents, FP8 (inputs of the up-projections)
    lse = 4 * H * L  # FlashAttention's fp32 log-sum-exp
    o_in = 1.5 * L * H * 128  # attention output in E5M6
    moe = 4 * L * 256 + 8 * L * D + 2 * 8 * L * 2048 + 2 * L * 2048  # router fp32, dispatched FP8, SwiGLU inputs FP8
    dense = 2 * L * 18432  # the dense layers' SwiGLU inputs, FP8
    per_moe, per_dense = norms + latents + lse + o_in + moe, norms + latents + lse + o_in + dense
    want = (3 * per_dense + 58 * per_moe) / 61
    got = layer_activation_bytes(M, 1, L, recompute_norm_up=True, fp8_activations=True).value
    assert got == pytest.approx(want, rel=1e-12)
    assert per_moe == pytest.approx(618.9e6, rel=1e-3)  # vs 1.85 GB per MoE layer stored in bf16 without it


def test_bf16_moments_optimizer_is_14_bytes():
    o = optimizer_bytes("adam-bf16-moments")
    assert (o.weights, o.grads, o.states) == (2, 4, 8)


def test_mla_up_projection_recompute_adds_its_forward_flops():
    hw = load_hardware("h100-sxm")
    kw = dict(global_batch=16, seq=L, gpus=16)
    lay = Layout(pp=16, pp_layers=(3, *[4] * 14, 2))
    a = training_step(M, hw, lay, **kw).data["hardware_flops"]
    b = training_step(M, hw, lay, recompute_norm_up=True, **kw).data["hardware_flops"]
    up = 1536 * H * (128 + 64) + 512 * H * (128 + 128)  # W_UQ (with rope part) and W_UK, W_UV
    assert b - a == pytest.approx(16 * L * 61 * 2 * up, rel=1e-9)


def test_expert_parameters_sit_on_the_stages_of_their_moe_layers():
    # DeepSeek-V3 on PP16 as 3, 4x14, 2 (the report's layout): the first stage holds the three dense layers and
    # no experts; a middle stage 4 MoE layers x 256/64 = 4 experts each of 3·7168·2048 = 44,040,192 parameters.
    from llmcalc.training.memory import stage_params

    sp = stage_params(M, Layout(pp=16, ep=64, dp=128, pp_layers=(3, *[4] * 14, 2)))
    expert = 3 * 7168 * 2048
    assert sp["experts_first"].value == 0
    assert sp["experts_middle"].value == pytest.approx(4 * 4 * expert, rel=1e-12)
    assert sp["experts_last"].value == pytest.approx(2 * 4 * expert, rel=1e-12)
