"""Activation memory: Korthikanti et al. 2022's closed forms, and the per-tensor path that generalises them.

Expected numbers: Korthikanti et al. 2022 (arXiv 2205.05198) §4-5 and Table 2, for GPT-3
(a = 96, s = 2048, h = 12288, t = 8, b = 1): 5as/h = 80, selective recomputation saves 70%; the
per-layer values are the paper's formulas evaluated on those inputs (published-cases derived_check,
printed in GiB to 3-4 significant digits).
"""

import pytest

from llmcalc.core.catalogue import load_model
from llmcalc.training.activations import korthikanti_layer_bytes, layer_activation_bytes, stage_activation_bytes
from llmcalc.training.layout import Layout

S, B, H, A, T = 2048, 1, 12288, 96, 8
GIB = 2**30
GPT3 = load_model("gpt-3-175b")  # a = 96, h = 12288, 4h GELU MLP: the block Korthikanti's constants assume


@pytest.mark.parametrize("kw, gib, tol", [
    ({}, 2.672, 5e-4),  # eq. 1
    ({"t": T}, 0.539, 5e-4),  # eq. 2
    ({"t": T, "sp": True}, 0.334, 5e-4),  # eq. 4
    ({"t": T, "sp": True, "recompute": "selective"}, 0.0996, 5e-5),  # eq. 6 / Table 2
])
def test_korthikanti_per_layer_values(kw, gib, tol):
    assert korthikanti_layer_bytes(S, B, H, A, **kw).value / GIB == pytest.approx(gib, abs=tol)


def test_korthikanti_sec5_numbers():
    none = korthikanti_layer_bytes(S, B, H, A).value
    sel = korthikanti_layer_bytes(S, B, H, A, recompute="selective").value
    assert none / (S * B * H) - 34 == 80  # "5as/h = 80"
    assert 1 - sel / none == pytest.approx(0.70, abs=0.005)  # "we can save 70%"
    assert korthikanti_layer_bytes(S, B, H, A, recompute="full").value == 2 * S * B * H  # Table 2: 2sbh


@pytest.mark.parametrize("tp, sp, rc, kw", [
    (1, False, 0, {}),
    (8, False, 0, {"t": 8}),
    (8, True, 0, {"t": 8, "sp": True}),
    (8, False, 1, {"t": 8, "recompute": "selective"}),
    (8, True, 1, {"t": 8, "sp": True, "recompute": "selective"}),
])
def test_tensor_by_tensor_path_reproduces_korthikanti_for_gpt3_blocks(tp, sp, rc, kw):
    # The per-tensor list (explicit softmax, dropout masks, GELU MLP) must sum to the paper's equations.
    got = layer_activation_bytes(GPT3, B, S, tp=tp, sp=sp, recompute=rc, flash=False, dropout=True).value
    assert got == korthikanti_layer_bytes(S, B, H, A, **kw).value


def test_flash_attention_drops_the_score_matrices():
    # FlashAttention (Dao et al. 2022 §3.1) keeps O and the fp32 log-sum-exp (4 bytes × a·s·b), not softmax/dropout
    with_scores = layer_activation_bytes(GPT3, B, S, flash=False, dropout=True).value
    flash = layer_activation_bytes(GPT3, B, S, flash=True, dropout=True).value
    assert with_scores - flash == 5 * A * S * S * B - 4 * A * S * B


def test_swiglu_gqa_rmsnorm_block_counted_per_tensor():
    # Llama-3.1-8B (D 4096, H 32, G 8, K 128, F 14336), bf16, no dropout, FlashAttention. Per tensor (× s·b):
    # 2 norm inputs 2·2D, QKV and up-proj inputs 2·2D, Q 2D, K and V 2·2·G·K, O-proj input 2D,
    # fused SwiGLU gate+up 2·2F and down input 2F, fp32 log-sum-exp 4H.
    D, G, K, F, Hh = 4096, 8, 128, 14336, 32
    per_token = 4 * D + 4 * D + 2 * D + 4 * G * K + 2 * D + 6 * F + 4 * Hh
    got = layer_activation_bytes(load_model("llama-3.1-8b"), 1, 8192).value
    assert got == per_token * 8192
    # and with TP 8 + SP every tensor is sharded 8 ways (Korthikanti §4.2.2)
    assert layer_activation_bytes(load_model("llama-3.1-8b"), 1, 8192, tp=8, sp=True).value == per_token * 1024


