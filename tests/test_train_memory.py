"""Training memory per GPU: model states with ZeRO, placement over TP/PP/EP, LoRA/QLoRA, the verdict."""

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.model.params import param_breakdown
from llmcalc.training.layout import Layout
from llmcalc.training.memory import OPTIMIZERS, LoRA, lora_params, model_state_bytes, training_memory

H100 = load_hardware("h100-sxm")
LLAMA8 = load_model("llama-3.1-8b")


@pytest.mark.parametrize("zero, published_gb", [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_figure_1(zero, published_gb):
    # Rajbhandari et al. 2020 (ZeRO) Figure 1: Ψ = 7.5B, Nd = 64, K = 12, GB = 1e9; printed to 0.1 GB
    got = model_state_bytes(7.5e9, dp=64, zero=zero).value("memory/model_states") / 1e9
    assert got == pytest.approx(published_gb, abs=0.05)


def test_zero_stage_2_uses_14_psi_over_nd():
    # ZeRO Fig. 1 prints 16.6 GB = 2Ψ + 14Ψ/Nd; the prose's 2Ψ + 12Ψ/Nd would give 16.4 GB
    got = model_state_bytes(7.5e9, dp=64, zero=2).value("memory/model_states")
    assert got == pytest.approx(2 * 7.5e9 + 14 * 7.5e9 / 64, rel=1e-12)


@pytest.mark.parametrize("name, total", [
    ("adam", 16),  # ZeRO §3.1: 2 + 2 + 12
    ("adam-fp32-grads", 18),  # Megatron-LM distributed optimizer guide: bf16 params, fp32 grads
    ("adam-no-master", 10),  # jax-ml/scaling-book training chapter
    ("adam-8bit", 10),  # Dettmers et al. 2022: m and v in 8 bits (8 B -> 2 B), fp32 master kept
])
def test_bytes_per_parameter_conventions(name, total):
    assert OPTIMIZERS[name].total == total


def test_zero_shards_over_the_dp_group_not_all_gpus():
    # ZeRO §5: partitions across the Nd data-parallel ranks. With tp=8, dp=8 a GPU holds 1/(8·8) of the states.
    m = load_model("llama-3.1-70b")
    b = param_breakdown(m).data["breakdown"]
    r = training_memory(m, H100, Layout(tp=8, dp=8, zero=3), seq=4096)
    # per TP rank: everything /8 except the norms, which Megatron keeps whole on every TP rank; then /8 over DP
    per_tp_rank = (sum(b.values()) - b["norms"]) / 8 + b["norms"]
    assert r.data["first_stage"]["weights_bytes"] == pytest.approx(2 * per_tp_rank / 8, rel=1e-12)
    assert r.data["first_stage"]["optimizer_bytes"] == pytest.approx(12 * per_tp_rank / 8, rel=1e-12)


def test_experts_sharded_by_ep_and_zero_over_expert_dp():
    m = load_model("mixtral-8x7b")
    b = param_breakdown(m).data["breakdown"]
    experts, dense = b["moe/experts"], sum(v for k, v in b.items() if k != "moe/experts")
    r = training_memory(m, H100, Layout(dp=8, ep=4, zero=1), seq=4096)
    st = r.data["first_stage"]
    assert st["weights_bytes"] == pytest.approx(2 * (dense + experts / 4), rel=1e-12)
    # optimizer: dense over dp = 8 ranks; experts over ep (4) then the expert-DP group of 8/4 = 2 ranks
    assert st["optimizer_bytes"] == pytest.approx(12 * (dense / 8 + experts / 4 / 2), rel=1e-12)


def test_pipeline_places_embedding_first_and_head_last():
    b = param_breakdown(LLAMA8).data["breakdown"]
    layers = sum(v for k, v in b.items() if k not in ("embedding", "lm_head"))
    r = training_memory(LLAMA8, H100, Layout(pp=4), seq=2048)
    assert r.value("params/first_stage_dense") == pytest.approx(layers / 4 + b["embedding"], rel=1e-12)
    assert r.value("params/last_stage_dense") == pytest.approx(layers / 4 + b["lm_head"], rel=1e-12)
    # a tied embedding (GPT-2) is held by both ends when pp > 1 (Megatron-LM)
    g = load_model("gpt2")
    gb = param_breakdown(g).data["breakdown"]
    rg = training_memory(g, H100, Layout(pp=2), seq=1024)
    assert rg.value("params/last_stage_dense") > gb["embedding"]


def test_first_stage_is_worst_under_1f1b():
    # Narayanan et al. 2021 §2.2: the first stage of 1F1B keeps p micro-batches in flight
    r = training_memory(load_model("llama-3.1-70b"), H100, Layout(tp=8, pp=8, dp=2, sp=True, zero=1), seq=4096,
                        recompute="selective", global_batch=256)
    assert r.data["worst_stage"] == "first"
    assert r.value("memory/total") == r.data["first_stage"]["total_bytes"]


def test_verdict():
    r = training_memory(load_model("gpt-3-175b"), H100, Layout(), seq=2048)
    assert r.data["fits"] is False and r.title.startswith("DOES NOT FIT")  # 18 B × 175e9 alone is 3.2 TB
    r = training_memory(LLAMA8, H100, Layout(), seq=2048, lora=LoRA(16, ("q", "v"), 4))
    assert r.data["fits"] is True


def test_lora_parameter_counts():
    # Hu et al. 2021 (LoRA) §7.1: |Θ| = 2 × L̂ × d_model × r; GPT-3 175B, Wq and Wv at r = 4 -> 18.9M (the "18M" budget)
    gpt3 = load_model("gpt-3-175b")
    assert lora_params(gpt3, LoRA(4, ("q", "v"))).value == 2 * (2 * 96) * 12288 * 4
    # Llama-3-8B (GQA): q_proj 4096->4096, v_proj 4096->1024 (HF config) -> 16·(8192 + 5120)·32 = 6,815,744,
    # the count peft's print_trainable_parameters reports for r=16 on q_proj, v_proj
    assert lora_params(LLAMA8, LoRA(16, ("q", "v"))).value == 6_815_744


def test_qlora_base_bytes():
    """Dettmers et al. 2023 (QLoRA) §3: NF4 (4 bits) in blocks of 64, double quantization of the constants
    (8-bit constants per 64 weights + one fp32 per 256 constants) = 4 + 8/64 + 32/(64·256) = 4.127 bits per
    quantised parameter. Only the block Linear layers are quantised; embedding and lm_head stay 16-bit (2 B)
    (bitsandbytes/transformers keep lm_head and nn.Embedding unconverted), and so do the norms.
    Llama-3.1-8B shapes from its HF config.json: D 4096, 32 layers, 32 heads of 128, 8 KV heads, F 14336,
    V 128256, untied."""
    D, layers, H, G, K, F, V = 4096, 32, 32, 8, 128, 14336, 128256
    linears = layers * (D * H * K + 2 * D * G * K + H * K * D + 3 * D * F)  # q, k, v, o; gate, up, down
    norms = layers * 2 * D + D  # two RMSNorms per block + the final one
    nf4_bits = 4 + 8 / 64 + 32 / (64 * 256)
    adapters = 16 * 32 * ((D + H * K) + (D + G * K))  # r·(d_in + d_out) for q_proj and v_proj, per layer
    expected = linears * nf4_bits / 8 + 2 * (2 * V * D) + 2 * norms + 2 * adapters
    r = training_memory(LLAMA8, H100, Layout(), seq=2048, lora=LoRA(16, ("q", "v"), 4), optimizer="adam")
    assert r.data["first_stage"]["weights_bytes"] == pytest.approx(expected, rel=1e-12)
    assert r.data["first_stage"]["grads_bytes"] == 2 * adapters
    # ≈ 5.7 GB: 3.6 GB of NF4 block linears plus the 2.1 GB bf16 embedding + head
    assert 5.5e9 < expected < 6.0e9


def test_sweep_matches_scalar_calls():
    tp = np.array([1, 2, 4, 3])
    rec = np.array([[0], [1], [2]])
    r = training_memory(LLAMA8, H100, Layout(tp=tp, dp=2, zero=1), seq=4096, recompute=rec, global_batch=16)
    assert r.data["valid"].shape == (3, 4) and not r.data["valid"][:, 3].any()
    for i, name in enumerate(["none", "selective", "full"]):
        s = training_memory(LLAMA8, H100, Layout(tp=2, dp=2, zero=1), seq=4096, recompute=name, global_batch=16)
        assert r.data["total_bytes"][i, 1] == pytest.approx(s.data["total_bytes"], rel=1e-12)


def test_cli_memory_json():
    r = CliRunner().invoke(app, ["memory", "llama-3.1-8b", "--tp", "2", "--zero", "1", "--dp", "4", "--json"])
    assert r.exit_code == 0, r.output
    import json

    d = json.loads(r.output)
    assert {"total_bytes", "fits", "memory_bytes", "first_stage", "last_stage", "worst_stage"} <= set(d)
    r = CliRunner().invoke(app, ["memory", "llama-3.1-8b", "--optimizer", "lion"])
    assert r.exit_code == 2 and "--optimizer expects one of" in r.output


def test_zero3_gathered_layer_buffer():
    """PyTorch FSDP (Zhao et al. 2023 §3.3-3.4): the unit in use plus the prefetched next one are held
    unsharded (2 layers of bf16 weights), and one layer's unsharded bf16 gradients until its reduce-scatter.
    Llama-3.1-8B block from its config: q,o 4096x4096, k,v 4096x1024, gate/up/down 4096x14336, 2 RMSNorms."""
    D, F, GK = 4096, 14336, 8 * 128
    block = 2 * D * D + 2 * D * GK + 3 * D * F + 2 * D
    r = training_memory(LLAMA8, H100, Layout(dp=8, zero=3), seq=2048, optimizer="adam")  # FSDP: bf16 grads
    assert r.value("memory/zero3_gathered") == pytest.approx((2 * 2 + 2) * block, rel=1e-4)  # + final norm / 32
    st = r.data["first_stage"]
    assert st["total_bytes"] == pytest.approx(st["weights_bytes"] + st["grads_bytes"] + st["optimizer_bytes"]
                                              + st["activations_bytes"] + (2 * 2 + 2) * block, rel=1e-6)
    # TP splits the gathered layer too; stages 0-2 hold no gathered buffer
    r_tp = training_memory(LLAMA8, H100, Layout(tp=2, dp=4, zero=3), seq=2048, optimizer="adam")
    assert r_tp.value("memory/zero3_gathered") == pytest.approx(r.value("memory/zero3_gathered") / 2, rel=1e-12)
    assert training_memory(LLAMA8, H100, Layout(dp=8, zero=2), seq=2048).value("memory/zero3_gathered") == 0


def test_norms_router_and_mla_down_projections_are_replicated_over_tp():
    """Megatron-Core: norms and the MoE router are not split over TP, and MLA's linear_q_down_proj and
    linear_kv_down_proj are built 'duplicated'. DeepSeek-V3 config: 61 layers, hidden 7168, q_lora_rank 1536,
    kv_lora_rank 512, qk_rope_head_dim 64, 256 routed experts, first 3 layers dense (58 MoE routers 7168x256)."""
    v3 = load_model("deepseek-v3")
    b = param_breakdown(v3).data["breakdown"]
    down = 61 * 7168 * (1536 + 512 + 64)
    router = 58 * 7168 * 256
    replicated = b["norms"] + router + down
    dense = sum(v for k, v in b.items() if k not in ("moe/experts", "embedding", "lm_head"))
    r = training_memory(v3, H100, Layout(tp=8, pp=1, dp=8, ep=8), seq=4096)
    expected = (dense - replicated + b["embedding"] + b["lm_head"]) / 8 + replicated
    assert r.value("params/first_stage_dense") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_zero_over_a_group_of_one_says_nothing_is_sharded(zero):
    """ZeRO partitions states across the N_d data-parallel ranks (Rajbhandari et al. 2020 §5): with N_d = 1 the
    states are those of ZeRO-0 (a user read `memory --tp 8 --zero 3` as sharded); the output says so, and only then."""
    m, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    alone = training_memory(m, hw, Layout(tp=8, zero=zero))
    plain = training_memory(m, hw, Layout(tp=8, zero=0))
    for k in ("weights_bytes", "grads_bytes", "optimizer_bytes"):
        assert alone.data["first_stage"][k] == plain.data["first_stage"][k]
    assert any("group of 1" in n for n in alone.assumptions)
    assert not any("group of 1" in n for n in training_memory(m, hw, Layout(tp=4, dp=2, zero=zero)).assumptions)
    assert not any("group of 1" in n for n in plain.assumptions)
