"""Uneven pipeline stages: layouts their authors actually ran, where pp does not divide the layer count.

Facts used (not our output):
- Llama 3 405B has 126 layers and was trained with PP16 (Llama 3 paper, Table 3 and Table 4); §3.3.2:
  "we reduce one Transformer layer each from the first and the last stages", i.e. 7, 8×14, 7.
- DeepSeek-V3 has 61 layers (3 dense, 58 MoE) and was trained with PP16 and EP64 (DeepSeek-V3 report §3.2).
- Megatron-Core --decoder-first/last-pipeline-num-layers: the remaining layers split evenly over the other stages.
- 1F1B: stage r of p holds p − r micro-batches in flight (Narayanan et al. 2021 §2.2).
"""

import numpy as np
import pytest
from typer.testing import CliRunner

from llmcalc.cli import app
from llmcalc.core.catalogue import load_hardware, load_model
from llmcalc.core.errors import LayoutError
from llmcalc.model.params import param_breakdown
from llmcalc.training.comms import comm_ledger
from llmcalc.training.layout import Layout, check_layout, describe_stages, parse_pp_layers, stage_layers
from llmcalc.training.memory import stage_params, training_memory
from llmcalc.training.step import flops_per_sequence, training_step

L405 = load_model("llama-3.1-405b")
DSV3 = load_model("deepseek-v3")
H100 = load_hardware("h100-sxm")


def test_llama3_405b_pp16_is_the_published_7_8x14_7_split():
    sl = stage_layers(126, Layout(pp=16))
    assert (sl["first"], sl["middle"], sl["last"], sl["max"]) == (7, 8, 7, 8)
    assert describe_stages(126, Layout(pp=16)) == "7, 8×14, 7"
    assert check_layout(L405, Layout(tp=8, pp=16, dp=128), gpus=16384) is True


def test_deepseek_v3_pp16_splits_61_layers():
    sl = stage_layers(61, Layout(pp=16))
    assert sl["first"] + 14 * sl["middle"] + sl["last"] == 61 and sl["max"] == 4
    assert check_layout(DSV3, Layout(pp=16, dp=128, ep=64), gpus=2048) is True


def test_megatron_first_last_and_explicit_lists():
    # --pp-first 7 --pp-last 7 on 126 layers, 16 stages: (126 − 14)/14 = 8 in the middle
    sl = stage_layers(126, Layout(pp=16, pp_first=7, pp_last=7))
    assert (sl["first"], sl["middle"], sl["last"]) == (7, 8, 7)
    # --pp-first 1 alone: 60 layers over the other 15 stages = 4 each (last included)
    sl = stage_layers(61, Layout(pp=16, pp_first=1))
    assert (sl["first"], sl["middle"], sl["last"]) == (1, 4, 4)
    assert parse_pp_layers("7,8x14,7") == (7,) + (8,) * 14 + (7,)
    assert parse_pp_layers("7, 8×14, 7") == parse_pp_layers("7,8*14,7")
    explicit = Layout(pp=16, pp_layers=parse_pp_layers("7,8x14,7"))
    assert stage_layers(126, explicit)["max"] == 8
    with pytest.raises(LayoutError, match="--pp-layers"):
        parse_pp_layers("7,0,8")


def test_stage_parameters_add_up_to_the_model():
    # tp = 1: first + 14 middle + last stages hold every parameter exactly once (Llama 3.1 is untied).
    sp = stage_params(L405, Layout(pp=16))
    total = sp["first"].value + 14 * sp["middle"].value + sp["last"].value
    assert total == pytest.approx(param_breakdown(L405).data["total"], rel=1e-12)
    # DeepSeek-V3: dense + expert parts over 3, 4×14, 2 layers also add up to the total.
    sp = stage_params(DSV3, Layout(pp=16))
    dense = sp["first"].value + 14 * sp["middle"].value + sp["last"].value
    experts = sp["experts_first"].value + 14 * sp["experts_middle"].value + sp["experts_last"].value
    assert dense + experts == pytest.approx(param_breakdown(DSV3).data["total"], rel=1e-9)


def test_the_second_stage_holds_more_activations_than_the_first_when_ends_are_lighter():
    # 1F1B, m ≥ p: stage 0 holds 16 micro-batches of 7 layers, stage 1 holds 15 of 8: 120/112 of the first.
    r = training_memory(L405, H100, Layout(tp=8, pp=16, dp=128), micro_batch=1, seq=8192, global_batch=2048,
                        recompute="selective")
    first = r.value("activations/first_stage")
    middle = r.value("activations/middle_stage")
    assert middle / first == pytest.approx(120 / 112, rel=1e-12)
    assert r.data["stage_layers"] == {"first": 7, "middle": 8, "last": 7}


def test_even_split_middle_stage_never_sets_the_peak():
    r = training_memory(load_model("gpt-3-175b"), load_hardware("a100-sxm-80gb"), Layout(tp=8, pp=8),
                        micro_batch=1, seq=2048, global_batch=64, recompute="selective")
    assert r.data["worst_stage"] == "first"
    assert r.value("activations/middle_stage") == pytest.approx(r.value("activations/first_stage") * 7 / 8)


