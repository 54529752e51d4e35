"""DualPipe (DeepSeek-V3 report, arXiv 2412.19437, §3.2.1 and Table 2) as a pipeline schedule of `step`/`memory`.

Table 2: bubble 1F1B (PP−1)(F+B), DualPipe (PP/2−1)(F&B+B−3W); parameters 1× vs 2×; activations PP vs PP+1.
With B = 2F and W = F (the backward is twice the forward, its weight half equal to its input half: Qi et al.
2023) and F&B = F + B (the paired chunks overlap communication, not compute), the DualPipe bubble is
(PP/2 − 1)·2F per step against an ideal m·3F: fraction (PP − 2)/(3m)."""

from __future__ import annotations

import pytest

from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LlmcalcError
from llmcalc.training.layout import Layout
from llmcalc.training.memory import training_memory
from llmcalc.training.step import training_step

H = load_hardware("h100-sxm")
DENSE = load_model("llama-3.1-8b")
MOE = load_model("mixtral-8x7b")


@pytest.mark.parametrize("pp,gb", [(2, 16), (4, 16), (8, 64)])
def test_bubble_is_table_2s_formula(pp, gb):
    lay = Layout(pp=pp, dp=8 // pp if pp <= 8 else 1, schedule="dualpipe")
    d = training_step(DENSE, H, lay, global_batch=gb, seq=2048, gpus=lay.gpus).data
    m = gb // lay.dp
    assert d["bubble_fraction"] == pytest.approx((pp - 2) / (3 * m), rel=1e-9)
    one_f1b = training_step(DENSE, H, Layout(pp=pp, dp=lay.dp), global_batch=gb, seq=2048, gpus=lay.gpus).data
    assert one_f1b["bubble_fraction"] == pytest.approx((pp - 1) / m, rel=1e-12)


def test_expert_all_to_all_hides_behind_compute():
    kw = dict(global_batch=64, seq=4096, gpus=64)
    lay = dict(pp=2, dp=32, ep=8)
    a = training_step(MOE, H, Layout(**lay), **kw).data
    b = training_step(MOE, H, Layout(**lay, schedule="dualpipe"), **kw).data
    ep = sum(r["time_s"] for r in a["comm_rows"] if r["parallelism"] == "ep")
    assert ep > 0 and a["exposed_comm_s"] >= ep  # 1F1B: the all-to-all sits on the critical path
    assert b["exposed_comm_s"] < a["exposed_comm_s"] - 0.99 * ep  # DualPipe: hidden behind the paired chunk


def test_two_parameter_copies_and_pp_plus_one_microbatches():
    lay = dict(pp=4, dp=2)
    kw = dict(seq=4096, global_batch=64, micro_batch=1)
    a = training_memory(DENSE, H, Layout(**lay), **kw)
    b = training_memory(DENSE, H, Layout(**lay, schedule="dualpipe"), **kw)
    for part in ("weights", "grads"):
        assert b[f"middle_stage/{part}"].value == pytest.approx(2 * a[f"middle_stage/{part}"].value, rel=1e-12)
    assert b["middle_stage/optimizer"].value == pytest.approx(a["middle_stage/optimizer"].value, rel=1e-12)
    per_mb_layers = a["activations/layer"].value * 8  # 32 layers / 4 stages, one micro-batch each
    assert b["activations/first_stage"].value == pytest.approx(5 * per_mb_layers, rel=1e-12)  # PP + 1 = 5
    assert a["activations/first_stage"].value == pytest.approx(4 * per_mb_layers, rel=1e-12)  # 1F1B: PP


@pytest.mark.parametrize("lay,gb,msg", [(dict(pp=3, dp=1), 12, "even --pp"), (dict(pp=1, dp=4), 8, "even --pp"),
                                         (dict(pp=4, dp=2, interleave=2), 16, "no --interleave"),
                                         (dict(pp=4, dp=2), 10, "even number of micro-batches")])
def test_dualpipe_constraints_are_one_line(lay, gb, msg):
    with pytest.raises(LlmcalcError, match=msg):
        training_step(DENSE, H, Layout(**lay, schedule="dualpipe"), global_batch=gb, seq=2048)


def test_unknown_schedule_is_named():
    with pytest.raises(LlmcalcError, match="--schedule"):
        training_memory(DENSE, H, Layout(pp=2, schedule="gpipe"), seq=2048)


def test_fp8_training_runs_attention_and_head_at_the_bf16_peak():
    # DeepSeek-V3 §3.3.1 (attention operators and the output head stay in BF16) and Transformer Engine (fp8_autocast
    # covers Linear layers): with fp8 only the block matmuls reach the fp8 peak. The stage time, one GPU, one
    # sequence, no pipeline: (Fmm − Fhead)/(e_mm·P8) + Fcore/(e_att·P16) + Fhead/(e_mm·P16).
    r = training_step(DENSE, H, Layout(), global_batch=8, seq=8192, gpus=1, dtype="fp8")
    f = {k: r[k].value for k in ("flops/matmul", "flops/attention_core_executed", "efficiency/matmul")}
    from llmcalc.model.flops import forward_flops

    head = 3 * forward_flops(DENSE, 1, 8192).data["lm_head_flops"]
    p8, p16 = H.peak("fp8"), H.peak("bf16")
    assert p8 == pytest.approx(2 * p16, rel=1e-3)  # 1,979 vs 989 TFLOP/s dense (NVIDIA H100 SXM table)
    e_att = r.data["attention_efficiency"]
    want = ((f["flops/matmul"] - head) / (f["efficiency/matmul"] * p8) + f["flops/attention_core_executed"] /
            (e_att * p16) + head / (f["efficiency/matmul"] * p16))
    assert r["time/slowest_stage_per_sequence"].value == pytest.approx(want, rel=1e-12)


def test_mfu_beyond_every_published_run_is_flagged_as_an_extrapolation():
    # 60% MFU (6·N·D) is above every large-scale run in the validation set (Narayanan 2021: 52% of A100's 312
    # TFLOP/s, 163 TFLOP/s on the 1T row; Megatron-Core H100: <= 49%); a flat 0.9 compute efficiency forces it.
    a100 = load_hardware("a100-sxm-80gb")
    hi = training_step(DENSE, a100, Layout(dp=8), global_batch=64, seq=2048, gpus=8, compute_efficiency=0.9)
    lo = training_step(DENSE, a100, Layout(dp=8), global_batch=64, seq=2048, gpus=8, compute_efficiency=0.5)
    assert hi.data["mfu_6nd"] > 0.6 and hi.data["beyond_published_mfu"] is True
    assert any("extrapolation" in a for a in hi.assumptions)
    assert lo.data["mfu_6nd"] < 0.6 and lo.data["beyond_published_mfu"] is False
