"""Step time, MFU and HFU against published training runs.

- Korthikanti et al. 2022 (arXiv 2205.05198), Table 3 (175B: 96 layers, h 12288, 96 heads, TP 8, PP 8,
  64 A100s, global batch 64, micro-batch 1, seq 2048, vocab 51200, interleaved m = 3) and Table 5
  (13.75 s with SP + selective recompute, 18.13 s with full recompute, MFU 51.4%, HFU 52.8%);
  App. A eq. 7 model FLOPs 72·B·L·s·h²(1 + s/6h + V/12hL). Tolerance from the case: eq. 7 / time
  reproduces 51.4% to the printed digit; a predicted time is as good as the efficiency guess (±15%).
- Narayanan et al. 2021 (arXiv 2104.04473), Table 1 (1T: 128 layers, h 25600, 160 heads, TP 8, PP 64,
  3072 GPUs, batch 3072, 163 TFLOP/s per GPU = 52% of peak, counted with eq. 3 which includes
  recompute) and §2.2 (bubble (p−1)/m, interleaved (p−1)/(v·m)).
The compute efficiency 0.62 of the A100 peak (the default) is our stated assumption, the same for every case; it was
calibrated on the 175B SP + selective row (13.75 s), so that row is in-sample and the others are the test.
"""

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.specs import Model
from llmcalc.training.layout import Layout
from llmcalc.training.step import mfu_from_time, training_step

A100 = load_hardware("a100-sxm-80gb")
EFF = 0.62  # a flat efficiency (--compute-efficiency) fitted on the 175B row; shipped defaults: test_efficiency.py