def test_slowest_stage_sets_the_compute_time():
    # The middle stages run 8 of 126 layers; the last runs 7 layers + the LM head. Against pp = 1 on the same
    # tp and dp, compute shrinks by max(8·Fl, 7·Fl + Fhead) / (126·Fl + Fhead).
    # one flat efficiency and the full rectangle executed: the compute time is then proportional to FLOPs
    kw = dict(global_batch=2048, micro_batch=1, seq=8192, recompute="none", compute_efficiency=0.5,
              attention="unfused")
    one = training_step(L405, H100, Layout(tp=8, pp=1, dp=128), **kw)
    six = training_step(L405, H100, Layout(tp=8, pp=16, dp=128), **kw)
    _, hw, head = flops_per_sequence(L405, 8192)
    fl = (hw[0] - head) / 126
    assert six.data["compute_s"] / one.data["compute_s"] == pytest.approx(max(8 * fl, 7 * fl + head) / hw[0],
                                                                          rel=1e-12)


def test_tp_collectives_are_counted_on_the_fullest_stage():
    # TP all-reduces: 4 per layer per micro-batch (Korthikanti §4.2.2) on the 8-layer stage, 16 micro-batches.
    r = comm_ledger(L405, H100, Layout(tp=8, pp=16, dp=128), micro_batch=1, seq=8192, global_batch=2048)
    row = next(x for x in r.data["rows"] if x["parallelism"] == "tp" and x["collective"] == "all-reduce")
    assert row["count"] == 4 * 8 * 16


def test_vectorised_sweep_over_pp_with_uneven_stages():
    pp = np.array([1, 2, 4, 8, 16, 32])
    lay = Layout(tp=8, pp=pp, dp=16384 // (8 * pp))
    r = training_step(L405, H100, lay, global_batch=2048, micro_batch=1, seq=8192, gpus=16384)
    assert r.data["valid"].tolist() == [True] * 6
    assert np.all(np.isfinite(r.data["step_time_s"])) and np.all(r.data["step_time_s"] > 0)
    # scalar calls agree with the sweep element for PP16
    one = training_step(L405, H100, Layout(tp=8, pp=16, dp=128), global_batch=2048, micro_batch=1, seq=8192,
                        gpus=16384)
    assert r.data["step_time_s"][4] == pytest.approx(one.data["step_time_s"], rel=1e-12)


def test_interleaving_uneven_stages_needs_whole_chunks():
    # 8 layers in 2 or 4 chunks; the 7-layer ends are one layer short in one chunk (allowed); 3 chunks are not.
    assert check_layout(L405, Layout(tp=8, pp=16, dp=128, interleave=4)) is True
    with pytest.raises(LayoutError, match="--interleave 3"):
        check_layout(L405, Layout(tp=8, pp=16, dp=128, interleave=3))


def test_llama3_interleaving_one_layer_chunks_with_an_embedding_only_first_chunk():
    # Llama 3 §3.3.2: one layer is taken from each end stage, so "the first model chunk on the first stage has
    # only the embedding, and the last model chunk on the last stage has only output projection and loss": with
    # 128 layer slots on 16 ranks that is v = 8 chunks of one layer, the end stages holding 7 layers in 8 chunks.
    assert check_layout(L405, Layout(tp=8, pp=16, dp=128, interleave=8, pp_layers=(7, *[8] * 14, 7))) is True
    # a middle stage may not lose a whole chunk: 8 chunks of one layer need 8 layers there
    with pytest.raises(LayoutError, match="--interleave 8"):
        check_layout(L405, Layout(tp=8, pp=16, dp=128, interleave=8, pp_layers=(8, 7, *[8] * 13, 7)))
    # the bubble is (p − 1)/(v·m) = 15/(8·16) for 16 micro-batches per DP group (Narayanan et al. 2021 §2.2)
    r = training_step(L405, H100, Layout(tp=8, pp=16, dp=128, sp=True, zero=2, interleave=8), global_batch=2048,
                      micro_batch=1, seq=8192, gpus=16384)
    assert r.data["bubble_fraction"] == pytest.approx(15 / 128, rel=1e-12)


@pytest.mark.parametrize("cmd", [["memory"], ["comms"], ["step", "--global-batch", "2048"]])
@pytest.mark.parametrize("model, extra", [
    ("llama-3.1-405b", ["--tp", "8", "--pp", "16", "--dp", "128", "--seq", "8192"]),
    ("deepseek-v3", ["--pp", "16", "--dp", "128", "--ep", "64", "--seq", "4096"]),
    ("llama-3.1-405b", ["--tp", "8", "--pp-layers", "7,8x14,7", "--dp", "128", "--seq", "8192"]),
])
def test_cli_accepts_pp16_on_126_and_61_layers(cmd, model, extra):
    res = CliRunner().invoke(app, [cmd[0], model, "-H", "h100-sxm", *extra, *cmd[1:], "--zero", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert "uneven pipeline" in res.output


def test_describe_stages_never_lists_every_stage():
    """A bad input with pp = 2**53 once built a list of 2**53 stages (MemoryError, found by the fuzz suite):
    the description is built from run lengths."""
    from llmcalc.training.layout import describe_stages

    assert describe_stages(126, Layout(pp=16)) == "7, 8×14, 7"  # Llama 3 §3.3.2's 405B split
    assert describe_stages(61, Layout(pp=2**53)).count("×") <= 1