def test_pipeline_stage_in_flight_microbatches():
    m = load_model("llama-3.1-8b")
    per_layer = layer_activation_bytes(m, 1, 4096).value
    # 1F1B: first stage keeps p micro-batches of its L/p layers = L layers' worth (Narayanan et al. 2021 §2.2)
    first = stage_activation_bytes(m, Layout(pp=4), 1, 4096, microbatches=16)["first"].value
    assert first == pytest.approx(32 * per_layer, rel=1e-12)
    # fewer micro-batches than stages: only m are ever in flight
    assert stage_activation_bytes(m, Layout(pp=4), 1, 4096, microbatches=2)["first"].value == pytest.approx(
        2 * 8 * per_layer, rel=1e-12)
    # interleaved with v chunks: × (1 + (p−1)/(p·v)) (Korthikanti et al. 2022 §4.2.3)
    inter = stage_activation_bytes(m, Layout(pp=4, interleave=2), 1, 4096, microbatches=16)["first"].value
    assert inter == pytest.approx(32 * per_layer * (1 + 3 / 8), rel=1e-12)


@pytest.mark.parametrize("p, v", [(4, 1), (4, 2), (2, 4), (8, 4)])
def test_interleaved_last_stage_holds_its_warm_up_chunks(p, v):
    """Megatron-LM schedules.py (forward_backward_pipelining_with_interleaving): rank r warms up
    (p − r − 1)·2 + (v − 1)·p chunks before its first backward, so the last rank (r = p − 1) holds
    (v − 1)·p + 1 chunks of L/(p·v) layers at its peak (Narayanan et al. 2021 §2.2.2). Llama-3.1-8B: L = 32."""
    m = load_model("llama-3.1-8b")
    per_layer = layer_activation_bytes(m, 1, 4096).value
    logits_and_norm = 4 * 4096 * 128256 + 2 * 4096 * 4096  # fp32 logits 4·s·b·V (Korthikanti §4.3) + final norm in
    last = stage_activation_bytes(m, Layout(pp=p, interleave=v), 1, 4096, microbatches=16)["last"].value
    chunks = (v - 1) * p + 1
    assert last == pytest.approx(chunks * 32 / (p * v) * per_layer + logits_and_norm, rel=1e-12)
    if v == 1:  # plain 1F1B warm-up is p − r − 1 (checked above); the interleaved count below needs v > 1
        return
    # the first rank warms up (p − 1)·2 + (v − 1)·p chunks, +1 in flight: Korthikanti's L·(1 + (p−1)/(p·v))
    first = stage_activation_bytes(m, Layout(pp=p, interleave=v), 1, 4096, microbatches=16)["first"].value
    assert first == pytest.approx(((p - 1) * 2 + (v - 1) * p + 1) * 32 / (p * v) * per_layer, rel=1e-12)


def test_full_recompute_keeps_layer_inputs_plus_one_working_set():
    m = load_model("llama-3.1-8b")
    st = stage_activation_bytes(m, Layout(pp=2), 1, 4096, recompute=2, microbatches=8)
    per_layer = layer_activation_bytes(m, 1, 4096).value
    assert st["first"].value == pytest.approx(32 * 2 * 4096 * 4096 + per_layer, rel=1e-12)  # 2sbh per layer
    # last stage: its L/p layers for one micro-batch + fp32 logits 4·s·b·v/t (Korthikanti §4.3) + final norm input
    assert st["last"].value == pytest.approx(16 * 2 * 4096 * 4096 + per_layer + 4 * 4096 * 128256
                                             + 2 * 4096 * 4096, rel=1e-12)


def test_tensor_table_lists_what_the_layer_total_sums():
    from llmcalc.training.activations import tensor_table

    m = load_model("llama-3.1-8b")
    rows = tensor_table(m, 2, 4096, tp=4, sp=True)
    assert sum(r["bytes"] for r in rows) == layer_activation_bytes(m, 2, 4096, tp=4, sp=True).value
    assert {"attn/q", "attn/k", "attn/v", "mlp/gate_up", "mlp/down_in"} <= {r["key"] for r in rows}