def gpt(layers, hidden, heads, vocab=51200):
    d = load_model("gpt-3-175b").model_dump()
    d.update(n_layers=layers, d_model=hidden, vocab_size=vocab)
    d["attention"].update(n_heads=heads, n_kv_heads=heads, head_dim=hidden // heads)
    d["mlp"].update(d_ff=4 * hidden)
    return Model.model_validate(d)


GPT175 = gpt(96, 12288, 96)
K175 = dict(global_batch=64, micro_batch=1, seq=2048, gpus=64)


def eq7(B, s, h, L, V):
    return 72 * B * L * s * h**2 * (1 + s / (6 * h) + V / (12 * h * L))


def test_model_flops_match_korthikanti_eq7():
    r = training_step(GPT175, A100, Layout(tp=8, pp=8, sp=True, interleave=3), recompute="selective", **K175)
    assert r.data["model_flops"] == pytest.approx(eq7(64, 2048, 12288, 96, 51200), rel=1e-12)


def test_mfu_from_the_measured_iteration_time():
    f = mfu_from_time(eq7(64, 2048, 12288, 96, 51200), 13.75, 64, 312e12)
    assert f.value == pytest.approx(0.514, abs=5e-4)


def test_korthikanti_175b_calibration_row_is_in_sample():
    """The default compute efficiency (0.62, llmcalc/core/efficiency.py) was calibrated on THIS row: Korthikanti
    Table 5, 175B with SP + selective recompute, 13.75 s. It only checks that the calibration still holds under
    the current step model (±5%), not that the model predicts anything; the out-of-sample rows follow."""
    r = training_step(GPT175, A100, Layout(tp=8, pp=8, sp=True, interleave=3), recompute="selective",
                      compute_efficiency=EFF, attention="unfused", **K175)  # 2022 Megatron: no FlashAttention
    assert r.data["step_time_s"] == pytest.approx(13.75, rel=0.05)
    # HFU > MFU by the attention re-run; the paper's eq. 8 charges more (52.8% vs 51.4%), we re-run once
    assert r.data["mfu"] < r.data["hfu"] < r.data["mfu"] * 1.028


def test_korthikanti_175b_full_recompute_out_of_sample():
    # Korthikanti Table 5, the OTHER 175B row (full recompute, 18.13 s), not used for calibration: ±15%
    r = training_step(GPT175, A100, Layout(tp=8, pp=8, interleave=3), recompute="full", compute_efficiency=EFF,
                      attention="unfused", **K175)
    assert r.data["step_time_s"] == pytest.approx(18.13, rel=0.15)


def test_narayanan_1t_row():
    """Out of sample (a different paper, model and layout from the calibration row): Narayanan et al. 2021
    Table 1, 1T on 3072 A100s, 163 TFLOP/s = 52% of peak counting recompute (eq. 3): HFU within ±15%."""
    m = gpt(128, 25600, 160)
    r = training_step(m, A100, Layout(tp=8, pp=64, dp=6), global_batch=3072, micro_batch=1, seq=2048, gpus=3072,
                      recompute="full", compute_efficiency=EFF, attention="unfused")
    assert r.data["hfu"] == pytest.approx(0.52, rel=0.15)
    # An independent check of the FLOP counts (not of time): with full recompute hardware/model FLOPs equal
    # Narayanan eq. 3 / Korthikanti eq. 7 (both exclude LM-head recompute)
    eq3 = 96 * 3072 * 2048 * 128 * 25600**2 * (1 + 2048 / (6 * 25600) + 51200 / (16 * 128 * 25600))
    assert r.data["hfu"] / r.data["mfu"] == pytest.approx(eq3 / eq7(3072, 2048, 25600, 128, 51200), rel=1e-12)


def test_pipeline_runs_at_the_pace_of_its_slowest_stage():
    """Llama-3.1-8B, PP 4: the last stage runs 32/4 = 8 layers plus the LM head (Narayanan et al. 2021 §2.2:
    a pipeline advances at the pace of its slowest stage). Shapes from the HF config: D 4096, 32 heads of 128,
    8 KV heads, F 14336, V 128256. Forward FLOPs per sequence of L tokens (2 per multiply-add, attention
    over the full L×L rectangle): layer 2·L·(2D² + 2·D·G·K + 3·D·F) + 2·2·L²·H·K; head 2·L·D·V;
    training = 3 × forward."""
    D, H, G, K, F, V, L = 4096, 32, 8, 128, 14336, 128256, 4096
    layer = 2 * L * (2 * D * D + 2 * D * G * K + 3 * D * F) + 4 * L * L * H * K
    head = 2 * L * D * V
    h100 = load_hardware("h100-sxm")
    r = training_step(load_model("llama-3.1-8b"), h100, Layout(pp=4, dp=2), global_batch=16, seq=L, gpus=8,
                      compute_efficiency=0.5, attention="unfused")  # unfused: the full rectangle is executed
    per_replica = 16 / 2  # sequences through each pipeline
    assert r.data["compute_s"] == pytest.approx(per_replica * 3 * (8 * layer + head) / (989e12 * 0.5), rel=1e-12)


@pytest.mark.parametrize("v, expected", [(1, 7 / 64), (3, 7 / 192)])
def test_pipeline_bubble(v, expected):
    # Narayanan et al. 2021 §2.2: (p−1)/m for 1F1B, (p−1)/(v·m) interleaved; p = 8, m = 64
    r = training_step(GPT175, A100, Layout(tp=8, pp=8, sp=True, interleave=v), recompute="selective", **K175)
    assert r.data["bubble_fraction"] == pytest.approx(expected, rel=1e-12)


def test_sweep_mask_and_agreement_with_scalar_calls():
    m = load_model("llama-3.1-8b")
    h100 = load_hardware("h100-sxm")
    tp = np.array([1, 2, 3, 4])
    r = training_step(m, h100, Layout(tp=tp, dp=8 // np.maximum(tp, 1)), global_batch=64, seq=4096)
    assert r.data["valid"].tolist() == [True, True, False, True]
    s = training_step(m, h100, Layout(tp=4, dp=2), global_batch=64, seq=4096)
    assert r.data["step_time_s"][3] == pytest.approx(s.data["step_time_s"], rel=1e-12)
    assert r.data["mfu"][3] == pytest.approx(s.data["mfu"], rel=1e-12)


def test_cli_step():
    r = CliRunner().invoke(app, ["step", "llama-3.1-70b", "--gpus", "64", "--tp", "8", "--pp", "2", "--sp",
                                 "--seq", "8192", "--global-batch", "128", "--recompute", "selective", "--json"])
    assert r.exit_code == 0, r.output
    import json

    d = json.loads(r.output)
    assert {"step_time_s", "tokens_per_s", "mfu", "hfu", "bubble_fraction", "exposed_comm_s"} <= set(d)
    assert d["gpus"] == 64 and d["microbatches"] == 32  # dp = 64 / (8·2) = 4; 128 / (1·4)
    r = CliRunner().invoke(app, ["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "12"])
    assert r.exit_code == 2 and "--global-batch 12 is not divisible" in r.output


def test_efficiencies_outside_0_1_are_user_errors():
    from llmcalc.core.errors import LlmcalcError

    m, h100 = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    for kw in ({"compute_efficiency": 0.0}, {"compute_efficiency": float("nan")}, {"link_efficiency": 1.5}):
        with pytest.raises(LlmcalcError, match="efficiency"):
            training_step(m, h100, Layout(dp=8), global_batch=8, gpus=8, **kw)
    r = CliRunner().invoke(app, ["step", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8", "--mfu", "0.5"])
    assert r.exit_code == 2  # the misleading --mfu alias is gone: --compute-efficiency is not an MFU


@pytest.mark.parametrize("kw", [
    dict(layout=Layout(tp=8, pp=2, dp=4, zero=1, sp=True), global_batch=64, micro_batch=1, seq=4096,
         recompute="selective"),
    dict(layout=Layout(tp=4, pp=4, dp=2, zero=3), global_batch=32, micro_batch=2, seq=8192, recompute="full",
         recompute_layers=3, optimizer="adam-bf16-moments"),
    dict(layout=Layout(tp=8, pp=1, dp=np.array([1, 2, 4, 8])), global_batch=np.array([8, 16, 32, 64]),
         micro_batch=np.array([8, 4, 2, 1]), seq=2048, recompute="none", offload_optimizer=True, reserve=0.0),
])
def test_step_memory_is_the_steps_own_memory_check(kw):
    """llmcalc.rl asks step_memory before stepping (and steps with check_memory=False where it fits): it must be
    the check training_step makes with the same arguments, byte for byte."""
    from llmcalc.core.catalogue import load_hardware, load_model
    from llmcalc.training.step import step_memory

    m, hw = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    lay = kw.pop("layout")
    st = training_step(m, hw, lay, compute_efficiency=0.5, causal=True, **kw)
    mem = step_memory(m, hw, lay, compute_efficiency=0.5, causal=True, **kw)
    assert np.array_equal(np.asarray(mem.data["fits"]), np.asarray(st.data["fits"]))
    assert np.array_equal(np.asarray(mem.data["total_bytes"]), np.asarray(st.data["memory_bytes_needed"]))
    assert np.array_equal(np.asarray(mem.data["usable_bytes"]), np.asarray(st.data["memory_bytes_usable"]))
